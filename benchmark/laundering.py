"""Laundering (post-processing) operators for robustness curves (BiG-Arts Section 5, Table 8, Fig. 9).

Every operator has the perturbation-registry signature

    fn(images: uint8 (N, H, W, 3), value: float, rng: np.random.Generator) -> uint8 (N, H, W, 3)

and leaves its input untouched. ``value`` is the operator's strength in the paper's units:

  jpeg            quality factor 60–100 (100 = least damage)          Fig. 9(a)
  h264            x264 constant rate factor 5–30 (5 = least damage)   Table 8
  gaussian_blur   σ of a 3×3 Gaussian kernel, 0–0.5 (0 = identity)    Fig. 9(b)
  resize          scale 0.1–1, down then back up (1 = identity)       Fig. 9(c)
  gaussian_noise  σ in 0–255 pixel levels, 0–0.5 (0 = identity)       Fig. 9(d)

``h264`` re-encodes real video: pass ``video_ids`` (one per frame) to encode each video's
frames as their own sequence; ``launder`` does that for a FrameSet.

Importing this module registers the five operators in
``dfbench.benchmark.procedures.PERTURBATIONS`` (listed in ``dfbench.benchmark.extensions``).
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Sequence

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import PERTURBATIONS

Operator = Callable[..., np.ndarray]


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 arrays (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * np.log10(255.0**2 / mse)


# --------------------------------------------------------------------------- JPEG
def jpeg_image(image: np.ndarray, quality: int) -> np.ndarray:
    """One uint8 (H, W, 3) image through a JPEG encode/decode at ``quality`` (PIL/libjpeg)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


def jpeg(images: np.ndarray, value: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """JPEG re-compression at quality factor ``value`` (1–100).

    The paper calls QF 100 "not compressed"; its OpenCV ``imencode`` at 100 does encode
    (4:2:0 chroma, quantisation step 1), as PIL does here: QF 100 is a near-identity.
    """
    images = _check(images)
    quality = int(round(value))
    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG quality must be in [1, 100], got {value}.")
    return np.stack([jpeg_image(img, quality) for img in images]) if len(images) else images.copy()


# --------------------------------------------------------------------------- H.264
def _encode_decode(frames: np.ndarray, crf: int, fps: int, preset: str, threads: int) -> np.ndarray:
    t, h, w, _ = frames.shape
    # yuv420p needs even sides: pad by edge replication, crop after decoding
    ph, pw = h % 2, w % 2
    padded = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else frames
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = w + pw, h + ph
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset, "threads": str(threads)}
        for frame in padded:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf, mode="r") as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} frames for {t}")
    return np.stack(decoded)[:, :h, :w]


def h264(
    images: np.ndarray,
    value: float,
    rng: np.random.Generator | None = None,
    *,
    video_ids: Sequence[str] | None = None,
    fps: int = 25,
    preset: str = "medium",
    threads: int = 1,
) -> np.ndarray:
    """Re-encode the frames as H.264 video (PyAV libx264, yuv420p, CRF ``value``) and decode them.

    With ``video_ids`` each video's frames (in array order) form one sequence, else all
    frames do. ffmpeg's defaults (preset medium, 25 fps) stand in for the paper's
    unstated FFMPEG settings; ``threads=1`` keeps the bitstream identical on any machine.
    The sampled test frames of a video are encoded, not the full original video.
    """
    images = _check(images)
    crf = int(round(value))
    if not 0 <= crf <= 51:
        raise ConfigError(f"H.264 CRF must be in [0, 51], got {value}.")
    if len(images) == 0:
        return images.copy()
    out = np.empty_like(images)
    if video_ids is None:
        groups = [np.arange(len(images))]
    else:
        ids = np.asarray([str(v) for v in video_ids])
        if len(ids) != len(images):
            raise ValueError(f"{len(ids)} video ids for {len(images)} images")
        groups = [np.flatnonzero(ids == v) for v in dict.fromkeys(ids)]
    for rows in groups:
        out[rows] = _encode_decode(images[rows], crf, fps, preset, threads)
    return out


