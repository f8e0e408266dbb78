"""Training images/s through ``Detector.fit`` vs a bare timm + AMP loop, same device and data.

    python benchmarks/gpu_throughput.py                      # paper: ERM EfficientNet-B4, 299 px, batch 32 (CUDA)
    python benchmarks/gpu_throughput.py --tiny --device cpu  # the CPU mode (small model and crops)

The data are random uint8 crops written as crop-cache entries (one ``.npz`` per "video",
as preprocessing writes them) under a temporary folder, so ``Detector.fit`` reads them the
way a real run does: a streamed FrameSet, a DataLoader with ``--workers`` workers and pinned
memory on CUDA, the detector's precision / channels_last / compile settings. The bare loop
trains the same timm model on the same crops held in one pinned uint8 tensor: a random batch
per step, non-blocking copy, /255 and normalisation, autocast in the same precision as the
detector, channels_last on CUDA, cross-entropy, backward (with a GradScaler under fp16), Adam
step — no loader, no checkpointing, no validation.

Figures: images/s of fit's second epoch (the first pays cuDNN autotuning, compilation and
worker start-up; ``FitReport.epoch_train_s``) and of the bare loop after as many warm-up steps,
both measured in this one process; ``ratio`` = fit / bare (target on a GPU: ≥ 0.9).
Prints one JSON object (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.preprocess.cache import CropCache
from dfbench.benchmark.rows import Rows, concat_rows, npz_members
from dfbench.benchmark.runner import resolve_device
from dfbench.detectors import create_detector
from dfbench.detectors.backbones import create_backbone

PAPER = {"backbone": "efficientnet_b4", "size": 299, "batch": 32, "steps": 60, "videos": 64, "frames": 32, "workers": 8}
TINY = {"backbone": "resnet10t", "size": 64, "batch": 16, "steps": 6, "videos": 8, "frames": 16, "workers": 0}


def streamed_frames(root: Path, videos: int, frames: int, size: int, seed: int = 0) -> FrameSet:
    """``videos`` × ``frames`` random crops, one crop-cache entry per video, read lazily."""
    rng = np.random.default_rng(seed)
    cache = CropCache(root)
    parts, meta = [], []
    for v in range(videos):
        crops = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
        path = cache.put("crops", f"{v:064x}", {"frame_indices": np.arange(frames), "crops": crops})
        member = npz_members(path, ["crops"])["crops"]
        parts.append(Rows.of(member, member.count, member.shape, member.dtype))
        meta.append(pd.DataFrame({"video_id": f"bench/{v:04d}", "frame": np.arange(frames), "label": v % 2}))
    return FrameSet(concat_rows(parts), pd.concat(meta, ignore_index=True))


def fit_throughput(frames: FrameSet, val: FrameSet, opts: dict[str, Any], device: str) -> dict[str, Any]:
    det = create_detector(
        "erm",
        backbone=opts["backbone"], input_size=opts["size"], batch_size=opts["batch"], epochs=2,
        max_steps_per_epoch=opts["steps"], loader_workers=opts["workers"], compile=opts["compile"],
    )
    report = det.fit(frames, val, seed=0, device=device)
    images = opts["steps"] * opts["batch"]
    return {
        "fit_images_per_s": images / report.epoch_train_s[1],
        "fit_first_epoch_images_per_s": images / report.epoch_train_s[0],
        "precision": report.precision,
    }


def bare_throughput(frames: FrameSet, opts: dict[str, Any], device: str, precision: str) -> dict[str, Any]:
    dev = torch.device(device)
    torch.manual_seed(0)
    model = create_backbone(opts["backbone"], num_classes=2).to(dev)
    channels_last = dev.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(dev.type) if dtype == torch.float16 else None
    images = torch.from_numpy(np.asarray(frames.images))  # (N, H, W, 3), permuted per batch as fit's batches are
    labels = torch.tensor(frames.labels)
    if dev.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(0)
    bs = opts["batch"]

    def step() -> torch.Tensor:
        idx = torch.randint(0, len(images), (bs,), generator=gen)
        x = images[idx].to(dev, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - mean) / std
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[idx].to(dev, non_blocking=True)
        with torch.autocast(dev.type, dtype=dtype) if dtype is not None else torch.autocast(dev.type, enabled=False):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss.detach()

    model.train()
    for _ in range(opts["steps"]):  # warm-up: as many steps as fit's first epoch
        step()
    _sync(dev)
    start = time.perf_counter()
    losses = [step() for _ in range(opts["steps"])]
    torch.stack(losses).cpu()  # one sync, as fit reads its logs once per epoch
    _sync(dev)
    return {"bare_images_per_s": opts["steps"] * bs / (time.perf_counter() - start)}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="small model and crops (the CPU mode)")
    ap.add_argument("--device", default="auto")
    for key in PAPER:
        ap.add_argument(f"--{key}", type=type(PAPER[key]), default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile in fit (the bare loop stays eager)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    opts = dict(TINY if args.tiny else PAPER)
    opts.update({k: getattr(args, k) for k in PAPER if getattr(args, k) is not None})
    opts["compile"] = args.compile
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="dfbench-throughput-") as tmp:
        frames = streamed_frames(Path(tmp) / "train", opts["videos"], opts["frames"], opts["size"])
        val = streamed_frames(Path(tmp) / "val", 2, 4, opts["size"], seed=1)
        result: dict[str, Any] = {"device": device, "torch": torch.__version__, **opts}
        if device.startswith("cuda"):
            result["gpu"] = torch.cuda.get_device_name(torch.device(device))
        result.update(fit_throughput(frames, val, opts, device))
        result.update(bare_throughput(frames, opts, device, result["precision"]))
    result["ratio"] = result["fit_images_per_s"] / result["bare_images_per_s"]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
