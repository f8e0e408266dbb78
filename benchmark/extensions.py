"""Modules that register protocol procedures, laundering perturbations, test transforms and
training-data syntheses.

Importing this module imports each of them once (as ``timm.models`` imports its families),
so a protocol spec can name them. Adding one = adding its module name here.
"""

from __future__ import annotations

import importlib

EXTENSION_MODULES: tuple[str, ...] = (
    "dfbench.benchmark.perturbations_qad",
    "dfbench.benchmark.procedures_pbnet",
    "dfbench.benchmark.laundering",
    "dfbench.benchmark.partial",
    "dfbench.benchmark.synthesis",
)

for _module in EXTENSION_MODULES:
    importlib.import_module(_module)
