"""dfbench: a benchmark harness for face-forgery (deepfake) detectors.

Importing the package first installs the torchvision compatibility guard (see
``dfbench.benchmark.compat``) so that timm and facenet-pytorch import on a CPU-only
torch even when the installed torchvision wheel was built against CUDA.
"""

from dfbench.benchmark.compat import ensure_torchvision_ops

__version__ = "0.1.0"

TORCHVISION_GUARD_INSTALLED = ensure_torchvision_ops()

__all__ = ["__version__", "TORCHVISION_GUARD_INSTALLED"]
