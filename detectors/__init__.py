"""dfbench.detectors: the detector registry and one module per recipe family.

Importing this package registers every recipe (as ``timm.models`` does for its families).
"""

from dfbench.detectors.base import (
    DETECTORS,
    Detector,
    DetectorConfig,
    FitReport,
    clone_detector,
    create_detector,
    list_detectors,
    register_detector,
)

__all__ = [
    "DETECTORS",
    "Detector",
    "DetectorConfig",
    "FitReport",
    "clone_detector",
    "create_detector",
    "list_detectors",
    "register_detector",
]

# recipe families (each module registers its variants)
from dfbench.detectors import (
    baselines,  # noqa: E402,F401
    pbnet,  # noqa: E402,F401
    qad,  # noqa: E402,F401
)
