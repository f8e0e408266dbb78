"""Content-addressed face-crop cache.

Layout under the cache root (``get_settings().cache`` unless given)::

    v<format>/crops/<k[:2]>/<k>.npz   one video's crops (or its recorded failure)
    v<format>/boxes/<k[:2]>/<k>.npz   one reference video's detections (reused by every
                                      video whose boxes come from it)

A key is the sha256 of a canonical JSON document holding the video file's identity, the
reference video's identity, the mask file's identity, every parameter that changes the
result (``CropParams.key_fields``), the facenet-pytorch version and the format version.

File identity (``file_identity``): size + mtime_ns + sha256 of the whole file when it is
at most ``FULL_HASH_LIMIT`` (2 MiB), else sha256 of its first and last MiB. Size and mtime
catch any rewrite in place; the partial hash keeps a cold pass over 500 GB of raw FF++ from
reading every byte twice, while still telling apart two same-size files. A frame folder (a
video stored as image files, ``folder_identity``) is identified by its frames' identities.

Datasets whose files already are face crops (``frames_are_crops``, e.g. WildDeepfake)
index a *sequence inside an archive*: ``"<archive>::<sequence key>"``. Its identity
(``sequence_identity``) is the archive file's identity plus the key, and its entry key
(``CropCache.sequence_key``) covers only what changes its pixels: frames, size, sampler,
version (no detector runs and no margin is applied).

Each entry is an uncompressed ``.npz`` followed by a trailer (``MAGIC`` + sha256 of the
npz bytes). Uncompressed because crops barely compress and a cached pass should be bound
by the disk, not zlib. Writes go to a temporary file in the same folder, are fsynced and
then ``os.replace``-d into place, so a reader sees either nothing or a whole entry, and two
processes filling the same cache race harmlessly (both write identical content; the last
rename wins). A truncated or corrupt entry fails the trailer check (or ``np.load``), is
deleted and reported as a miss, so it is rebuilt and never returned.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dfbench.benchmark.errors import ConfigError, DfbenchError
from dfbench.benchmark.preprocess.faces import DETECT_SIZE
from dfbench.benchmark.settings import get_settings

# 2: the detection size (``CropParams.detect_size``) joined the keys; entries of version 1
# were detected at full resolution and live under v1/, where version 2 never looks.
# 3: detection bounded by ``detect_size`` now leaves out the finest levels of the
# full-resolution pyramid instead of running MTCNN on a swscale copy, which changes boxes
# (and so crops) by a few percent; entries of version 2 stay under v2/, unread.
CACHE_FORMAT_VERSION = 3
FULL_HASH_LIMIT = 2 * 1024 * 1024
_EDGE = 1024 * 1024
MAGIC = b"DFBCACHE"
_TRAILER = len(MAGIC) + 32


@dataclass(frozen=True)
class CropParams:
    """How face crops are made. Everything but ``detect_on_fake`` is part of the cache key
    (``detect_on_fake`` only changes which video is the reference, and the reference's
    identity is in the key already)."""

    frames: int = 32  # frames per video, evenly spaced
    size: int = 299  # crop side in pixels (FF++'s official baseline uses 299)
    margin: float = 1.3  # crop side = margin × max(w, h) of the face box
    detector: str = "mtcnn"
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN P/R/O-net thresholds
    min_face_size: int = 20
    # shorter side of the frame copy MTCNN runs on (0 = full resolution); see faces.py
    detect_size: int = DETECT_SIZE
    sampler: str = "linspace"
    detect_on_fake: bool = False  # True: boxes from each fake itself instead of its real
    version: int = CACHE_FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"CropParams.frames must be at least 1, got {self.frames}.")
        if self.size < 8:
            raise ConfigError(f"CropParams.size must be at least 8 pixels, got {self.size}.")
        if self.margin < 1.0:
            raise ConfigError(f"CropParams.margin must be at least 1.0 (the face box), got {self.margin}.")
        if self.detector != "mtcnn":
            raise ConfigError(f"CropParams.detector {self.detector!r} is unknown; the only detector is 'mtcnn'.")
        if self.detect_size != 0 and self.detect_size < 64:
            raise ConfigError(
                f"CropParams.detect_size must be 0 (full resolution) or at least 64 pixels, got {self.detect_size}."
            )
        if self.sampler != "linspace":
            raise ConfigError(f"CropParams.sampler {self.sampler!r} is unknown; the only sampler is 'linspace'.")
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))

    def detection_fields(self) -> dict[str, Any]:
        """What the detections of a reference video depend on (not the crop size/margin)."""
        return {
            "frames": self.frames,
            "sampler": self.sampler,
            "detector": self.detector,
            "thresholds": list(self.thresholds),
            "min_face_size": self.min_face_size,
            "detect_size": self.detect_size,
            "version": self.version,
        }

    def key_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("detect_on_fake")
        fields["thresholds"] = list(self.thresholds)
        return fields


@functools.lru_cache(maxsize=1)
def detector_version() -> str:
    """facenet-pytorch's version (read once: parsing package metadata is slow per key)."""
    try:
        return metadata.version("facenet-pytorch")
    except metadata.PackageNotFoundError:
        return "absent"


_IDENTITY_MEMO: dict[tuple[str, int, int, int], str] = {}


