"""Compatibility guard for a torchvision wheel whose compiled ops cannot load.

On a CPU-only torch, the PyPI torchvision wheel (built for CUDA torch) fails at import
with ``RuntimeError: operator torchvision::nms does not exist``: its ``_C`` extension
does not load, yet ``torchvision._meta_registrations`` registers fake kernels for
``torchvision::nms`` and ``torchvision::qnms``. timm imports torchvision at module level
and MTCNN uses ``torchvision.ops.batched_nms``, so both would be unusable.

The guard runs before torchvision is first imported. If the compiled ops load, it does
nothing. Otherwise it defines the two operators with ``torch.library`` and a pure-torch
greedy NMS, which is all timm and MTCNN need.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it unregisters the ops


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, by descending score.

    ``boxes`` is (N, 4) in (x1, y1, x2, y2). Same contract as ``torchvision.ops.nms``.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    b = boxes.float()[order]
    areas = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    suppressed = torch.zeros(len(b), dtype=torch.bool, device=b.device)
    keep: list[int] = []
    chunk = 1024  # IoU rows are computed a block at a time to bound memory
    for start in range(0, len(b), chunk):
        rows = b[start : start + chunk]
        lt = torch.maximum(rows[:, None, :2], b[None, :, :2])
        rb = torch.minimum(rows[:, None, 2:], b[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        iou = inter / (areas[start : start + chunk, None] + areas[None, :] - inter).clamp(min=1e-12)
        over = iou > iou_threshold
        for r in range(len(rows)):
            i = start + r
            if suppressed[i]:
                continue
            keep.append(i)
            suppressed |= over[r] & (torch.arange(len(b), device=b.device) > i)
    return order[torch.tensor(keep, dtype=torch.long, device=b.device)]


def _compiled_ops_load() -> bool:
    """True when torchvision's compiled extension loads (or torchvision is absent)."""
    if hasattr(torch.ops.torchvision, "nms"):
        return True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # nothing to guard
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    for lib in sorted(package_dir.glob("_C*.so")) + sorted(package_dir.glob("_C*.pyd")):
        try:
            torch.ops.load_library(str(lib))
            return True
        except (OSError, RuntimeError, ImportError):
            return False
    return False


def ensure_torchvision_ops() -> bool:
    """Define ``torchvision::nms``/``qnms`` in pure torch if the compiled ops cannot load.

    Returns True when the fallback operators were installed by this call.
    """
    global _LIBRARY
    if _LIBRARY is not None or "torchvision" in sys.modules or _compiled_ops_load():
        return False
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", greedy_nms, "CompositeExplicitAutograd")
    lib.impl("qnms", greedy_nms, "CompositeExplicitAutograd")
    _LIBRARY = lib
    # torchvision.ops.boxes asserts that the whole compiled extension loaded before it
    # calls torch.ops.torchvision.nms; the box ops are now defined, so that module (and
    # only that module) may go ahead. Other compiled ops still fail with torchvision's error.
    import torchvision.ops.boxes

    torchvision.ops.boxes._assert_has_ops = lambda: None
    return True
