"""Training-step time of pim, sam and dualflat against plain ERM, side by side.

Every recipe gets the same backbone, input size, batch and random batch; steps are
interleaved round-robin (one step of each recipe per round) so that load changes on a
shared machine hit all of them alike. Reports the median step time and its ratio to ERM.

    python benchmarks/pim_step_time.py                        # mini: resnet10t, 64 px, batch 32, CPU
    python benchmarks/pim_step_time.py --backbone convnext_base --input-size 224 --batch 64 --device cuda

Expected ratios (passes per step): ERM 1 forward + 1 backward; PIM (α = 1) 2 forwards, one
backward to (Δμ, Δσ) only, one full backward; SAM 2 full forward/backward; DualFlat 3.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dfbench.detectors.base import Detector, DetectorConfig, create_detector
from dfbench.detectors.gradient_regularization import GradientRegularization  # noqa: F401  (registers pim/sam/dualflat)

RECIPES = ("erm", "pim", "sam", "dualflat")


def build(name: str, args: argparse.Namespace) -> Detector:
    common = {"backbone": args.backbone, "input_size": args.input_size, "batch_size": args.batch}
    if name == "erm":
        det = Detector(DetectorConfig.preset("mini", **common))  # the plain shared cross-entropy step
    else:
        det = create_detector(name, preset="mini", **common)
    det.device = torch.device(args.device)
    det.ensure_built()
    det.setup_training()
    det.to(args.device)
    det.model.train()
    return det


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per recipe first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = {
        "image": torch.randint(0, 256, (args.batch, 3, args.input_size, args.input_size), dtype=torch.uint8),
        "label": torch.arange(args.batch) % 2,
    }
    detectors = {name: build(name, args) for name in RECIPES}
    times: dict[str, list[float]] = {name: [] for name in RECIPES}
    for round_ in range(args.warmup + args.steps):
        for name, det in detectors.items():
            sync(args.device)
            start = time.perf_counter()
            det.training_step(batch)
            sync(args.device)
            if round_ >= args.warmup:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
    print(f"backbone={args.backbone} input={args.input_size} batch={args.batch} steps={args.steps} device={device}")
    print(f"{'recipe':<10}{'median ms/step':>16}{'x ERM':>8}")
    for name in RECIPES:
        print(f"{name:<10}{1000 * medians[name]:>16.1f}{medians[name] / medians['erm']:>8.2f}")
    return medians


if __name__ == "__main__":
    main()
