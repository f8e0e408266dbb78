"""dfbench.detectors: the detector registry and one module per recipe family.

Importing this package registers every built-in recipe by name (``dfbench.detectors.catalog``)
without importing the recipe modules or torch: a recipe's module is imported the first time
its detector is created, and ``Detector``, ``create_detector`` & co. (``base.py``, which needs
torch) are imported the first time they are used. ``dfbench list detectors`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from dfbench.detectors.catalog import DETECTORS, list_detectors, register_detector

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

_FROM_BASE = ("Detector", "DetectorConfig", "FitReport", "clone_detector", "create_detector")


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        return getattr(importlib.import_module("dfbench.detectors.base"), name)
    raise AttributeError(f"module 'dfbench.detectors' has no attribute {name!r}")
