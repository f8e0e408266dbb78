"""Throughput of face-crop preprocessing on HD video, against its floor.

    python benchmarks/preprocess.py                         # one 1280x720, 300-frame video
    python benchmarks/preprocess.py --videos 2 --threads 2  # both photos, two torch threads
    python benchmarks/preprocess.py --iou-frames 32         # + downscaled-vs-full box check

The videos are the real-photo fixture (``render_wide_frames``: scikit-image's astronaut,
matplotlib's Grace Hopper) rendered at ``--width`` x ``--height``, ``--video-frames``
frames, H.264 crf 23. Each video is processed by, in one run:

  (a) naive     decode every frame to RGB, MTCNN on each sampled frame alone at full
                resolution, crop (no batching, no cache);
  (b) today     ``ensure_crops`` as it was before detection ran on a downscaled copy
                (``CropParams(detect_size=0)``), into an empty cache;
  (c) new       ``ensure_crops`` with the default parameters, into an empty cache;
  (d) floor     decoding every frame (no colour conversion) + batched MTCNN on the sampled
                frames already downscaled to the detection size: nothing else;
  cached        (c) again: every entry read from the cache.

Figures are sampled (= cropped) frames per second. Targets: (c) >= 3 x (b),
(c) >= 80 % of (d), cached >= 50 x (c).

``--iou-frames K`` also renders K frames per photo at 1280x720 and 1920x1080 and reports
the share of frames whose box from the downscaled copy (mapped back) has IoU >= 0.9 with
the full-resolution box (target: >= 95 %).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch

from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.benchmark.preprocess.faces import (
    FaceDetector,
    box_iou,
    crop_frame,
    detection_shape,
    downscale,
    fill_missing,
    square_boxes,
)
from dfbench.benchmark.preprocess.fixture import encode_video, render_wide_frames
from dfbench.benchmark.preprocess.pipeline import ensure_crops
from dfbench.benchmark.preprocess.video import read_frames, sample_indices

PHOTOS = ("astronaut", "grace")


def naive(paths: list[Path], params: CropParams, detector: FaceDetector) -> int:
    """(a): the straightforward way; returns the number of crops made."""
    made = 0
    for path in paths:
        with av.open(str(path)) as container:
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


def decode_all(path: Path) -> int:
    """Decode every frame the way ``read_frames`` does (threaded), converting none."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def floor(paths: list[Path], params: CropParams, detector: FaceDetector) -> tuple[int, float]:
    """(d): seconds of decoding every frame + detection of the sampled frames at the
    detection size; the sampled frames are prepared (RGB, downscaled) outside the clock."""
    seconds, made = 0.0, 0
    for path in paths:
        sampled = read_frames(path, count=params.frames)
        small = downscale(sampled.frames, detection_shape(sampled.height, sampled.width, params.detect_size))
        t = time.perf_counter()
        decode_all(path)
        detector.detect(small)
        seconds += time.perf_counter() - t
        made += len(small)
    return made, seconds


def index_of(paths: list[Path]) -> pd.DataFrame:
    """Index rows (the schema ``ensure_crops`` reads) for real videos, one per file."""
    return pd.DataFrame({
        "dataset": "bench", "video_id": [f"bench/real/hd/{p.stem}" for p in paths], "method": "real",
        "quality": "hd", "label": 0, "target_id": "", "path": [str(p) for p in paths], "mask_path": "",
    })


def timed_crops(index: pd.DataFrame, cache: CropCache, params: CropParams, workers: int) -> tuple[int, float]:
    t = time.perf_counter()
    report, _ = ensure_crops(index, cache=cache, params=params, real_methods=["real"], qualities=["hd"],
                             progress=False, workers=workers)
    seconds = time.perf_counter() - t
    assert not report.failed, report.failed
    return report.frames, seconds


