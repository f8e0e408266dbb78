"""dfbench: a benchmark harness for face-forgery (deepfake) detectors.

Importing the package arms the torchvision compatibility guard (see
``dfbench.benchmark.compat``) so that timm and facenet-pytorch import on a CPU-only
torch even when the installed torchvision wheel was built against CUDA.

The guard needs torch, and importing torch takes seconds; ``dfbench --help`` and
``dfbench list`` need neither. So the package does not import torch: it puts a finder at
the front of ``sys.meta_path`` that runs the guard the moment anything (timm,
facenet-pytorch, user code) first imports torchvision, and then steps aside. The guarantee
is the same as running it eagerly, "the guard runs before torchvision is first imported",
without the start-up cost for commands that never touch torchvision.
"""

from __future__ import annotations

import sys
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

_GUARD_RESULT: bool | None = None  # None until the guard has run


def _run_guard() -> bool:
    """Run the guard once (idempotent); True when it installed the fallback operators."""
    global _GUARD_RESULT
    if _GUARD_RESULT is None:
        _disarm()  # the guard imports torchvision.ops.boxes itself: no re-entry
        from dfbench.benchmark.compat import ensure_torchvision_ops

        _GUARD_RESULT = ensure_torchvision_ops()
    return _GUARD_RESULT


class _AlreadyImported(Loader):
    """Hands the import system a module that is already in ``sys.modules``, untouched."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.original = module.__spec__

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.original  # the import system set ours; put the real one back


class _TorchvisionGuardFinder(MetaPathFinder):
    """Runs the guard on the first import of torchvision."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != "torchvision":
            return None
        _run_guard()
        module = sys.modules.get(fullname)
        if module is None:
            return None  # the guard had nothing to do: the normal finders import torchvision
        # The guard imported torchvision itself (to patch torchvision.ops.boxes). The import
        # that called us would now execute the package a second time: importlib, seeing
        # the name in sys.modules, loads whatever ``module.__spec__`` says. So the module
        # briefly carries a spec whose loader hands back the loaded module unchanged (and
        # restores the real spec).
        spec = ModuleSpec(fullname, _AlreadyImported(module), origin=module.__spec__.origin, is_package=True)
        module.__spec__ = spec
        return spec


_FINDER = _TorchvisionGuardFinder()


def _disarm() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


if "torchvision" in sys.modules:
    # imported before dfbench: too late to guard (the guard would do nothing anyway)
    _GUARD_RESULT = False
elif _FINDER not in sys.meta_path:
    sys.meta_path.insert(0, _FINDER)


def __getattr__(name: str) -> Any:
    # TORCHVISION_GUARD_INSTALLED is computed on first access (it runs the guard if
    # torchvision has not been imported yet), so reading it does not import torch early
    if name == "TORCHVISION_GUARD_INSTALLED":
        return _run_guard()
    raise AttributeError(f"module 'dfbench' has no attribute {name!r}")


__all__ = ["__version__", "TORCHVISION_GUARD_INSTALLED"]
