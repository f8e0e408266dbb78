"""A tiny dataset in the official FaceForensics++ layout, built from public-domain photos.

Used by the tests and by ``benchmarks/preprocess.py``: it needs no download and no
synthetic-face generator. The faces are real photographs MTCNN detects reliably:
scikit-image's ``astronaut()`` (Eileen Collins, NASA, public domain) and matplotlib's
``grace_hopper.jpg`` (US Navy, public domain). Each video is a window sliding slowly over
a photo (the face moves a few pixels per frame), encoded with libx264 at raw (crf 0), c23
and c40. A "fake" is its target's video with a tinted ellipse over the face (Deepfakes,
with a mask video) or a noise texture over the lower face (NeuralTextures), so a fake and
its target real share geometry exactly, as FF++ fakes do.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

QUALITY_CRF = {"raw": 0, "c23": 23, "c40": 40}

# (photo, window x, window y, window side, flip) in photo pixels; the face sits inside the window
_REALS = {
    "000": ("astronaut", 110, 0, 256, False),
    "001": ("grace", 115, 80, 300, False),
    "002": ("astronaut", 96, 10, 240, True),
    "003": ("grace", 100, 70, 320, True),
    "004": ("astronaut", 120, 20, 220, False),
    "005": ("grace", 130, 100, 280, False),
}
_ACTORS = {"01__talking": ("astronaut", 100, 5, 250, True), "02__talking": ("grace", 120, 90, 290, True)}
# face ellipses (centre x, centre y, half width, half height) in photo pixels, from MTCNN's boxes
_FACE = {"astronaut": (224, 120, 40, 52), "grace": (265, 232, 80, 100)}

SPLITS = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}
FAKES = {
    "Deepfakes": ["000_001", "001_000", "002_003", "003_002", "004_005", "005_004"],
    "NeuralTextures": ["000_001", "001_000", "002_003", "003_002", "004_005", "005_004"],
}
DFD_FAKES = ["01_02__talking__AB12CD34"]


def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage.data import astronaut  # test extra; ships the photo inside the wheel

        return np.ascontiguousarray(astronaut()[..., :3])
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def _ellipse(shape: tuple[int, int], face: tuple[int, int, int, int], lower_only: bool = False) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cx, cy, ax, ay = face
    inside = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0
    if lower_only:
        inside &= yy > cy
    return inside


def _fake_photo(photo: np.ndarray, face: tuple[int, int, int, int], method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The manipulated photo and its binary mask (uint8 0/255)."""
    rng = np.random.default_rng(seed)
    out = photo.astype(np.float32)
    if method == "NeuralTextures":
        region = _ellipse(photo.shape[:2], face, lower_only=True)
        out[region] += rng.normal(0, 18, size=(int(region.sum()), 3))
    else:
        region = _ellipse(photo.shape[:2], face)
        out[region] = out[region] * np.array([1.15, 0.9, 0.85], np.float32) + 6
    return np.clip(out, 0, 255).astype(np.uint8), (region * 255).astype(np.uint8)


def _frames(photo: np.ndarray, x: int, y: int, side: int, flip: bool, n: int, size: int) -> list[np.ndarray]:
    """``n`` square frames of ``size`` px from a ``side``-px window at (x, y), see ``_window_frames``."""
    return _window_frames(photo, x, y, (side, side), flip, n, (size, size))


def _window_step(t: int) -> int:
    """How far (in 1 px down, 2 px right steps) the window of frame ``t`` has moved: a
    triangle wave of period 32."""
    return t % 16 if (t // 16) % 2 == 0 else 16 - t % 16


def _window_frames(
    photo: np.ndarray, x: int, y: int, window: tuple[int, int], flip: bool, n: int, size: tuple[int, int]
) -> list[np.ndarray]:
    """``n`` frames of ``size`` = (width, height) px cut from a (width, height) ``window``
    of the photo: the window moves 2 px right and 1 px down (photo pixels) per frame, and
    back again every 16 frames (a triangle wave), so long videos stay inside the photo."""
    src = photo[:, ::-1] if flip else photo
    frames = []
    for t in range(n):
        d = _window_step(t)
        x0, y0 = x + 2 * d, y + d
        crop = src[y0 : y0 + window[1], x0 : x0 + window[0]]
        frames.append(np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC)))
    return frames


# 16:9 windows (x, y, width, height) in the pixels of the photo padded by _PAD on every
# side; each holds the whole face, about 40 % of the window's height (an FF++-like framing)
_PAD = 300
_WIDE = {"astronaut": (316, 300, 448, 252), "grace": (117, 280, 896, 504)}


def render_wide_frames(photo: str, width: int, height: int, n_frames: int) -> list[np.ndarray]:
    """``n_frames`` frames of ``width`` × ``height`` (e.g. 1280 × 720, 1920 × 1080) showing
    the face of ``photo`` ("astronaut" or "grace"): a 16:9 window of the photo, its borders
    extended by repeating the edge pixels (no second face), resized to the frame size and
    sliding a few pixels per frame."""
    x, y, ww, wh = _WIDE[photo]
    padded = np.pad(_photo(photo), ((_PAD, _PAD), (_PAD, _PAD), (0, 0)), mode="edge")
    return _window_frames(padded, x, y, (ww, wh), False, n_frames, (width, height))


