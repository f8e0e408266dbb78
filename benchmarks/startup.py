"""Start-up time of ``dfbench --help`` and ``dfbench list ...`` (run by hand, not a test).

Each command runs in a fresh interpreter, ``repeats`` times; the median wall time is printed
with whether torch ended up imported. ``--baseline DIR`` times a second copy of the package
side by side in the same run (DIR holds a ``dfbench`` package folder whose ``benchmark``,
``detectors``, ``datasets`` and ``reference`` subfolders point at that copy's folders, e.g.
an older commit: ``git archive <commit> | tar -x -C SRC`` and symlinks), so both are measured
under the same machine load.

    python benchmarks/startup.py --repeats 5 [--baseline /tmp/base/pkg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["list", "detectors"], ["list", "protocols"], ["list", "datasets"])
PROBE = (
    "import contextlib, io, sys\n"
    "from dfbench.benchmark.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
    "    main({argv!r})\n"
    "print('torch' in sys.modules)\n"
)


def time_command(argv: list[str], pythonpath: str | None, repeats: int) -> tuple[float, bool]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    walls, torch_loaded = [], False
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], env=env, capture_output=True,
                             text=True, check=True, cwd="/" if pythonpath else None)
        walls.append(time.perf_counter() - started)
        torch_loaded = out.stdout.strip().endswith("True")
    return statistics.median(walls), torch_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", help="PYTHONPATH entry holding another copy of the dfbench package")
    args = parser.parse_args()
    copies = [("this tree", None)] + ([("baseline", args.baseline)] if args.baseline else [])
    print(f"median of {args.repeats} fresh interpreters ({sys.executable})")
    print(f"{'command':24s}" + "".join(f"{name:>24s}" for name, _ in copies))
    for argv in COMMANDS:
        cells = []
        for _, path in copies:
            wall, torch_loaded = time_command(argv, path, args.repeats)
            cells.append(f"{wall:7.2f} s (torch: {'yes' if torch_loaded else 'no '})")
        print(f"{'dfbench ' + ' '.join(argv):24s}" + "".join(f"{c:>24s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
