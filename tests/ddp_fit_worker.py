"""Run by tests/test_scale.py, once in one process and once under torchrun (2 gloo ranks):
fits a few recipes on the tiny synthetic FrameSet and saves what the test compares.

``python ddp_fit_worker.py OUT_DIR`` writes, from rank 0, ``<recipe>.pt`` (the fitted
inference state) and, for every rank, ``<recipe>.rank<k>.pt`` (its parameter checksum)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

torch.set_num_threads(1)

from dfbench.benchmark import distributed  # noqa: E402
from dfbench.detectors.base import Detector, create_detector  # noqa: E402
from dfbench.testing import TINY, tiny_frameset  # noqa: E402


class LinearProbe(Detector):
    """No BatchNorm: with the same global batch, 2 ranks must give the 1-process weights."""

    name = "linear_probe"

    def build(self) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))


def main(out: Path) -> None:
    distributed.init_from_env()
    rank = 0 if distributed.active() is None else distributed.active().rank
    train, val = tiny_frameset(8, 2), tiny_frameset(4, 2, seed=1)
    recipes = {
        "linear": LinearProbe(input_size=32, epochs=2, batch_size=8, lr=1e-2),
        # recipes with extra optimisers / perturbations: must finish with every rank in agreement
        "two_gen_bat": create_detector("two_gen_bat", **TINY),
        "qad": create_detector("qad", **TINY),
        "dualflat": create_detector("dualflat", **TINY),
    }
    for name, det in recipes.items():
        det.fit(train, val, seed=0)
        params = torch.cat([p.detach().reshape(-1).double() for p in det.model.parameters()])
        buffers = [b.detach().double().sum() for b in det.model.buffers() if b.is_floating_point()]
        torch.save({"params": params, "buffers": torch.stack(buffers) if buffers else torch.zeros(0)},
                   out / f"{name}.rank{rank}.pt")
        if rank == 0:
            torch.save(det.inference_state(), out / f"{name}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