def iou_check(frames_per_photo: int) -> None:
    full_det, small_det = FaceDetector(detect_size=0), FaceDetector()
    for width, height in ((1280, 720), (1920, 1080)):
        frames = np.stack([f for p in PHOTOS for f in render_wide_frames(p, width, height, frames_per_photo)])
        full, small = full_det.detect(frames), small_det.detect(frames)
        both = full.face_found & small.face_found
        iou = np.where(both, box_iou(full.boxes, small.boxes), 0.0)
        shape = detection_shape(height, width, small_det.detect_size)
        print(f"IoU {width}x{height} (detected at {shape[1]}x{shape[0]}): {len(iou)} frames, "
              f"{(iou >= 0.9).mean():.1%} at IoU >= 0.9 (target >= 95%), median {np.median(iou):.3f}, "
              f"min {iou.min():.3f}, faces found full/downscaled {full.face_found.sum()}/{small.face_found.sum()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=1, choices=[1, 2], help="1: the astronaut; 2: + Grace Hopper")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--video-frames", type=int, default=300)
    ap.add_argument("--frames", type=int, default=32, help="frames sampled per video")
    ap.add_argument("--size", type=int, default=299, help="crop size")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = leave as is)")
    ap.add_argument("--workers", type=int, default=0, help="processes for (c) (0 = this one)")
    ap.add_argument("--iou-frames", type=int, default=0, help="frames per photo for the IoU check (0 = skip)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="dfbench-bench-"))
    paths = []
    for photo in PHOTOS[: args.videos]:
        frames = render_wide_frames(photo, args.width, args.height, args.video_frames)
        paths.append(encode_video(frames, work / f"{photo}.mp4", 23))
    new = CropParams(frames=args.frames, size=args.size)
    today = CropParams(frames=args.frames, size=args.size, detect_size=0)
    shape = detection_shape(args.height, args.width, new.detect_size)
    print(f"{len(paths)} video(s) {args.width}x{args.height}, {args.video_frames} frames, {args.frames} sampled, "
          f"crops {args.size} px, detection at {shape[1]}x{shape[0]}, torch threads {torch.get_num_threads()}")
    index = index_of(paths)

    full_res = FaceDetector(detect_size=0)
    t = time.perf_counter()
    n_a = naive(paths, today, full_res)
    t_a = time.perf_counter() - t
    n_b, t_b = timed_crops(index, CropCache(work / "cache-today"), today, 0)
    cache = CropCache(work / "cache-new")
    n_c, t_c = timed_crops(index, cache, new, args.workers)
    n_d, t_d = floor(paths, new, full_res)  # full_res on frames already at the detection size
    n_w, t_w = timed_crops(index, cache, new, 0)

    rate = {k: n / s for k, (n, s) in {"a": (n_a, t_a), "b": (n_b, t_b), "c": (n_c, t_c), "d": (n_d, t_d),
                                        "cached": (n_w, t_w)}.items()}
    print(f"(a) naive:  {n_a} crops in {t_a:7.2f} s = {rate['a']:8.1f} frames/s")
    print(f"(b) today:  {n_b} crops in {t_b:7.2f} s = {rate['b']:8.1f} frames/s")
    print(f"(c) new:    {n_c} crops in {t_c:7.2f} s = {rate['c']:8.1f} frames/s"
          + (f" ({args.workers} workers)" if args.workers > 1 else ""))
    print(f"(d) floor:  {n_d} frames in {t_d:7.2f} s = {rate['d']:8.1f} frames/s (decode all + detect sampled)")
    print(f"cached (c): {n_w} crops in {t_w:7.3f} s = {rate['cached']:8.1f} frames/s")
    print(f"(c)/(b) = {rate['c'] / rate['b']:.2f}x (target >= 3x); (c)/(a) = {rate['c'] / rate['a']:.2f}x; "
          f"(c)/(d) = {rate['c'] / rate['d']:.0%} (target >= 80%); cached/(c) = {rate['cached'] / rate['c']:.0f}x "
          f"(target >= 50x)")
    if args.iou_frames:
        iou_check(args.iou_frames)


if __name__ == "__main__":
    main()
