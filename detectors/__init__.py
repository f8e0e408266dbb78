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

# recipe families (each module registers its variants); adding a recipe = one module + one name here
from dfbench.detectors import (  # noqa: E402,F401
    adversarial_blur,
    baselines,
    big_arts,
    gradient_regularization,
    pbnet,
    qad,
)
