"""Small Celeb-DF-, DFDC-preview- and WildDeepfake-like sets in their official layouts.

They are the embedded benchmark's cross-dataset test sets: the adapters that read the real
datasets (``dfbench.datasets.celebdf``, ``.dfdcp``, ``.wilddeepfake``) read them, and each
differs from the FF++-like training set the way the real datasets differ from FF++:

- ``celebdf/`` (Celeb-DF v2 layout): a *better* identity swap than FF++-like Deepfakes:
  more of the target's skin colour kept, half the face's mean colour difference matched per
  frame, a wider feathered blend, a milder up-sampling trace (decoder at 1/2.5 resolution)
  and some sensor-like noise on the swapped face. Real clips are new identities filmed twice.
- ``dfdcp/`` (DFDC preview layout): other capture conditions: 16:9 landscape frames
  twice as wide as the Celeb-DF-like ones, faces a smaller part of the frame, dim light, a colour cast and more sensor
  noise, plain indoor backgrounds; two manipulation pipelines: ``method_A`` a mid-quality
  swap (decoder at 1/2.2, partial colour match), ``method_B`` the graphics warp of
  ``manipulations.faceswap``.
- ``wdf/`` (WildDeepfake layout): face-crop PNG sequences in tar shards, reals and fakes
  alike *laundered* per sequence: random crop margin and size, down/up resizing, blur,
  noise and JPEG re-compression (same distribution for both classes, so laundering is no
  label cue). Fakes come from three swap pipelines.

Identities are new: every random stream here is keyed ``[seed, CROSS_STREAM, dataset,
part, k]``, which the FF++-like generator (``[seed, part, k]``) never uses. Generation is
deterministic given (scale, seed): videos are encoded single-threaded, tar members and gzip
headers carry fixed times, and the marker holds no timings. Each dataset is written to a
temporary folder and renamed into place, its marker written last.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.benchmark.preprocess.faces import crop_frame, square_boxes
from dfbench.datasets.synth.encode import write_video
from dfbench.datasets.synth.faces import (
    Identity,
    Motion,
    face_box,
    face_coords,
    random_identity,
    random_motion,
    render_background,
    render_face,
    sensor_noise,
    to_uint8,
)
from dfbench.datasets.synth.ffpp import MARKER, read_marker, removed_on_failure
from dfbench.datasets.synth.manipulations import PairVideos, faceswap

# bump when the content changes, so embedded sets are regenerated; v2: the Celeb-DF-like swap
# (CDF_SWAP); the DFDCP- and WildDeepfake-like sets are byte for byte as in v1
CROSS_GENERATOR_VERSION = 2
CROSS_STREAM = 7001  # second element of every random-stream key: disjoint from the FF++-like set's
# on-demand stand-ins (not among WRITERS): uadfv, dftimit, ffiw10k (synth/uadfv.py, dftimit.py, ffiw.py)
DATASET_CODES = {"celebdf": 1, "dfdcp": 2, "wdf": 3, "uadfv": 4, "dftimit": 5, "ffiw10k": 10}
DETECTION_THRESHOLD = 0.95  # MTCNN probability every screened frame of a kept capture must reach
VIDEO_QUALITY = "c23"  # Celeb-DF and DFDCP come compressed: H.264 crf 23 stands in for that


@dataclass(frozen=True)
class CrossScale:
    """Size of the three cross-dataset sets at one scale (``test`` counts are per class)."""

    frames: int  # frames per Celeb-DF / DFDCP video
    size: int  # Celeb-DF frame side; DFDCP frames are 1.375 × 0.875 of it; WDF renders at it
    cdf_identities: int  # Celeb-real identities, two clips each
    cdf_youtube: int  # YouTube-real clips
    cdf_test: int  # listed test videos per class
    dfdcp_test: int  # test videos per class (fakes: half method_A, half method_B)
    dfdcp_train: int  # train videos per class
    wdf_test: int  # test sequences per class
    wdf_train: int  # train sequences per class
    wdf_frames: tuple[int, int]  # sequence length range (inclusive)

    def __post_init__(self) -> None:
        # Measured: H.264 through PyAV differs from run to run (with the process's heap state)
        # when a frame's rows carry alignment padding: FFmpeg pads each plane row to 64
        # bytes and the padding is uninitialised. With yuv420p the chroma row is width/2, so
        # every width here is a multiple of 128 (see dfdcp_frame_shape) and nothing is padded.
        if self.size % 128:
            raise ValueError("size must be a multiple of 128 for byte-reproducible H.264")
        val_ids = len(range(0, self.cdf_identities, 10))
        if self.cdf_test > self.cdf_identities - val_ids:
            raise ValueError("cdf_test needs that many identities outside the carved validation split")


CROSS_SCALES: dict[str, CrossScale] = {
    "tiny": CrossScale(6, 128, 12, 4, 4, 4, 2, 4, 2, (5, 8)),
    "mini": CrossScale(12, 128, 28, 12, 20, 20, 8, 20, 12, (8, 16)),
    "small": CrossScale(16, 128, 60, 30, 40, 40, 20, 40, 30, (8, 24)),
    "full": CrossScale(32, 256, 80, 60, 60, 100, 100, 100, 100, (16, 48)),
}


def get_cross_scale(scale: str) -> CrossScale:
    if scale not in CROSS_SCALES:
        raise ConfigError(f"Unknown synthetic scale {scale!r}; choose one of {sorted(CROSS_SCALES)}.")
    return CROSS_SCALES[scale]


def _rng(seed: int, dataset: str, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, CROSS_STREAM, DATASET_CODES[dataset], *key])


# ----------------------------------------------------------------------------- captures
@dataclass(frozen=True)
class Capture:
    """One real recording: a person, their motion and the camera's conditions."""

    identity: Identity
    motion: Motion
    noise_key: tuple[int, ...]  # key of the sensor-noise stream
    noise_gain: float = 1.0  # × the standard sensor noise
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white-balance gains (colour cast)