def file_identity(path: str | Path) -> str:
    """``"<size>:<mtime_ns>:<sha256>"``, see the module docstring. Memoised per process on
    (path, size, mtime_ns, inode), so repeated lookups do not re-read the file."""
    p = Path(path)
    if p.is_dir():
        return folder_identity(p)
    st = p.stat()
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo_key in _IDENTITY_MEMO:
        return _IDENTITY_MEMO[memo_key]
    h = hashlib.sha256()
    with p.open("rb") as f:
        if st.st_size <= FULL_HASH_LIMIT:
            h.update(f.read())
        else:
            h.update(f.read(_EDGE))
            f.seek(st.st_size - _EDGE)
            h.update(f.read(_EDGE))
    identity = f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()}"
    _IDENTITY_MEMO[memo_key] = identity
    return identity


def folder_identity(folder: Path) -> str:
    """Identity of a frame folder (a video stored as numbered image files, e.g. VidTIMIT):
    ``"dir:<frames>:<bytes>:<sha256>"``, the hash over every frame's name and ``file_identity``
    in frame order. A frame rewritten, added or removed changes it; a symbolic link among the
    frames raises ``OSError`` (the reader refuses it too)."""
    from dfbench.benchmark.preprocess.video import VideoReadError, frame_files

    try:
        frames = frame_files(folder)
    except VideoReadError as exc:
        raise OSError(str(exc)) from exc
    h = hashlib.sha256()
    total = 0
    for frame in frames:
        ident = file_identity(frame)
        total += int(ident.split(":", 1)[0])
        h.update(f"{frame.name}\0{ident}\0".encode())
    return f"dir:{len(frames)}:{total}:{h.hexdigest()}"


ARCHIVE_SEPARATOR = "::"


def sequence_identity(path: str) -> str:
    """Identity of a face-crop sequence ``"<archive>::<key>"``: ``"<archive identity>::<key>"``.

    Only the archive part is a file (hashed like any video); the key tells apart the many
    sequences one archive holds. Raises ``OSError`` when the archive cannot be read, like
    ``file_identity``, and ``DfbenchError`` for a path without the separator.
    """
    archive, sep, key = str(path).rpartition(ARCHIVE_SEPARATOR)
    if not sep or not archive or not key:
        raise DfbenchError(
            f"Face-crop sequence path {path!r} is not '<archive>{ARCHIVE_SEPARATOR}<sequence key>'; "
            f"the dataset adapter produced a malformed index."
        )
    return f"{file_identity(archive)}{ARCHIVE_SEPARATOR}{key}"


def _digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    corrupt: list[str] = field(default_factory=list)
    writes: int = 0


class CropCache:
    """Content-addressed store of crop and detection entries (see the module docstring)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else get_settings().cache
        self.stats = CacheStats()

    # -- keys ------------------------------------------------------------------------
    def crop_key(
        self, video_identity: str, reference_identity: str, mask_identity: str | None, params: CropParams
    ) -> str:
        return _digest(
            {
                "kind": "crops",
                "format": CACHE_FORMAT_VERSION,
                "video": video_identity,
                "reference": reference_identity,
                "mask": mask_identity,
                "params": params.key_fields(),
                "detector_version": detector_version(),
            }
        )

    def box_key(self, reference_identity: str, params: CropParams) -> str:
        return _digest(
            {
                "kind": "boxes",
                "format": CACHE_FORMAT_VERSION,
                "video": reference_identity,
                "params": params.detection_fields(),
                "detector_version": detector_version(),
            }
        )

    def sequence_key(self, sequence_identity: str, params: CropParams) -> str:
        """Key of a face-crop sequence's entry (datasets with ``frames_are_crops``). Margin,
        detector and thresholds are left out: the files are used as the crops they are."""
        return _digest(
            {
                "kind": "sequence-crops",
                "format": CACHE_FORMAT_VERSION,
                "sequence": sequence_identity,
                "params": {
                    "frames": params.frames,
                    "size": params.size,
                    "sampler": params.sampler,
                    "version": params.version,
                },
            }
        )

    def path(self, kind: str, key: str) -> Path:
        return self.root / f"v{CACHE_FORMAT_VERSION}" / kind / key[:2] / f"{key}.npz"

    # -- read / write ------------------------------------------------------------------
    def get(self, kind: str, key: str, names: Collection[str] | None = None) -> dict[str, np.ndarray] | None:
        """The entry's arrays (only those in ``names`` when given), or None when absent or
        corrupt (a corrupt file is removed). The checksum always covers the whole entry."""
        path = self.path(kind, key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            self.stats.misses += 1
            return None
        arrays = _decode(blob, names)
        if arrays is None:
            self.stats.corrupt.append(str(path))
            self.stats.misses += 1
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        self.stats.hits += 1
        return arrays

    def put(self, kind: str, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Write an entry atomically (temp file in the same folder, fsync, rename)."""
        path = self.path(kind, key)
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        payload = buf.getvalue()
        blob = payload + MAGIC + hashlib.sha256(payload).digest()
        tmp_name: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", suffix=".npz", delete=False) as f:
                tmp_name = f.name
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, path)
            tmp_name = None
        except OSError as exc:
            raise DfbenchError(
                f"Cannot write crop-cache entry {path} ({exc.strerror or exc}); free disk space or point "
                f"DFBENCH_CACHE at a writable folder."
            ) from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        self.stats.writes += 1
        return path


def _decode(blob: bytes, names: Collection[str] | None = None) -> dict[str, np.ndarray] | None:
    """Verify the trailer and load the npz; None for anything truncated or corrupt."""
    if len(blob) < _TRAILER or blob[-_TRAILER:-32] != MAGIC:
        return None
    payload, digest = blob[:-_TRAILER], blob[-32:]
    if hashlib.sha256(payload).digest() != digest:
        return None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files if names is None or k in names}
    except (ValueError, OSError, EOFError, KeyError):
        return None
