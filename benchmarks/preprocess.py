"""Throughput of the preprocessing pipeline against a straightforward baseline.

    python benchmarks/preprocess.py                    # public-domain FF++-layout fixture
    python benchmarks/preprocess.py --synth            # the embedded mini benchmark (generated if missing)
    python benchmarks/preprocess.py --frames 16 --video-frames 64 --threads 1

Three passes over the same videos, in one run:
  baseline  per video: decode every frame to RGB, keep the sampled ones, run MTCNN on each
            sampled frame alone, crop with the video's own boxes (no reuse, no cache);
  cold      ``ensure_crops`` into an empty cache: only sampled frames converted to RGB,
            batched MTCNN on the reference videos only, boxes reused across qualities/fakes;
  cached    the same call again: every entry read from the cache.
Reported: frames/s of each pass (frames = cropped frames out), cold/baseline and
cached/cold speed-ups. Targets: cold ≥ 3× baseline, cached ≥ 50× cold.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

import dfbench  # noqa: F401  (torchvision guard first)
from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.benchmark.preprocess.faces import FaceDetector, crop_frame, fill_missing, square_boxes
from dfbench.benchmark.preprocess.fixture import build_ffpp_fixture
from dfbench.benchmark.preprocess.pipeline import ensure_crops
from dfbench.benchmark.preprocess.video import sample_indices
from dfbench.datasets.ffpp import FaceForensicsPP


def baseline(paths: list[str], params: CropParams, detector: FaceDetector) -> int:
    """The straightforward way; returns the number of crops made."""
    made = 0
    for path in paths:
        with av.open(path) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        picked = sample_indices(len(frames), params.frames)
        dets = [detector.detect(frames[i][None]) for i in picked]  # one frame per MTCNN call
        found = np.array([d.face_found[0] for d in dets])
        if not found.any():
            continue
        src = fill_missing(found, picked)
        boxes = square_boxes(np.stack([dets[s].boxes[0] for s in src]), params.margin)
        made += len([crop_frame(frames[i], b, params.size) for i, b in zip(picked, boxes)])
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", action="store_true", help="use the embedded mini benchmark's FF++-like set")
    ap.add_argument("--frames", type=int, default=16, help="frames sampled per video")
    ap.add_argument("--size", type=int, default=128, help="crop size")
    ap.add_argument("--video-frames", type=int, default=64, help="frames per fixture video")
    ap.add_argument("--video-size", type=int, default=192, help="fixture frame size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    ap.add_argument("--limit", type=int, default=0, help="use at most this many videos (0 = all)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="dfbench-bench-"))
    if args.synth:
        import importlib

        root = importlib.import_module("dfbench.datasets.synth").ensure_embedded_data("mini") / "ffpp"
    else:
        root = build_ffpp_fixture(work / "ffpp", n_frames=args.video_frames, size=args.video_size, with_dfd=False).root
    adapter = FaceForensicsPP(root)
    index = adapter.build_index()
    rows = index if not args.limit else index.iloc[: args.limit]
    params = CropParams(frames=args.frames, size=args.size)
    detector = FaceDetector(thresholds=params.thresholds, min_face_size=params.min_face_size)
    print(f"{len(rows)} videos under {root}, {args.frames} frames each, torch threads {torch.get_num_threads()}")

    t = time.perf_counter()
    n_base = baseline(list(rows["path"]), params, detector)
    t_base = time.perf_counter() - t

    cache = CropCache(work / "cache")
    kw = dict(cache=cache, params=params, real_methods=adapter.real_methods, qualities=adapter.qualities,
              pool=index, progress=False)
    t = time.perf_counter()
    cold, _ = ensure_crops(rows, **kw)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm, _ = ensure_crops(rows, **kw)
    t_warm = time.perf_counter() - t
    assert warm.cached == len(rows) and warm.processed == 0, "second pass was not served from the cache"

    print(f"baseline: {n_base} crops in {t_base:.2f} s = {n_base / t_base:.1f} frames/s")
    print(f"cold:     {cold.frames} crops in {t_cold:.2f} s = {cold.frames / t_cold:.1f} frames/s "
          f"({cold.detected_references} reference videos detected, {len(cold.failed)} failed)")
    print(f"cached:   {warm.frames} crops in {t_warm:.3f} s = {warm.frames / t_warm:.1f} frames/s")
    print(f"speed-up cold vs baseline: {(cold.frames / t_cold) / (n_base / t_base):.1f}x (target >= 3x)")
    print(f"speed-up cached vs cold:   {t_cold / t_warm:.1f}x (target >= 50x)")


if __name__ == "__main__":
    main()
