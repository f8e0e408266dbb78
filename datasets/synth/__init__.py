"""The embedded synthetic benchmark: procedural faces, manipulations, FF++-style layout.

Public entry points:
  ``generate_ffpp_like(out, scale=, seed=, progress=)``  write an FF++-like set under ``out``
  ``ensure_embedded_data(scale)``                         root of the embedded benchmark
  ``SCALES``                                              the sizes ("tiny", "mini", "small", "full")
The face renderer (``faces``) and manipulations (``manipulations``) are reusable by the
generators of other dataset stand-ins.
"""

from dfbench.datasets.synth.embedded import embedded_root, ensure_embedded_data
from dfbench.datasets.synth.ffpp import GENERATOR_VERSION, MARKER, SCALES, Scale, generate_ffpp_like

__all__ = [
    "GENERATOR_VERSION",
    "MARKER",
    "SCALES",
    "Scale",
    "embedded_root",
    "ensure_embedded_data",
    "generate_ffpp_like",
]
