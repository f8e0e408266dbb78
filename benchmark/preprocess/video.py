"""Video decoding with PyAV and evenly spaced frame sampling.

Decoding H.264 is cheap next to converting every decoded frame to RGB (a swscale pass per
frame), so ``read_frames`` decodes every packet (inter-frame prediction needs them all)
but converts only the frames it was asked for. The frame count comes from the number of
demuxed video packets (one packet per frame for H.264/H.265/FFV1 in MP4/MKV/AVI), which
costs no decoding; the decoded frame count is checked against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class VideoReadError(Exception):
    """A video file that cannot be opened or decoded; ``str()`` is a one-sentence reason."""


def _why(exc: BaseException) -> str:
    """FFmpeg's own words without the errno and path PyAV wraps them in."""
    return str(getattr(exc, "strerror", None) or exc)


@dataclass(frozen=True)
class DecodedFrames:
    """The frames read from one video: ``frames[j]`` is frame ``indices[j]``."""

    frames: np.ndarray  # uint8 (F, H, W, 3) for rgb24, (F, H, W) for gray
    indices: np.ndarray  # int64 (F,)
    n_frames: int
    width: int
    height: int


def sample_indices(n_frames: int, k: int, sampler: str = "linspace") -> np.ndarray:
    """``k`` evenly spaced frame indices of a video with ``n_frames`` frames (first and last
    included). Shorter videos give each frame once rather than repeats, so a 5-frame video
    asked for 8 frames yields 5 rows, never duplicated ones that would bias video scores."""
    if sampler != "linspace":
        raise ValueError(f"unknown frame sampler {sampler!r}; the only sampler is 'linspace'")
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n_frames:
        return np.arange(n_frames, dtype=np.int64)
    return np.unique(np.linspace(0, n_frames - 1, k).round().astype(np.int64))


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except FileNotFoundError as exc:
        raise VideoReadError(f"video file {path} does not exist") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoReadError(f"video file {path} cannot be opened ({_why(exc)}); it is truncated or not a video") from exc
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"file {path} holds no video stream")
    return container


def check_opens(path: str | Path) -> None:
    """Raise ``VideoReadError`` when ``path`` cannot be opened as a video (header only, cheap)."""
    _open(Path(path)).close()


def read_frames(
    path: str | Path,
    *,
    count: int | None = None,
    indices: Sequence[int] | None = None,
    sampler: str = "linspace",
    fmt: str = "rgb24",
) -> DecodedFrames:
    """Decode ``path`` and return the wanted frames as arrays.

    Either ``count`` (that many evenly spaced frames, see ``sample_indices``) or explicit
    ``indices`` (frame numbers in presentation order; those beyond the video's end are an
    error). ``fmt`` is a PyAV pixel format: "rgb24" for images, "gray" for mask videos.
    Raises ``VideoReadError`` with a one-sentence reason for a missing, truncated or
    undecodable file.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        # frame threading: several frames decode at once; the output order is unchanged
        stream.thread_type = "AUTO"
        try:
            # Demux first: the packet count gives the frame count without decoding, so the
            # sample can be fixed before the (single) decoding pass.
            packets = [p for p in container.demux(stream) if p.size > 0]
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoReadError(f"video file {path} cannot be read ({_why(exc)}); it is truncated or corrupt") from exc
        n = len(packets)
        if n == 0:
            raise VideoReadError(f"video file {path} holds no frames")
        if indices is None:
            if count is None:
                raise ValueError("read_frames needs count or indices")
            wanted = sample_indices(n, count, sampler)
        else:
            wanted = np.asarray(indices, dtype=np.int64)
            if len(wanted) and (wanted.min() < 0 or wanted.max() >= n):
                raise VideoReadError(
                    f"video file {path} has {n} frames but frame {int(wanted.max())} was asked for"
                )
        # position of each wanted index in the output (an index may be asked twice)
        slots: dict[int, list[int]] = {}
        for j, i in enumerate(wanted.tolist()):
            slots.setdefault(i, []).append(j)
        out: list[np.ndarray | None] = [None] * len(wanted)
        last_wanted = int(wanted.max()) if len(wanted) else -1
        codec = stream.codec_context
        decoded = 0

        def take(frame: av.VideoFrame) -> None:
            nonlocal decoded
            if decoded in slots:
                array = frame.to_ndarray(format=fmt)  # the only colour conversion we pay for
                for j in slots[decoded]:
                    out[j] = array
            decoded += 1

        try:
            for packet in packets:
                for frame in codec.decode(packet):
                    take(frame)
                if decoded > last_wanted:
                    break  # everything asked for is decoded; skip the rest of the file
            else:
                for frame in codec.decode(None):  # flush frames held back for reordering
                    take(frame)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoReadError(
                f"video file {path} fails to decode at frame {decoded} of {n} ({_why(exc)}); it is corrupt"
            ) from exc
        missing = [int(wanted[j]) for j, a in enumerate(out) if a is None]
        if missing:
            raise VideoReadError(
                f"video file {path} decoded to {decoded} frames, not the {n} its container lists "
                f"(frame {missing[0]} is missing); it is truncated or corrupt"
            )
        width, height = int(codec.width), int(codec.height)
        frames = np.stack(out) if out else np.zeros((0, height, width, 3), np.uint8)
        return DecodedFrames(frames=frames, indices=wanted, n_frames=n, width=width, height=height)
    finally:
        container.close()


def count_frames(path: str | Path) -> int:
    """The number of frames of a video, by counting packets (no decoding)."""
    container = _open(Path(path))
    try:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size > 0)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoReadError(f"video file {path} cannot be read ({_why(exc)}); it is truncated or corrupt") from exc
    finally:
        container.close()
