"""Writing and reading the synthetic videos with PyAV (libx264 / libx264rgb).

Qualities follow FaceForensics++: ``raw`` is lossless, ``c23`` and ``c40`` are H.264 at
constant rate factor 23 and 40. Raw uses ``libx264rgb`` at crf 0 so decoded frames equal
the generated RGB pixels exactly (FF++'s own raw is lossless YUV 4:2:0; exact RGB is the
simplest faithful choice and lets tests compare fakes with their target pixel for pixel).
Masks are written the same lossless way, grey replicated into three channels.

``VideoWriter`` encodes frame by frame; ``write_video`` (the generators) and the re-encoding
of single-quality datasets to c23/c40 during preprocessing
(``dfbench.benchmark.preprocess.reencode``) both go through it, so the settings live here once.
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


def codec_settings(quality: str) -> tuple[str, str, int]:
    """(codec, pixel format, crf) of ``quality``: "raw", "c23", "c40" or "mask"."""
    return _CODECS[quality]


def h264_qualities() -> tuple[str, ...]:
    """The lossy H.264 qualities (``c23``, ``c40``): what a single-quality dataset can be
    re-encoded to (``dfbench.benchmark.preprocess.reencode``)."""
    return tuple(q for q, (codec, _, _) in _CODECS.items() if codec == "libx264")


class VideoWriter:
    """Frames in, one ``.mp4`` out, encoded as ``quality`` (see ``_CODECS``); frame by frame,
    so a long video never has to sit in memory. ``rate`` is the frame rate (a Fraction or int).

    ``with VideoWriter(path, width, height, quality) as w: w.write(rgb_uint8_frame)``
    """

    def __init__(self, path: Path, width: int, height: int, quality: str, rate: Fraction | int = FPS) -> None:
        codec, pix_fmt, crf = _CODECS[quality]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), mode="w")
        stream = self._container.add_stream(codec, rate=rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = pix_fmt
        stream.time_base = 1 / Fraction(rate)
        # one encoder thread: the generator parallelises across videos, and single-threaded
        # x264 output is reproducible bit for bit on one machine
        stream.options = {"crf": str(crf), "threads": "1", "preset": "medium"}
        stream.thread_count = 1
        self._stream = stream
        self._pts = 0

    def write(self, frame: np.ndarray) -> None:
        """Encode one uint8 RGB frame (H, W, 3)."""
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
        video_frame.pts = self._pts
        self._pts += 1
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()


def write_video(path: Path, frames: np.ndarray, quality: str) -> None:
    """Encode uint8 frames (T, H, W, 3), or a mask (T, H, W), at ``quality`` into ``path`` (.mp4)."""
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    with VideoWriter(path, frames.shape[2], frames.shape[1], quality) as writer:
        for arr in frames:
            writer.write(arr)


def read_video(path: Path) -> np.ndarray:
    """Decode every frame of a video as uint8 RGB (T, H, W, 3)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)


def read_mask(path: Path) -> np.ndarray:
    """Decode a mask video as uint8 (T, H, W) (0 = untouched, 255 = manipulated)."""
    return read_video(path)[..., 0]
