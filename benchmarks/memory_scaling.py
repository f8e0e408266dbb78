"""Peak RSS of loading + one fit epoch + scoring at N and 4N videos, streamed vs in memory.

    python benchmarks/memory_scaling.py [--scale mini] [--frames 16] [--crop 160] [--steps 24]

Data: the embedded FF++-like set of ``--scale`` (generated on first use), training split.
N videos = the reals + NeuralTextures at c23; 4N = the reals + NeuralTextures, Deepfakes and
Face2Face at c23 and c40 (exactly four times as many videos at every scale). Crops of
``--crop`` pixels, ``--frames`` per video, are made once (a preparation step, not measured).

Each of the four runs — (N, 4N) × (streamed, in memory) — is a fresh process that loads its
training set and a fixed validation set (NeuralTextures + reals, c23, val split) with
``load_frames`` (streamed: crops read from the crop cache per batch; ``in_memory=True``: every
crop concatenated in RAM, the pre-streaming path), runs ``Detector.fit`` for one epoch of
ERM (capped at ``--steps`` steps so the run stays short on a CPU; the validation set is scored
once) and then scores every frame of its training set, and reports its peak resident set
(``VmHWM`` of ``/proc/self/status``: the high-water mark of this process image; ``ru_maxrss``
is not used because Linux carries the parent's peak across fork + exec into it), the training
images/s and the scoring frames/s. Resident pages of files mapped into the process would
count too; the streamed path reads with ``preadv``, so the page cache is not charged to it.
Targets: streamed peak at 4N ≤ 1.25 × at N; streamed throughput at N ≥ 0.9 × in memory.
On a shared machine the load of other processes swings the throughput of a single run by
more than the difference measured here, so the two N runs are repeated ``--rounds`` times,
alternating, and the throughput ratios use each mode's median (peak RSS: the first round).
Prints one JSON object (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SIZES = {
    "N": {"methods": ("NeuralTextures",), "qualities": ("c23",)},
    "4N": {"methods": ("NeuralTextures", "Deepfakes", "Face2Face"), "qualities": ("c23", "c40")},
}


def _load(size: str, args: argparse.Namespace, in_memory: bool):
    from dfbench.benchmark.data import load_frames
    from dfbench.benchmark.preprocess.cache import CropParams
    from dfbench.datasets.base import Selection
    from dfbench.datasets.synth import ensure_embedded_data

    root = ensure_embedded_data(args.scale, progress=False)
    roots = {"ffpp": root / "ffpp"}
    crop = CropParams(frames=args.frames, size=args.crop)
    spec = SIZES[size]
    train = [Selection("ffpp", "train", methods=spec["methods"], qualities=(q,)) for q in spec["qualities"]]
    val = [Selection("ffpp", "val", methods=("NeuralTextures",), qualities=("c23",))]
    kw = {"roots": roots, "crop": crop, "progress": False, "in_memory": in_memory}
    return load_frames(train, **kw), load_frames(val, **kw)


def peak_rss_kb() -> int:
    """High-water mark of this process's resident set (Linux ``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def child(size: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from dfbench.detectors import create_detector

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train, val = _load(size, args, in_memory=mode == "memory")
    loaded = time.perf_counter()
    det = create_detector("erm", epochs=1, max_steps_per_epoch=args.steps, batch_size=args.batch)
    report = det.fit(train, val, seed=0)
    t0 = time.perf_counter()
    scores = det.predict(train)
    score_s = time.perf_counter() - t0
    assert len(scores) == len(train)
    return {
        "size": size,
        "mode": mode,
        "videos": int(train.meta["video_id"].nunique()),
        "frames": len(train),
        "image_bytes": int(len(train) * args.crop * args.crop * 3),
        "peak_rss_mb": peak_rss_kb() / 1024,
        "load_s": loaded - started,
        "train_images_per_s": args.steps * args.batch / report.epoch_train_s[0],
        "score_frames_per_s": len(train) / score_s,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="mini")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--crop", type=int, default=160)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating repeats of the two N runs")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", nargs=2, metavar=("SIZE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args)))
        return {}
    passthrough = [f"--{k}={getattr(args, k)}" for k in ("scale", "frames", "crop", "steps", "batch", "threads")]
    # preparation (not measured): crops of every video of both sizes in the cache
    _load("4N", args, in_memory=False)
    _load("N", args, in_memory=False)
    def measure(size: str, mode: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, __file__, *passthrough, "--child", size, mode],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    speed = ("train_images_per_s", "score_frames_per_s")
    runs: dict[str, Any] = {}
    repeats: dict[str, list[dict[str, Any]]] = {"N/memory": [], "N/stream": []}
    for r in range(max(args.rounds, 1)):
        for mode in ("memory", "stream") if r % 2 == 0 else ("stream", "memory"):
            repeats[f"N/{mode}"].append(measure("N", mode))
    for key, reps in repeats.items():
        runs[key] = {**reps[0], **{m: statistics.median(x[m] for x in reps) for m in speed},
                     "rounds": {m: [x[m] for x in reps] for m in (*speed, "peak_rss_mb")}}
    for size, mode in (("4N", "stream"), ("4N", "memory")):
        runs[f"{size}/{mode}"] = measure(size, mode)
    result = {
        "settings": {k: getattr(args, k) for k in ("scale", "frames", "crop", "steps", "batch", "threads", "rounds")},
        "runs": runs,
        "stream_peak_4N_over_N": runs["4N/stream"]["peak_rss_mb"] / runs["N/stream"]["peak_rss_mb"],
        "memory_peak_4N_over_N": runs["4N/memory"]["peak_rss_mb"] / runs["N/memory"]["peak_rss_mb"],
        "stream_over_memory_train_at_N": runs["N/stream"]["train_images_per_s"] / runs["N/memory"]["train_images_per_s"],
        "stream_over_memory_scoring_at_N": runs["N/stream"]["score_frames_per_s"] / runs["N/memory"]["score_frames_per_s"],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
