"""Writing and reading the synthetic videos with PyAV (libx264 / libx264rgb).

Qualities follow FaceForensics++: ``raw`` is lossless, ``c23`` and ``c40`` are H.264 at
constant rate factor 23 and 40. Raw uses ``libx264rgb`` at crf 0 so decoded frames equal
the generated RGB pixels exactly (FF++'s own raw is lossless YUV 4:2:0; exact RGB is the
simplest faithful choice and lets tests compare fakes with their target pixel for pixel).
Masks are written the same lossless way, grey replicated into three channels.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

QUALITIES: tuple[str, ...] = ("raw", "c23", "c40")
FPS = 25

# quality -> (codec, pixel format, crf)
_CODECS: dict[str, tuple[str, str, int]] = {
    "raw": ("libx264rgb", "rgb24", 0),
    "c23": ("libx264", "yuv420p", 23),
    "c40": ("libx264", "yuv420p", 40),
    "mask": ("libx264rgb", "rgb24", 0),
}


def write_video(path: Path, frames: np.ndarray, quality: str) -> None:
    """Encode uint8 frames (T, H, W, 3), or a mask (T, H, W), at ``quality`` into ``path`` (.mp4)."""
    codec, pix_fmt, crf = _CODECS[quality]
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, FPS)
        # one encoder thread: the generator parallelises across videos, and single-threaded
        # x264 output is reproducible bit for bit on one machine
        stream.options = {"crf": str(crf), "threads": "1", "preset": "medium"}
        stream.thread_count = 1
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video(path: Path) -> np.ndarray:
    """Decode every frame of a video as uint8 RGB (T, H, W, 3)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)


def read_mask(path: Path) -> np.ndarray:
    """Decode a mask video as uint8 (T, H, W) (0 = untouched, 255 = manipulated)."""
    return read_video(path)[..., 0]