# --------------------------------------------------------------------------- blur, resize, noise
def gaussian_blur(images: np.ndarray, value: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """3×3 Gaussian blur N(0, σ = ``value``) (OpenCV ``GaussianBlur`` with ksize 3); σ = 0 is the identity.

    Kernel taps w(k) ∝ exp(−k² / 2σ²), k ∈ {−1, 0, 1}, normalised, applied separably with
    OpenCV's default border (reflect-101, numpy's "reflect").
    """
    images = _check(images)
    sigma = float(value)
    if sigma < 0:
        raise ConfigError(f"Blur sigma must be >= 0, got {value}.")
    if sigma == 0.0 or len(images) == 0:
        return images.copy()
    taps = np.exp(-np.array([1.0, 0.0, 1.0]) / (2.0 * sigma * sigma))
    taps /= taps.sum()
    x = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    x = taps[0] * x[:, :-2] + taps[1] * x[:, 1:-1] + taps[2] * x[:, 2:]  # vertical
    x = taps[0] * x[:, :, :-2] + taps[1] * x[:, :, 1:-1] + taps[2] * x[:, :, 2:]  # horizontal
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def resize(images: np.ndarray, value: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Resize by ``value`` (0 < scale ≤ 1) and back to the original size; 1 is the identity.

    Bilinear both ways with half-pixel centres and no anti-aliasing, i.e. OpenCV's
    ``resize(..., INTER_LINEAR)`` that the paper uses.
    """
    images = _check(images)
    scale = float(value)
    if not 0.0 < scale <= 1.0:
        raise ConfigError(f"Resize scale must be in (0, 1], got {value}.")
    n, h, w, _ = images.shape
    small = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    if small == (h, w) or n == 0:
        return images.copy()
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).double()
    x = F.interpolate(x, size=small, mode="bilinear", align_corners=False, antialias=False)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().copy()


def gaussian_noise(images: np.ndarray, value: float, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, σ²) noise with σ = ``value`` in pixel levels of the 0–255 scale, rounded to
    the nearest level and clipped; σ = 0 is the identity.

    The paper (Sec. 5) takes σ_noise from [0, 0.5] and finds Fig. 9(d)'s curve "always flat".
    On the [0, 1] scale σ = 0.5 would move pixels by 92 levels RMS (no detector stays flat);
    on OpenCV's uint8 scale, which its other operators use, it moves about a third of the
    pixels by one level (RMS 0.57, PSNR 53 dB). Below σ ≈ 0.2 almost every draw rounds back
    to the input level: the 8-bit output keeps only whole levels.
    """
    images = _check(images)
    sigma = float(value)
    if sigma < 0:
        raise ConfigError(f"Noise sigma must be >= 0, got {value}.")
    if sigma == 0.0:
        return images.copy()
    x = images.astype(np.float64) + rng.normal(0.0, sigma, size=images.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# name → operator; each is registered in ``dfbench.benchmark.procedures.PERTURBATIONS`` below
LAUNDERING_OPERATORS: dict[str, Operator] = {
    "jpeg": jpeg,
    "h264": h264,
    "gaussian_blur": gaussian_blur,
    "resize": resize,
    "gaussian_noise": gaussian_noise,
}
for _name, _op in LAUNDERING_OPERATORS.items():
    PERTURBATIONS.register(_name, _op)


def launder(frames: FrameSet, op: str, value: float, rng: np.random.Generator) -> FrameSet:
    """A FrameSet with laundered images (metadata and extras shared); video ops get each frame's video."""
    if op not in LAUNDERING_OPERATORS:
        raise ConfigError(f"Unknown laundering operator {op!r}; choose one of {sorted(LAUNDERING_OPERATORS)}.")
    fn = LAUNDERING_OPERATORS[op]
    kwargs = {}
    if "video_ids" in inspect.signature(fn).parameters:
        kwargs["video_ids"] = frames.meta["video_id"].astype(str).tolist()
    images = fn(np.asarray(frames.images), value, rng, **kwargs)
    return FrameSet(images, frames.meta, frames.extras, frames.attrs)