def render_capture(c: Capture, size: int, seed: int, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The capture's frames, float32 (T, size, size, 3) = clean render × cast + noise, and
    that noise (manipulations keep the target's own noise outside what they change)."""
    noise_rng = _rng(seed, dataset, *c.noise_key)
    bg = render_background(c.identity, size)
    cast = np.array(c.cast, np.float32)
    out = np.empty((len(c.motion), size, size, 3), np.float32)
    noise = np.empty_like(out)
    for t in range(len(c.motion)):
        noise[t] = c.noise_gain * sensor_noise(noise_rng, size)
        out[t] = render_face(c.identity, c.motion.pose(t), size, background=bg) * cast + noise[t]
    return out, noise


def _screen(
    make: Callable[[int], Capture],
    needed: int,
    size: int,
    seed: int,
    dataset: str,
    crop_rows: slice | None = None,
) -> list[Capture]:
    """Captures (in candidate order) whose first, middle and last frames MTCNN detects with
    probability ≥ DETECTION_THRESHOLD, until ``needed``; the rest are skipped, never fixed."""
    from facenet_pytorch import MTCNN  # heavy; only when generating

    detector = MTCNN(keep_all=False, device="cpu")
    kept: list[Capture] = []
    k = 0
    while len(kept) < needed:
        if k > 4 * needed + 64:
            raise DatasetError(
                f"The synthetic {dataset} generator could not produce enough detectable faces."
            )
        batch = [make(k + j) for j in range(16)]
        k += 16
        images = []
        for cap in batch:
            frames, _ = render_capture(_pick_frames(cap), size, seed, dataset)
            for f in frames:
                images.append(Image.fromarray(to_uint8(f if crop_rows is None else f[crop_rows])))
        _, probs = detector.detect(images)
        for i, cap in enumerate(batch):
            ps = probs[3 * i : 3 * i + 3]
            ok = all(p is not None and p[0] is not None and float(p[0]) >= DETECTION_THRESHOLD for p in ps)
            if ok and len(kept) < needed:
                kept.append(cap)
    return kept


def _pick_frames(cap: Capture) -> Capture:
    """The capture restricted to its first, middle and last frames (for screening)."""
    n = len(cap.motion)
    picks = np.array([0, n // 2, n - 1])
    fields = {name: getattr(cap.motion, name)[picks] for name in cap.motion.__dataclass_fields__}
    return replace(cap, motion=Motion(**fields))


# ----------------------------------------------------------------------------- manipulations
def _rescale(img: np.ndarray, factor: float) -> np.ndarray:
    """Down-sample by ``factor`` (box filter) and back up (bicubic): an up-sampling trace."""
    size = img.shape[0]
    low = max(8, int(round(size / factor)))
    out = np.empty_like(img)
    for ch in range(3):
        small = Image.fromarray(np.ascontiguousarray(img[..., ch]), mode="F").resize(
            (low, low), Image.Resampling.BOX
        )
        out[..., ch] = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC))
    return out


def _blend(real: np.ndarray, content: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite ``content`` into ``real`` with ``alpha`` quantised to 1/255 (uint8 out): outside
    the blend weight the fake keeps the real pixels exactly, as FF++-style fakes do."""
    a = (np.rint(np.clip(alpha, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)
    return to_uint8(real + a[..., None] * (content - real))


@dataclass(frozen=True)
class SwapStyle:
    """How good an identity swap is: each knob weakens or strengthens one artifact."""

    skin_mix: float  # 0 = target's skin colour kept, 1 = source's (colour mismatch)
    downscale: float  # decoder resolution = frame / this (1 = none)
    blend_sigma: float  # blend feathering, × the face's horizontal semi-axis
    noise_gain: float  # sensor-like noise the generator adds to the swapped face
    colour_match: float  # fraction of the mean colour difference inside the face removed


# Celeb-DF-like swap since cross generator v2: still better than FF++-like Deepfakes on every
# knob (skin 0.35 vs 0.5, decoder 1/2.5 vs 1/3, blend 0.1 vs 0.06 × face width, some noise vs
# none), but it leaves a colour and resolution residue that survives JPEG. v1's swap (now
# WDF_HQ_SWAP) matched the colour fully and kept 0.9 × the sensor noise: with 70 training videos
# BiG-Arts (JPEG QF 75-100 on every training image) stayed at chance on it in the mini schedule
# (docs/synthetic_cross_dataset.md, "Generator v2" has the measurements).
CDF_SWAP = SwapStyle(skin_mix=0.35, downscale=2.5, blend_sigma=0.1, noise_gain=0.3, colour_match=0.5)
WDF_HQ_SWAP = SwapStyle(skin_mix=0.15, downscale=1.4, blend_sigma=0.16, noise_gain=0.9, colour_match=1.0)
DFDCP_SWAP = SwapStyle(skin_mix=0.4, downscale=2.2, blend_sigma=0.1, noise_gain=0.5, colour_match=0.5)
WDF_SWAPS = (
    SwapStyle(skin_mix=0.5, downscale=3.0, blend_sigma=0.06, noise_gain=0.0, colour_match=0.0),
    SwapStyle(skin_mix=0.3, downscale=2.0, blend_sigma=0.1, noise_gain=0.6, colour_match=0.6),
    WDF_HQ_SWAP,  # the high-quality pipeline (v1's Celeb-DF-like swap: the WDF-like set is unchanged)
)


def swap(p: PairVideos, style: SwapStyle, cast: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """The target's frames with a target/source hybrid face re-rendered at the target's pose
    and blended in (uint8 (T, H, W, 3)); ``cast`` is the capture's colour cast."""
    hybrid = p.target.swapped_with(p.source, skin_mix=style.skin_mix)
    bg = render_background(p.target, p.size)
    cast_arr = np.array(cast, np.float32)
    fakes = []
    for t in range(len(p.target_motion)):
        pose = p.target_motion.pose(t)
        content = render_face(hybrid, pose, p.size, background=bg) * cast_arr
        if style.downscale > 1.0:
            content = _rescale(content, style.downscale)
        if style.noise_gain > 0:
            content += style.noise_gain * sensor_noise(p.rng, p.size)
        co = face_coords(p.target, pose, p.size)
        region = ((co.u / 0.86) ** 2 + ((co.v - 0.02) / 0.9) ** 2 < 1.0).astype(np.float32)
        alpha = ndimage.gaussian_filter(region, sigma=style.blend_sigma * co.a_px)
        real = p.target_frames[t]
        inside = alpha > 0.5
        if style.colour_match > 0 and inside.sum() > 16:
            content += style.colour_match * (real[inside].mean(0) - content[inside].mean(0))
        fakes.append(_blend(real, content, alpha))
    return np.stack(fakes)


def swap_onto(
    target: Identity,
    motion: Motion,
    frames: np.ndarray,
    noise: np.ndarray,
    source: Identity,
    style: SwapStyle,
    rng: np.random.Generator,
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """``swap`` of ``source``'s face onto a rendered target video (``frames`` and ``noise`` as
    ``render_capture`` returns them); a swap draws the source's identity only, so no source
    video is rendered for it."""
    pair = PairVideos(
        size=frames.shape[1],
        target=target,
        target_motion=motion,
        target_frames=frames,
        target_noise=noise,
        source=source,
        source_motion=motion,
        source_frames=frames,
        rng=rng,
    )
    return swap(pair, style, cast)


# ----------------------------------------------------------------------------- writing helpers
def _write_shard(path: Path, members: Sequence[tuple[str, bytes]]) -> None:
    """A ``.tar.gz`` whose bytes depend only on the members (fixed times, owners, modes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


class _Bar:
    """A transient rich progress bar over generated videos (or nothing)."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


# ----------------------------------------------------------------------------- Celeb-DF-like
def _write_celebdf(out: Path, sc: CrossScale, seed: int, progress: bool) -> dict[str, int]:
    ds = "celebdf"

    def person(k: int) -> Capture:
        return Capture(
            random_identity(_rng(seed, ds, 1, k)),
            random_motion(_rng(seed, ds, 2, k, 0), sc.frames),
            (3, k, 0),
        )

    people = _screen(person, sc.cdf_identities + sc.cdf_youtube, sc.size, seed, ds)
    celebs, youtube = people[: sc.cdf_identities], people[sc.cdf_identities :]
    n = len(celebs)
    # clip 1 of every identity: the same person filmed again (new motion and noise)
    clips = {
        (i, c): cap
        if c == 0
        else replace(cap, motion=random_motion(_rng(seed, ds, 2, i, 1), sc.frames), noise_key=(3, i, 1))
        for i, cap in enumerate(celebs)
        for c in (0, 1)
    }
    sources = {(i, c): (i + 1 + int(_rng(seed, ds, 4, i, c).integers(0, n - 1))) % n for (i, c) in clips}
    listed: list[str] = []
    # test: clip 1 of the first cdf_test identities outside the carved val (id divisible by 10);
    # its fakes are listed too, and a quarter of the listed reals come from YouTube-real
    test_ids = [i for i in range(n) if i % 10 != 0][: sc.cdf_test]
    n_yt = min(sc.cdf_test // 4, len([j for j in range(len(youtube)) if j % 10 != 0]))
    yt_test = [j for j in range(len(youtube)) if j % 10 != 0][:n_yt]
    listed += [f"1 YouTube-real/{j:05d}.mp4" for j in yt_test]
    listed += [f"1 Celeb-real/id{i}_0001.mp4" for i in test_ids[: sc.cdf_test - n_yt]]
    listed += [f"0 Celeb-synthesis/id{i}_id{sources[(i, 1)]}_0001.mp4" for i in test_ids]
    with _Bar(
        progress, len(clips) + len(youtube), f"synthetic Celeb-DF ({len(clips) * 2 + len(youtube)} videos)"
    ) as tick:
        for (i, c), cap in clips.items():
            real, noise = render_capture(cap, sc.size, seed, ds)
            write_video(out / "Celeb-real" / f"id{i}_{c:04d}.mp4", to_uint8(real), VIDEO_QUALITY)
            s = sources[(i, c)]
            fake = swap_onto(cap.identity, cap.motion, real, noise, celebs[s].identity, CDF_SWAP, _rng(seed, ds, 5, i, c))
            write_video(out / "Celeb-synthesis" / f"id{i}_id{s}_{c:04d}.mp4", fake, VIDEO_QUALITY)
            tick()
        for j, cap in enumerate(youtube):
            write_video(
                out / "YouTube-real" / f"{j:05d}.mp4",
                to_uint8(render_capture(cap, sc.size, seed, ds)[0]),
                VIDEO_QUALITY,
            )
            tick()
    (out / "List_of_testing_videos.txt").write_text("\n".join(listed) + "\n")
    return {
        "Celeb-real": len(clips),
        "YouTube-real": len(youtube),
        "Celeb-synthesis": len(clips),
        "listed": len(listed),
    }


# ----------------------------------------------------------------------------- DFDCP-like
def dfdcp_frame_shape(sc: CrossScale) -> tuple[int, int]:
    """(height, width) of the DFDCP-like frames: 16:9 landscape, twice as wide as the
    Celeb-DF-like frames (the width stays a multiple of 128: reproducible H.264, see CrossScale)."""
    width = 2 * sc.size
    return int(round(width * 9 / 16 / 16) * 16), width


def _indoor(identity: Identity, rng: np.random.Generator) -> Identity:
    """A plain, dim indoor wall instead of the identity's colourful backdrop."""
    wall = rng.uniform(60, 170) * np.array([1.0, 0.96, 0.9]) + rng.normal(0, 8, 3)
    a = tuple(float(x) for x in np.clip(wall, 0, 255))
    b = tuple(float(x) for x in np.clip(wall * rng.uniform(0.75, 0.95), 0, 255))
    return replace(identity, bg_a=a, bg_b=b, bg_blobs=identity.bg_blobs[:1])  # type: ignore[arg-type]


def _write_dfdcp(out: Path, sc: CrossScale, seed: int, progress: bool) -> dict[str, int]:
    ds = "dfdcp"
    height, width = dfdcp_frame_shape(sc)
    top = (width - height) // 2
    rows = slice(top, top + height)  # frames are rendered square (side = width) and cut to landscape

    def capture(k: int) -> Capture:
        rng = _rng(seed, ds, 6, k)
        motion = random_motion(_rng(seed, ds, 2, k), sc.frames)
        motion = replace(
            motion, scale=motion.scale * rng.uniform(0.45, 0.55), gain=motion.gain * rng.uniform(0.62, 0.82)
        )
        cast = tuple(float(x) for x in np.clip(1.0 + rng.normal(0.0, 0.07, 3), 0.8, 1.2))
        identity = _indoor(random_identity(_rng(seed, ds, 1, k)), rng)
        return Capture(identity, motion, (3, k), noise_gain=float(rng.uniform(1.4, 2.0)), cast=cast)  # type: ignore[arg-type]

    n_per_class = sc.dfdcp_test + sc.dfdcp_train
    # each real capture is the target of one fake; sources are other captures' people
    caps = _screen(capture, n_per_class, width, seed, ds, crop_rows=rows)
    meta: dict[str, dict[str, Any]] = {}
    with _Bar(progress, n_per_class, f"synthetic DFDC preview ({2 * n_per_class} videos)") as tick:
        frames_of = {k: render_capture(cap, width, seed, ds) for k, cap in enumerate(caps)}
        for k, cap in enumerate(caps):
            actor = 1_000_000 + 1009 * k  # 7-digit ids like the release's
            split = "test" if k < sc.dfdcp_test else "train"
            real_key = f"original_videos/{actor}/{actor}_A/{actor}_A_001.mp4"
            write_video(out / real_key, to_uint8(frames_of[k][0][:, rows]), VIDEO_QUALITY)
            meta[real_key] = {"label": "real", "set": split}
            s = (k + 1 + int(_rng(seed, ds, 4, k).integers(0, len(caps) - 1))) % len(caps)
            method = "method_A" if k % 2 == 0 else "method_B"
            pair = PairVideos(
                size=width,
                target=cap.identity,
                target_motion=cap.motion,
                target_frames=frames_of[k][0],
                target_noise=frames_of[k][1],
                source=caps[s].identity,
                source_motion=caps[s].motion,
                source_frames=frames_of[s][0],
                rng=_rng(seed, ds, 5, k),
            )
            fake = swap(pair, DFDCP_SWAP, cap.cast) if method == "method_A" else faceswap(pair)[0]
            source = 1_000_000 + 1009 * s
            fake_key = f"{method}/{actor}/{actor}_A/{source}_{actor}_A_001.mp4"
            write_video(out / fake_key, fake[:, rows], VIDEO_QUALITY)
            meta[fake_key] = {"label": "fake", "set": split, "original": real_key}
            tick()
    (out / "dataset.json").write_text(json.dumps(dict(sorted(meta.items())), indent=1))
    return {"real": n_per_class, "fake": n_per_class}


# ----------------------------------------------------------------------------- WDF-like
def launder(img: np.ndarray, side: int, rng: np.random.Generator, ops: dict[str, float]) -> np.ndarray:
    """One face crop through a sequence's laundering chain: resize to ``side`` (with an
    extra down/up pass), blur, noise, JPEG — in the order a re-upload would apply them."""
    pil = Image.fromarray(img).resize((side, side), Image.Resampling.BILINEAR)
    if ops["down"] < 1.0:
        low = max(8, int(side * ops["down"]))
        pil = pil.resize((low, low), Image.Resampling.BILINEAR).resize(
            (side, side), Image.Resampling.BILINEAR
        )
    if ops["blur"] > 0:
        pil = pil.filter(ImageFilter.GaussianBlur(radius=ops["blur"]))
    arr = np.asarray(pil, np.float32)
    if ops["noise"] > 0:
        arr = arr + rng.normal(0.0, ops["noise"], arr.shape)
    out = Image.fromarray(to_uint8(arr))
    if ops["jpeg"] > 0:
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(ops["jpeg"]))
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return np.asarray(out, np.uint8)


def _laundering(rng: np.random.Generator) -> dict[str, float]:
    """A sequence's laundering chain (each step present with its own probability)."""
    return {
        "down": float(rng.uniform(0.45, 0.9)) if rng.random() < 0.4 else 1.0,
        "blur": float(rng.uniform(0.3, 1.2)) if rng.random() < 0.5 else 0.0,
        "noise": float(rng.uniform(1.0, 5.0)) if rng.random() < 0.5 else 0.0,
        "jpeg": float(rng.integers(35, 91)) if rng.random() < 0.8 else 0.0,
    }


def _write_wdf(out: Path, sc: CrossScale, seed: int, progress: bool) -> dict[str, int]:
    ds = "wdf"
    lo, hi = sc.wdf_frames
    counts = {
        "real_test": sc.wdf_test,
        "real_train": sc.wdf_train,
        "fake_test": sc.wdf_test,
        "fake_train": sc.wdf_train,
    }
    total = sum(counts.values())
    stem = 0
    k = 0  # person index: every shard ("video") is a new person
    with _Bar(progress, total, f"synthetic WildDeepfake ({total} sequences)") as tick:
        for folder, n_seq in counts.items():
            cls = folder.split("_")[0]
            done = 0
            while done < n_seq:
                stem += 1
                k += 1
                in_shard = min(n_seq - done, 2)  # two face sequences per video (the last maybe one)
                members: list[tuple[str, bytes]] = []
                target = random_identity(_rng(seed, ds, 1, k))
                source = random_identity(_rng(seed, ds, 1, 100_000 + k))
                for q in range(in_shard):
                    rng = _rng(seed, ds, 6, k, q)
                    length = int(rng.integers(lo, hi + 1))
                    motion = random_motion(_rng(seed, ds, 2, k, q), length)
                    cap = Capture(target, motion, (3, k, q))
                    frames, noise = render_capture(cap, sc.size, seed, ds)
                    if cls == "fake":
                        style = WDF_SWAPS[int(rng.integers(0, len(WDF_SWAPS)))]
                        frames_u8 = swap_onto(target, motion, frames, noise, source, style, _rng(seed, ds, 5, k, q))
                    else:
                        frames_u8 = to_uint8(frames)
                    margin, side, ops = (
                        float(rng.uniform(1.15, 1.45)),
                        int(rng.integers(56, 161)),
                        _laundering(rng),
                    )
                    for t in range(length):
                        box = square_boxes(np.array([face_box(target, motion.pose(t), sc.size)]), margin)[0]
                        crop = crop_frame(frames_u8[t], box, sc.size)
                        members.append((f"./{stem}/{cls}/{q}/{t}.png", _png(launder(crop, side, rng, ops))))
                    tick()
                _write_shard(out / folder / f"{stem}.tar.gz", members)
                done += in_shard
    return {folder: n for folder, n in counts.items()}


# ----------------------------------------------------------------------------- public API
WRITERS: dict[str, Callable[[Path, CrossScale, int, bool], dict[str, int]]] = {
    "celebdf": _write_celebdf,
    "dfdcp": _write_dfdcp,
    "wdf": _write_wdf,
}


def _matches(marker: dict[str, Any] | None, scale: str, seed: int) -> bool:
    return (
        marker is not None
        and marker.get("version") == CROSS_GENERATOR_VERSION
        and marker.get("scale") == scale
        and marker.get("seed") == seed
    )


def cross_dataset_complete(root: Path, scale: str = "mini", seed: int = 0) -> bool:
    """Whether ``root`` holds all three sets of this scale, seed and generator version."""
    return all(_matches(read_marker(Path(root) / name), scale, seed) for name in WRITERS)


def _install(tmp: Path, out: Path, scale: str, seed: int) -> None:
    """Rename the finished set into place; a concurrent writer's identical set wins."""
    if out.exists():
        marker = read_marker(out)
        if _matches(marker, scale, seed):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, trash)  # an older synthetic set or an empty folder (checked before)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(tmp, out)
    except OSError:
        if _matches(read_marker(out), scale, seed):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise


def _generate_one(name: str, out: Path, spec: CrossScale, scale: str, seed: int, progress: bool) -> None:
    if out.exists() and read_marker(out) is None and any(out.iterdir()):
        raise DatasetError(
            f"{out} exists and is not a dfbench synthetic set; move it away or choose another root."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with removed_on_failure(tmp, out):
        tmp.mkdir()
        counts = WRITERS[name](tmp, spec, seed, progress)
        marker = {
            "generator": f"dfbench synthetic {name}-like set",
            "version": CROSS_GENERATOR_VERSION,
            "scale": scale,
            "seed": seed,
            "spec": asdict(spec),
            "counts": counts,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))  # last: the set is complete
        _install(tmp, out, scale, seed)


def generate_cross_dataset_sets(
    root: Path,
    *,
    scale: str = "mini",
    seed: int = 0,
    progress: bool = True,
    datasets: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write the Celeb-DF-, DFDCP- and WildDeepfake-like sets as ``root/{celebdf,dfdcp,wdf}``.

    A set whose marker already matches (scale, seed, generator version) is kept; one from
    another version, scale or seed is replaced; a folder that is not a synthetic set is never
    touched (``DatasetError``). ``datasets`` limits which of the three are made. Returns
    {name: folder}; the folder names are the adapters' ``embedded_subdir``.
    """
    spec = get_cross_scale(scale)
    names = list(WRITERS) if datasets is None else list(datasets)
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        raise ConfigError(f"Unknown cross-dataset set(s) {unknown}; choose from {list(WRITERS)}.")
    root = Path(root).expanduser()
    out: dict[str, Path] = {}
    for name in names:
        folder = root / name
        if not _matches(read_marker(folder), scale, seed):
            _generate_one(name, folder, spec, scale, seed, progress)
        out[name] = folder
    return out


def iter_files(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` in a stable order (determinism checks hash these)."""
    yield from sorted(p for p in Path(folder).rglob("*") if p.is_file())


__all__ = [
    "CDF_SWAP",
    "CROSS_GENERATOR_VERSION",
    "CROSS_SCALES",
    "CrossScale",
    "DFDCP_SWAP",
    "WDF_HQ_SWAP",
    "cross_dataset_complete",
    "dfdcp_frame_shape",
    "generate_cross_dataset_sets",
    "get_cross_scale",
    "launder",
    "swap",
    "swap_onto",
]
