"""ERM step time through the harness vs a bare PyTorch loop, measured side by side.

    python benchmarks/train_step.py [--backbone resnet10t] [--size 64] [--batch 32] [--steps 20] [--rounds 3]

Both train the same timm model (same init), batch size, optimiser and in-memory uint8
data. The harness path is ``Detector._train_epoch`` (DataLoader over a FrameSet, the
detector's preprocess, ``training_step``); the bare path indexes a tensor and runs
forward/backward/step directly. Rounds alternate A/B so machine noise hits both; the
figure reported is the ratio of median per-step times (target: overhead ≤ 5 %).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from dfbench.benchmark.frames import FrameSet
from dfbench.detectors import create_detector


def make_frames(n: int, size: int) -> FrameSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    meta = pd.DataFrame({"video_id": [f"v{i // 8}" for i in range(n)], "label": (np.arange(n) // 8) % 2})
    return FrameSet(images, meta)


def harness_epoch(detector, frames: FrameSet, epoch: int) -> float:
    start = time.perf_counter()
    detector._train_epoch(frames, seed=0, epoch=epoch, progress=None)
    return time.perf_counter() - start


def bare_epoch(model, opt, images: torch.Tensor, labels: torch.Tensor, batch: int, steps: int, mean, std, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    model.train()
    start = time.perf_counter()
    for s in range(steps):
        idx = order[s * batch : (s + 1) * batch]
        x = (images[idx].float() / 255.0 - mean) / std
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="resnet10t")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.batch * args.steps
    frames = make_frames(n, args.size)
    detector = create_detector("erm", backbone=args.backbone, input_size=args.size, batch_size=args.batch)
    torch.manual_seed(0)
    detector.ensure_built()
    detector.setup_training()
    torch.manual_seed(0)
    bare_model = detector.build()
    bare_model.load_state_dict(detector.model.state_dict())
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=detector.config.lr, weight_decay=detector.config.weight_decay)
    images = torch.from_numpy(frames.images).permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(frames.labels)
    mean = torch.tensor(detector.config.mean).view(1, 3, 1, 1)
    std = torch.tensor(detector.config.std).view(1, 3, 1, 1)
    # warm-up both paths once
    harness_epoch(detector, frames, 0)
    bare_epoch(bare_model, bare_opt, images, labels, args.batch, args.steps, mean, std, 0)
    harness, bare = [], []
    for r in range(args.rounds):
        harness.append(harness_epoch(detector, frames, r + 1) / args.steps)
        bare.append(bare_epoch(bare_model, bare_opt, images, labels, args.batch, args.steps, mean, std, r + 1) / args.steps)
    h, b = statistics.median(harness), statistics.median(bare)
    print(f"backbone={args.backbone} size={args.size} batch={args.batch} steps/round={args.steps} rounds={args.rounds} threads={torch.get_num_threads()}")
    print(f"harness  {h * 1000:8.1f} ms/step   (rounds: {', '.join(f'{x * 1000:.1f}' for x in harness)})")
    print(f"bare     {b * 1000:8.1f} ms/step   (rounds: {', '.join(f'{x * 1000:.1f}' for x in bare)})")
    print(f"overhead {100 * (h / b - 1):+.1f} %  (harness/bare = {h / b:.3f})")


if __name__ == "__main__":
    main()
