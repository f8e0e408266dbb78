"""Validity check of the synthetic FF++-like set: does it show the seed papers' effects?

Trains a small CNN (timm ``resnet10t``, random init, CPU) on one method at one quality
(default: NeuralTextures vs real, raw) and scores the test split at every quality and on
the other methods. The synthetic set is fit for its purpose when

  * in-domain AUC (train quality = test quality) is high:       NT raw  >= 0.90
  * heavy compression collapses it (the cross-quality effect):  NT raw - NT c40 >= 0.10
  * cross-method transfer is imperfect:                         some other method < 0.99

Faces are cropped with the generator's own box (``.dfbench_synth_boxes.json``; square,
x1.3 like FF++'s baseline crop) so this check needs no face detector.

    python benchmarks/synth_validity.py --scale mini                # generate (cached) + check
    python benchmarks/synth_validity.py --root /path/to/ffpp --check  # exit 1 if a target fails
    python benchmarks/synth_validity.py --scale mini --seeds 0 1 2    # several data seeds
    python benchmarks/synth_validity.py --root /path/to/ffpp --traces  # trace statistics only

``--traces`` prints, per method and quality, how well the fixed trace statistics of
``dfbench.datasets.synth.traces`` (seam step, mid-band and fine high-pass energy) separate each
fake from its target's real video over the val + test pairs (the table in docs/synthetic.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dfbench.datasets.synth.encode import read_video  # importing dfbench installs the torchvision guard
from dfbench.datasets.synth.ffpp import BOXES_FILE, FAKE_DIR, REAL_DIR, generate_ffpp_like
from dfbench.datasets.synth.manipulations import METHODS


def crop(frame: np.ndarray, box: list[float], size: int, margin: float = 1.3) -> np.ndarray:
    from PIL import Image

    x1, y1, x2, y2 = box
    side = margin * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    # pad with edge pixels so a box that reaches past the frame border still crops
    pad = int(np.ceil(side))
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    region = (cx - side / 2 + pad, cy - side / 2 + pad, cx + side / 2 + pad, cy + side / 2 + pad)
    return np.asarray(Image.fromarray(padded).resize((size, size), Image.Resampling.BILINEAR, box=region))


def load(root: Path, split: str, method: str | None, quality: str, n_frames: int, size: int):
    """Crops (N, size, size, 3), labels (N,), video index (N,) for the reals or one method's fakes."""
    pairs = json.loads((root / "splits" / f"{split}.json").read_text())
    boxes = json.loads((root / BOXES_FILE).read_text())["boxes"]
    names: list[tuple[str, str]] = []  # (file stem, target id)
    for a, b in pairs:
        if method is None:
            names += [(a, a), (b, b)]
        else:
            names += [(f"{a}_{b}", a), (f"{b}_{a}", b)]
    folder = root / (REAL_DIR if method is None else FAKE_DIR / method) / quality / "videos"
    crops, vids = [], []
    for v, (stem, target) in enumerate(names):
        frames = read_video(folder / f"{stem}.mp4")
        for t in np.linspace(0, len(frames) - 1, n_frames).round().astype(int):
            crops.append(crop(frames[t], boxes[target][t], size))
            vids.append(v)
    label = 0 if method is None else 1
    return np.stack(crops), np.full(len(crops), label), np.array(vids)


