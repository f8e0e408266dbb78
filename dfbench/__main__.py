"""``python -m dfbench``: the ``dfbench`` command, also for launchers that start modules
(``torchrun --nproc_per_node N -m dfbench run ...``)."""

import sys

from dfbench.benchmark.cli import main

sys.exit(main())
