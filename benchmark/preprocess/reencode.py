"""Self-compressed qualities: a single-quality dataset re-encoded with H.264 at crf 23 / 40.

QAD (Le & Woo, ICCV 2023, Sec. 4.1) compresses Celeb-DF v2 and FFIW10K, which ship at one
quality, to c23 and c40 itself ("utilizing the H.264 codec and constant rate quantization
parameters of 23 and 40"). dfbench offers that for every adapter whose videos come at one
quality and are videos (not face-crop archives): its index, as the data layer uses it
(``dfbench.benchmark.data.dataset_index``), holds one more row per video and re-encoded
quality (``c23``, ``c40``: the lossy qualities of ``dfbench.datasets.synth.encode``), with
the same file, the same labels and splits, and the column ``reencode`` naming the quality.
A protocol asks for them like any quality (``{dataset: celebdf, qualities: [orig, c23, c40]}``);
a selection that names no quality gets the dataset's own videos only.

Preprocessing (``pipeline.ensure_crops``) decodes such a row's file, encodes every frame
with the encoder settings the embedded benchmark uses (``VideoWriter``: libx264, yuv420p,
crf 23 or 40, preset medium, one thread, the source's frame rate) into a temporary file,
and crops that file with the boxes detected once on the original video (the best quality,
so crops stay pixel-aligned across qualities). The crops are cached like any others; the
key covers the source file's identity and the re-encoding (``reencoded_identity``), so each
quality has its own entry. The temporary video is deleted once cropped: only crops are kept.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd

from dfbench.benchmark.preprocess.video import DecodedFrames, VideoReadError, open_video, read_frames
from dfbench.datasets.base import REENCODED as REENCODE_COLUMN  # the quality a row's file is re-encoded to

# bump when the re-encoding changes (encoder settings, padding): crop keys change with it
REENCODE_VERSION = 1


def reencoded_qualities(adapter: Any) -> tuple[str, ...]:
    """The qualities ``adapter`` (a DatasetAdapter class or instance) offers by re-encoding:
    c23 and c40 for a dataset of one quality whose files are videos, else none."""
    from dfbench.datasets.synth.encode import h264_qualities

    own = tuple(adapter.qualities)
    if adapter.frames_are_crops or len(own) != 1:
        return ()
    return tuple(q for q in h264_qualities() if q not in own)


def offered_qualities(adapter: Any) -> tuple[str, ...]:
    """Every quality a protocol may select for ``adapter``: its own, best first, then the
    re-encoded ones (c23 before c40)."""
    return tuple(adapter.qualities) + reencoded_qualities(adapter)


def with_reencoded(index: pd.DataFrame, adapter: Any) -> pd.DataFrame:
    """``index`` plus, for every row, one row per re-encoded quality (see the module
    docstring); every row gets the ``reencode`` column. The index is returned unchanged
    (with an empty column) when the adapter offers no re-encoded quality."""
    out = index.copy()
    out[REENCODE_COLUMN] = ""
    extra = reencoded_qualities(adapter)
    if not extra or index.empty:
        return out
    from dfbench.benchmark.preprocess.pipeline import video_name
    from dfbench.datasets.base import make_video_id

    parts = [out]
    for quality in extra:
        rows = index.copy()
        rows["video_id"] = [
            make_video_id(ds, method, quality, video_name(vid))
            for ds, method, vid in zip(rows["dataset"], rows["method"], rows["video_id"])
        ]
        rows["quality"] = quality
        rows[REENCODE_COLUMN] = quality
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def reencoded_identity(file_identity: str, quality: str) -> str:
    """The identity of ``quality``'s re-encoding of a file whose identity is ``file_identity``:
    what crop-cache keys hash in place of the file's own identity."""
    from dfbench.datasets.synth.encode import codec_settings

    codec, pix_fmt, crf = codec_settings(quality)
    return f"{file_identity}|reencode:v{REENCODE_VERSION}:{codec}:{pix_fmt}:crf{crf}"


def _source_rate(stream: Any) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(25)


def reencode_video(source: str | Path, target: Path, quality: str) -> tuple[int, int, int]:
    """Decode every frame of ``source`` and encode it into ``target`` at ``quality``.

    H.264 in yuv420p needs even sides: an odd width or height is padded by one replicated
    column / row (``read_reencoded`` cuts it off again). Returns (frames, width, height) of
    the source. Raises ``VideoReadError`` with one sentence when the source cannot be decoded.
    """
    from dfbench.datasets.synth.encode import VideoWriter

    container = open_video(Path(source))
    count = width = height = 0
    writer = None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = _source_rate(stream)
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            if writer is None:
                height, width = rgb.shape[:2]
                writer = VideoWriter(target, width + width % 2, height + height % 2, quality, rate=rate)
            if width % 2 or height % 2:
                rgb = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            writer.write(rgb)
            count += 1
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoReadError(f"video file {source} fails to decode at frame {count} while re-encoding ({exc})") from exc
    finally:
        container.close()
        if writer is not None:
            writer.close()
    if count == 0:
        raise VideoReadError(f"video file {source} holds no frames")
    return count, width, height


@contextlib.contextmanager
def _temporary_video() -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="dfbench-reencode-", suffix=".mp4")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def read_reencoded(
    source: str | Path, quality: str, *, count: int | None = None, indices: Any = None, sampler: str = "linspace"
) -> DecodedFrames:
    """``read_frames`` of ``source`` re-encoded at ``quality`` (a temporary file, deleted
    after reading); frames keep the source's size and count."""
    with _temporary_video() as tmp:
        n, width, height = reencode_video(source, tmp, quality)
        decoded = read_frames(tmp, count=count, indices=indices, sampler=sampler)
    if decoded.n_frames != n:
        raise VideoReadError(
            f"re-encoding {source} at {quality} gave {decoded.n_frames} frames instead of its {n}"
        )
    if (decoded.width, decoded.height) == (width, height):
        return decoded
    return DecodedFrames(
        frames=np.ascontiguousarray(decoded.frames[:, :height, :width]),
        indices=decoded.indices,
        n_frames=decoded.n_frames,
        width=width,
        height=height,
    )


__all__ = [
    "REENCODE_COLUMN",
    "REENCODE_VERSION",
    "offered_qualities",
    "read_reencoded",
    "reencode_video",
    "reencoded_identity",
    "reencoded_qualities",
    "with_reencoded",
]