def to_tensor(x: np.ndarray):
    import torch

    return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.25)


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(order), 32):
            idx = order[i : i + 32]
            batch = to_tensor(x[idx])
            if rng.random() < 0.5:  # horizontal flip
                batch = batch.flip(3)
            loss = torch.nn.functional.cross_entropy(model(batch), torch.from_numpy(y[idx]).long())
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def score(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = [torch.softmax(model(to_tensor(x[i : i + 128])), 1)[:, 1] for i in range(0, len(x), 128)]
    return torch.cat(out).numpy()


def evaluate(root: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from sklearn.metrics import roc_auc_score

    xs_r, ys_r, _ = load(root, "train", None, args.train_quality, args.frames, args.size)
    xs_f, ys_f, _ = load(root, "train", args.train_method, args.train_quality, args.frames, args.size)
    model = train(np.concatenate([xs_r, xs_f]), np.concatenate([ys_r, ys_f]), args.epochs, args.train_seed)
    results: dict[str, dict[str, float]] = {}
    tests = [(args.train_method, q) for q in ("raw", "c23", "c40")]
    tests += [(m, args.train_quality) for m in METHODS if m != args.train_method]
    real_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method, quality in tests:
        if quality not in real_cache:
            xr, _, vr = load(root, "test", None, quality, args.frames, args.size)
            real_cache[quality] = (score(model, xr), vr)
        sr, vr = real_cache[quality]
        xf, _, vf = load(root, "test", method, quality, args.frames, args.size)
        sf = score(model, xf)
        frame_auc = roc_auc_score(np.r_[np.zeros(len(sr)), np.ones(len(sf))], np.r_[sr, sf])
        vid_r = [sr[vr == v].mean() for v in np.unique(vr)]
        vid_f = [sf[vf == v].mean() for v in np.unique(vf)]
        video_auc = roc_auc_score(np.r_[np.zeros(len(vid_r)), np.ones(len(vid_f))], np.r_[vid_r, vid_f])
        results[f"{method}/{quality}"] = {
            "frame_auc": round(float(frame_auc), 4),
            "video_auc": round(float(video_auc), 4),
        }
    return results


def trace_table(root: Path) -> dict[str, dict[str, float]]:
    """Separability of fakes vs their targets' real videos by each fixed trace statistic, per
    method and quality, over the val and test pairs (no learning): folded ROC AUC over all
    videos, and the paired fraction (each fake against its own target's real video)."""
    from dfbench.datasets.synth.encode import read_mask
    from dfbench.datasets.synth.traces import STATISTICS, paired_separability, separability

    pairs = [pair for split in ("val", "test") for pair in json.loads((root / "splits" / f"{split}.json").read_text())]
    table: dict[str, dict[str, float]] = {}
    for method in METHODS:
        for quality in ("raw", "c23", "c40"):
            values: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in STATISTICS}
            for a, b in pairs:
                for target, source in ((a, b), (b, a)):
                    mask = read_mask(root / FAKE_DIR / method / "masks" / "videos" / f"{target}_{source}.mp4")
                    real = read_video(root / REAL_DIR / quality / "videos" / f"{target}.mp4")
                    fake = read_video(root / FAKE_DIR / method / quality / "videos" / f"{target}_{source}.mp4")
                    for name, stat in STATISTICS.items():
                        values[name][0].append(stat(real, mask))
                        values[name][1].append(stat(fake, mask))
            row = {name: round(separability(*v), 3) for name, v in values.items()}
            row.update({f"{name} paired": round(paired_separability(*v), 3) for name, v in values.items()})
            table[f"{method}/{quality}"] = row
    return table


def verdict(results: dict[str, dict[str, float]], method: str) -> list[str]:
    """The targets that fail (empty = the set is fit for purpose)."""
    raw = results[f"{method}/raw"]["frame_auc"]
    c40 = results[f"{method}/c40"]["frame_auc"]
    others = [v["frame_auc"] for k, v in results.items() if not k.startswith(method + "/")]
    failures = []
    if raw < 0.90:
        failures.append(f"{method} raw AUC {raw:.3f} < 0.90")
    if raw - c40 < 0.10:
        failures.append(f"{method} raw - c40 AUC gap {raw - c40:.3f} < 0.10")
    if others and min(others) >= 0.99:
        failures.append("cross-method transfer is perfect (every other method >= 0.99)")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, help="an existing synthetic FF++-like root (skips generation)")
    p.add_argument("--scale", default="mini")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="data seeds to generate and check")
    p.add_argument("--work", type=Path, help="where generated sets are kept (default: a temp folder)")
    p.add_argument("--train-method", default="NeuralTextures", choices=METHODS)
    p.add_argument("--train-quality", default="raw", choices=("raw", "c23", "c40"))
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--frames", type=int, default=8, help="frames per video")
    p.add_argument("--size", type=int, default=64, help="crop side")
    p.add_argument("--check", action="store_true", help="exit 1 when a validity target fails")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--traces", action="store_true", help="only the fixed trace statistics' table (no training)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    work = args.work or Path(tempfile.mkdtemp(prefix="dfbench-synth-validity-"))
    all_results, failed = {}, False
    roots = [(None, args.root)] if args.root else [(s, work / f"{args.scale}-seed{s}") for s in args.seeds]
    for seed, root in roots:
        t0 = time.perf_counter()
        if seed is not None:
            generate_ffpp_like(root, scale=args.scale, seed=seed, progress=True)
        gen_s = time.perf_counter() - t0
        if args.traces:
            table = trace_table(root)
            all_results[str(root) if seed is None else f"seed{seed}"] = {"traces": table}
            print(f"== {root}: separability of fakes from their targets (val + test pairs)")
            stats = list(next(iter(table.values())))
            print(f"  {'method/quality':28s}" + "".join(f"{name:>13s}" for name in stats))
            for name, r in table.items():
                print(f"  {name:28s}" + "".join(f"{r[stat]:13.3f}" for stat in stats))
            continue
        results = evaluate(root, args)
        failures = verdict(results, args.train_method)
        failed |= bool(failures)
        key = str(root) if seed is None else f"seed{seed}"
        all_results[key] = {"results": results, "failures": failures}
        print(f"== {key} (generation {gen_s:.0f}s, check {time.perf_counter() - t0 - gen_s:.0f}s)")
        for name, r in results.items():
            print(f"  {name:24s} frame AUC {r['frame_auc']:.3f}   video AUC {r['video_auc']:.3f}")
        print("  targets:", "all met" if not failures else "; ".join(failures))
    if args.json:
        args.json.write_text(json.dumps(all_results, indent=1))
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
