"""Training-step time of QAD and its ablations against plain ERM on the same images.

A QAD step sees B frames at M = 3 qualities (3B images) and adds the HSIC Gram matrices
(collab) and a second forward/backward (AWP). ERM here is the plain ``Detector`` (cross-entropy
step) with the same backbone and input size on a batch of 3B images, so the ratio is the
price of the recipe for the same images per step.

    python benchmarks/qad_step_time.py                       # mini: resnet10t, 64 px, B = 32
    python benchmarks/qad_step_time.py --preset paper --device cuda   # resnet50, 224 px, B = 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

import dfbench  # noqa: F401  (torchvision guard)
from dfbench.detectors.base import Detector, DetectorConfig, create_detector
from dfbench.detectors.qad import QADConfig

VARIANTS = ("qad", "qad_hsic_only", "qad_awp_only", "qad_pairwise")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(det: Detector, batch: dict[str, torch.Tensor], steps: int, warmup: int) -> list[float]:
    """Seconds per ``training_step`` (after ``warmup`` untimed steps)."""
    det.ensure_built()
    det.setup_training()
    det.to(det.device)
    det.model.train()
    times = []
    for i in range(warmup + steps):
        _sync(det.device)
        start = time.perf_counter()
        det.training_step(batch)
        _sync(det.device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def run(preset: str, device: str, steps: int, warmup: int, frames: int | None, backbone: str | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {"pretrained": False}
    if backbone:
        overrides["backbone"] = backbone
    cfg = QADConfig.preset(preset, **overrides)
    b = frames or cfg.batch_size
    m = len(cfg.qualities)
    size = cfg.input_size
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    stack = torch.randint(0, 256, (b, m, 3, size, size), dtype=torch.uint8, generator=gen)
    labels = torch.arange(b) % 2
    results: dict[str, Any] = {
        "preset": preset, "device": str(dev), "backbone": cfg.backbone, "input_size": size,
        "frames_per_step": b, "qualities": m, "images_per_step": m * b, "steps": steps, "warmup": warmup,
        "torch_threads": torch.get_num_threads(), "median_s": {},
    }
    erm = Detector(DetectorConfig.preset(preset, backbone=cfg.backbone, input_size=size, batch_size=m * b, pretrained=False))
    erm.device = dev
    erm_batch = {"image": stack.transpose(0, 1).reshape(m * b, 3, size, size), "label": labels.repeat(m)}
    results["median_s"]["erm"] = statistics.median(time_steps(erm, erm_batch, steps, warmup))
    for name in VARIANTS:
        det = create_detector(name, preset=preset, batch_size=b, **overrides)
        det.device = dev
        results["median_s"][name] = statistics.median(
            time_steps(det, {"qualities": stack, "label": labels}, steps, warmup)
        )
    base = results["median_s"]["erm"]
    results["ratio_to_erm"] = {k: v / base for k, v in results["median_s"].items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mini", choices=["mini", "paper"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--frames", type=int, default=None, help="B frames per step (default: the preset's batch)")
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args.preset, args.device, args.steps, args.warmup, args.frames, args.backbone)
    print(
        f"{res['backbone']} @ {res['input_size']}px on {res['device']}: {res['frames_per_step']} frames x "
        f"{res['qualities']} qualities = {res['images_per_step']} images per step (median of {res['steps']} steps)"
    )
    print(f"{'recipe':<16}{'s/step':>10}{'x erm':>8}")
    for name, sec in res["median_s"].items():
        print(f"{name:<16}{sec:>10.4f}{res['ratio_to_erm'][name]:>8.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
