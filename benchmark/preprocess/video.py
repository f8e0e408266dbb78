"""Video decoding with PyAV and evenly spaced frame sampling.

Decoding H.264 is cheap next to converting every decoded frame to RGB (a swscale pass per
frame), so ``read_frames`` decodes every packet (inter-frame prediction needs them all)
but converts only the frames it was asked for. The frame count comes from the number of
demuxed video packets (one packet per frame for H.264/H.265/FFV1 in MP4/MKV/AVI), which
costs no decoding; the decoded frame count is checked against it.

A *frame folder* is a video too (VidTIMIT ships each recording as a folder of numbered JPEG
files without extension): when ``path`` is a directory, its frames are its regular files that
are not hidden, in ``frame_order`` (numeric names as numbers), each decoded as an image by its
content. A frame that is a symbolic link is refused (a link could lead out of the dataset
root, which the adapter confined the folder to); frames of differing sizes, an empty folder
or an unreadable image are a ``VideoReadError`` like a corrupt video file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError


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


def frame_order(name: str) -> tuple[int, int, str]:
    """Sort key of a frame file name: numeric stems (``7``, ``007``, ``7.png``) as numbers, first;
    other names after them, by name."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def frame_files(folder: Path) -> list[Path]:
    """The frames of a frame folder in frame order (see the module docstring)."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError as exc:
        raise VideoReadError(f"frame folder {folder} cannot be listed ({_why(exc)})") from exc
    for p in entries:
        if p.is_symlink():
            raise VideoReadError(f"frame {p} is a symbolic link; frame folders must hold plain files, it is refused")
    frames = sorted((p for p in entries if p.is_file()), key=lambda p: frame_order(p.name))
    if not frames:
        raise VideoReadError(f"frame folder {folder} holds no frames")
    return frames


def _read_image(path: Path, fmt: str) -> np.ndarray:
    mode = "L" if fmt == "gray" else "RGB"
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise VideoReadError(f"frame {path} is not a readable image ({exc})") from exc


def _wanted_indices(
    n: int, count: int | None, indices: Sequence[int] | None, sampler: str, what: str
) -> np.ndarray:
    """The frame indices to decode out of ``n``: ``indices`` as given (each must exist), else
    ``count`` of them drawn by ``sampler``. ``what`` names the video in the error."""
    if indices is None:
        if count is None:
            raise ValueError("read_frames needs count or indices")
        return sample_indices(n, count, sampler)
    wanted = np.asarray(indices, dtype=np.int64)
    if len(wanted) and (wanted.min() < 0 or wanted.max() >= n):
        raise VideoReadError(f"{what} has {n} frames but frame {int(wanted.max())} was asked for")
    return wanted


def _read_folder(
    folder: Path, count: int | None, indices: Sequence[int] | None, sampler: str, fmt: str
) -> DecodedFrames:
    files = frame_files(folder)
    n = len(files)
    wanted = _wanted_indices(n, count, indices, sampler, f"frame folder {folder}")
    decoded = {i: _read_image(files[i], fmt) for i in sorted(set(wanted.tolist()))}
    shapes = {a.shape for a in decoded.values()}
    if len(shapes) > 1:
        raise VideoReadError(f"frame folder {folder} mixes frame sizes {sorted(shapes)}; its frames are not one video")
    first = _read_image(files[0], fmt) if not decoded else next(iter(decoded.values()))
    height, width = first.shape[:2]
    out = [decoded[i] for i in wanted.tolist()]
    frames = np.stack(out) if out else np.zeros((0, *first.shape), np.uint8)
    return DecodedFrames(frames=frames, indices=wanted, n_frames=n, width=int(width), height=int(height))


def open_video(path: Path) -> av.container.InputContainer:
    """An opened container with a video stream, or ``VideoReadError`` in one sentence (every
    reader here, re-encoding included, opens a video through this)."""
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
    """Raise ``VideoReadError`` when ``path`` cannot be opened as a video (header only, cheap;
    a frame folder: its first frame)."""
    path = Path(path)
    if path.is_dir():
        _read_image(frame_files(path)[0], "rgb24")
        return
    open_video(path).close()


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
    undecodable file. A directory is read as a frame folder (module docstring).
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, count, indices, sampler, fmt)
    container = open_video(path)
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
        wanted = _wanted_indices(n, count, indices, sampler, f"video file {path}")
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
    """The number of frames of a video, by counting packets (no decoding); of a frame folder,
    its frame files."""
    if Path(path).is_dir():
        return len(frame_files(Path(path)))
    container = open_video(Path(path))
    try:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size > 0)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoReadError(f"video file {path} cannot be read ({_why(exc)}); it is truncated or corrupt") from exc
    finally:
        container.close()