def wide_frame_shifts(photo: str, width: int, height: int, n_frames: int) -> np.ndarray:
    """(n_frames, 2) float: how far (x, y), in frame pixels, the face of frame t of
    ``render_wide_frames(photo, width, height, n_frames)`` sits from where it is in frame 0.
    The face never changes size, so a face box minus its shift is the same box in every
    frame: what is left over is the detector's own jitter."""
    _, _, ww, wh = _WIDE[photo]
    d = np.array([_window_step(t) for t in range(n_frames)], np.float64)
    # the window moves right/down, so the face moves left/up in the frame
    return np.stack([-2 * d * width / ww, -d * height / wh], axis=1)


def encode_video(frames: Sequence[np.ndarray], path: Path, crf: int, *, gray: bool = False) -> Path:
    """H.264 (libx264, yuv420p) at ``crf``; crf 0 is lossless in YUV like FF++'s raw videos."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            rgb = np.repeat(f[..., None], 3, axis=2) if gray else f
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass(frozen=True)
class FixtureInfo:
    root: Path
    n_frames: int
    size: int
    originals: dict[str, list[np.ndarray]]  # "<method>/<name>" -> uncompressed RGB frames


def build_ffpp_fixture(
    root: Path,
    *,
    n_frames: int = 8,
    size: int = 128,
    qualities: Sequence[str] = ("raw", "c23", "c40"),
    with_dfd: bool = True,
) -> FixtureInfo:
    """Write the FF++-layout fixture under ``root`` (see the module docstring)."""
    root = Path(root)
    photos = {name: _photo(name) for name in ("astronaut", "grace")}
    originals: dict[str, list[np.ndarray]] = {}
    reals = {("youtube", k): v for k, v in _REALS.items()}
    if with_dfd:
        reals.update({("actors", k): v for k, v in _ACTORS.items()})
    for (method, name), (photo, x, y, side, flip) in reals.items():
        frames = _frames(photos[photo], x, y, side, flip, n_frames, size)
        originals[f"{method}/{name}"] = frames
        for q in qualities:
            encode_video(frames, root / "original_sequences" / method / q / "videos" / f"{name}.mp4", QUALITY_CRF[q])
    fakes = [(m, n, n.split("_")[0], "youtube") for m, names in FAKES.items() for n in names]
    if with_dfd:
        fakes += [("DeepFakeDetection", n, n.split("_")[0] + "__" + n.split("__")[1], "actors") for n in DFD_FAKES]
    for seed, (method, name, target, real_method) in enumerate(fakes):
        photo, x, y, side, flip = reals[(real_method, target)]
        fake, mask = _fake_photo(photos[photo], _FACE[photo], method, seed)
        frames = _frames(fake, x, y, side, flip, n_frames, size)
        originals[f"{method}/{name}"] = frames
        for q in qualities:
            encode_video(frames, root / "manipulated_sequences" / method / q / "videos" / f"{name}.mp4", QUALITY_CRF[q])
        if method == "Deepfakes":
            mask_frames = [f[..., 0] for f in _frames(np.repeat(mask[..., None], 3, 2), x, y, side, flip, n_frames, size)]
            encode_video(mask_frames, root / "manipulated_sequences" / method / "masks" / "videos" / f"{name}.mp4", 0, gray=True)
    write_splits(root / "splits", SPLITS)
    return FixtureInfo(root=root, n_frames=n_frames, size=size, originals=originals)


def write_splits(folder: Path, splits: dict[str, list[list[str]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, pairs in splits.items():
        (folder / f"{split}.json").write_text(json.dumps(pairs))


def add_bad_videos(root: Path, *, n_frames: int = 8, size: int = 128) -> dict[str, Path]:
    """Add youtube 006 (no face: a smooth gradient with noise) and 007 (truncated to a third
    of its bytes) at c23, plus Deepfakes 006_007 (its target has no face), and put the
    pair in the test split."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:size, :size]
    faceless = [
        np.clip(np.stack([xx + t, yy, 128 + 0 * xx], -1) * 1.5 + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
        for t in range(n_frames)
    ]
    videos = root / "original_sequences" / "youtube" / "c23" / "videos"
    no_face = encode_video(faceless, videos / "006.mp4", 23)
    source = root / "original_sequences" / "youtube" / "c23" / "videos" / "000.mp4"
    truncated = videos / "007.mp4"
    data = source.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    fake_of_faceless = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos" / "006_007.mp4"
    shutil.copyfile(no_face, fake_of_faceless)
    splits = {k: [list(p) for p in v] for k, v in SPLITS.items()}
    splits["test"].append(["006", "007"])
    write_splits(root / "splits", splits)
    return {"no_face": no_face, "truncated": truncated, "fake_of_faceless": fake_of_faceless}
