"""Row arrays read from disk on demand: how a FrameSet holds crops without holding them in RAM.

A ``Rows`` object looks like a read-only NumPy array of shape ``(N, *lead, *row)``
(``images``: (N, H, W, 3); the ``qualities`` extra: (N, Q, H, W, 3)). Each of its
``N × prod(lead)`` elements names one row of a *source*:

- a ``FileRows``: an uncompressed ``.npy`` array inside a crop-cache entry (an ``.npz``
  stored without compression, see ``dfbench.benchmark.preprocess.cache``), read with
  ``os.preadv`` at the row's byte offset;
- an in-memory NumPy array (what a FrameSet built in memory holds);
- zeros (a real video's empty manipulation mask), which cost nothing.

Indexing (``rows[i]``, ``rows[a:b]``, ``rows[index_array]``, ``rows[mask]``) reads just
those rows and returns a NumPy array, as indexing a NumPy array would; ``take`` /
``concat_rows`` / ``stack_rows`` build new ``Rows`` without reading anything. Reads go through
``preadv`` instead of ``mmap`` on purpose: pages of a mapped file count in the process's
resident set until the kernel drops them, so an epoch over a memory-mapped training set
shows up in RSS as the whole set; ``preadv`` leaves caching to the kernel's page cache and
the process holds only the batch.

The helpers ``take_rows`` / ``concat_rows`` / ``stack_rows`` / ``zero_rows`` accept plain
NumPy arrays too (then they are ``a[idx]`` / ``np.concatenate`` / ``np.stack`` /
``np.zeros``), so one assembly routine builds a streamed or an in-memory FrameSet.
"""

from __future__ import annotations

import os
import struct
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfbench.benchmark.errors import DatasetError


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class FileRows:
    """``count`` rows of ``shape``/``dtype``, stored C-contiguously from byte ``offset`` of ``path``."""

    path: str
    offset: int
    count: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


Source = FileRows | np.ndarray | None  # None = rows of zeros


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header (30 bytes)


def npz_members(path: str | Path, names: Sequence[str]) -> dict[str, FileRows]:
    """Where the arrays ``names`` of an uncompressed ``.npz`` lie inside the file.

    Reads only the zip directory and the ``.npy`` headers. Raises ``ValueError`` when a
    member is compressed, Fortran-ordered or of an object dtype (then it cannot be read
    row by row; callers fall back to loading the entry).
    """
    out: dict[str, FileRows] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for name in names:
            info = zf.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{path}: member {name} is compressed")
            fh.seek(info.header_offset)
            header = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
            if header[0] != b"PK\x03\x04":
                raise ValueError(f"{path}: bad local header for {name}")
            fh.seek(info.header_offset + _LOCAL_HEADER.size + header[9] + header[10])
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            if fortran or dtype.hasobject or len(shape) == 0:
                raise ValueError(f"{path}: member {name} cannot be read by rows")
            out[name] = FileRows(str(path), fh.tell(), int(shape[0]), tuple(int(s) for s in shape[1:]), dtype.str)
    return out


# one file descriptor per open path and process (preadv needs no shared file position, so a
# descriptor inherited by a forked DataLoader worker is safe to use there as well)
_FDS: OrderedDict[str, int] = OrderedDict()
_FD_LOCK = threading.Lock()
_MAX_FDS = 256


def _fd(path: str) -> int:
    with _FD_LOCK:
        fd = _FDS.get(path)
        if fd is not None:
            _FDS.move_to_end(path)
            return fd
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise DatasetError(
                f"Crop-cache file {path} vanished while its frames were in use; run the command again "
                f"(the entry is rebuilt) and keep other processes from deleting the cache meanwhile."
            ) from exc
        _FDS[path] = fd
        while len(_FDS) > _MAX_FDS:
            _, old = _FDS.popitem(last=False)
            os.close(old)
        return fd


def _read_into(src: FileRows, first: int, out: np.ndarray) -> None:
    """Fill ``out`` (C-contiguous, ``len(out)`` rows) with rows ``first…`` of ``src``."""
    view = memoryview(out.reshape(-1).view(np.uint8))
    offset = src.offset + first * src.row_bytes
    fd = _fd(src.path)
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise DatasetError(f"Crop-cache file {src.path} is shorter than its header says; rebuild the cache.")
        done += n


# --------------------------------------------------------------------------- Rows
class Rows:
    """A read-only array of rows gathered from sources (see the module docstring)."""

    # False for a subclass whose rows are computed when read (a synthesised set): it cannot be
    # concatenated or stacked as stored rows, which would silently read its sources instead
    joinable: bool = True

    def __init__(self, sources: Sequence[Source], src: np.ndarray, pos: np.ndarray, row_shape: tuple[int, ...], dtype: Any) -> None:
        self.sources = list(sources)
        self.src = np.asarray(src, dtype=np.int32)  # (N, *lead): index into sources
        self.pos = np.asarray(pos, dtype=np.int64)  # (N, *lead): row within that source
        if self.src.shape != self.pos.shape or self.src.ndim < 1:
            raise ValueError(f"Rows: src {self.src.shape} and pos {self.pos.shape} must match")
        self.row_shape = tuple(int(s) for s in row_shape)
        self.dtype = np.dtype(dtype)

    @classmethod
    def of(cls, source: Source, count: int, row_shape: tuple[int, ...], dtype: Any) -> Rows:
        """All ``count`` rows of one source, in order."""
        return cls([source], np.zeros(count, np.int32), np.arange(count, dtype=np.int64), row_shape, dtype)

    # ---- array-like attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.src.shape, *self.row_shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def __repr__(self) -> str:
        files = sum(isinstance(s, FileRows) for s in self.sources)
        return f"Rows(shape={self.shape}, dtype={self.dtype}, {files} files, {len(self.sources) - files} other sources)"

    # ---- lazy views
    def take(self, index: Any) -> Rows:
        """The selected rows (int array, bool mask or slice) as a new ``Rows``; reads nothing."""
        return Rows(self.sources, self.src[index], self.pos[index], self.row_shape, self.dtype)

    # ---- reads
    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            out = self.read(self.src[key : key + 1 or None], self.pos[key : key + 1 or None])[0]
        else:
            out = self.read(self.src[key], self.pos[key])
        if rest:
            out = out[(slice(None),) * (0 if isinstance(key, (int, np.integer)) else 1) + rest]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.read(self.src, self.pos)
        return out if dtype is None else out.astype(dtype, copy=False)

    def read(self, src: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Rows named by ``(src, pos)`` (any matching shape) as a new C-contiguous array."""
        out = np.empty((*src.shape, *self.row_shape), dtype=self.dtype)
        flat_out = out.reshape(-1, *self.row_shape)
        flat_src, flat_pos = src.reshape(-1), pos.reshape(-1)
        for s in np.unique(flat_src):
            where = np.flatnonzero(flat_src == s)
            source = self.sources[int(s)]
            rows = flat_pos[where]
            if source is None:
                flat_out[where] = 0
            elif isinstance(source, np.ndarray):
                flat_out[where] = source[rows]
            else:
                self._read_file(source, rows, where, flat_out)
        return out

    def _read_file(self, source: FileRows, rows: np.ndarray, where: np.ndarray, flat_out: np.ndarray) -> None:
        order = np.argsort(rows, kind="stable")
        rows, where = rows[order], where[order]
        if np.all(np.diff(where) == 1) and np.all(np.diff(rows) == 1):  # one contiguous run: read in place
            _read_into(source, int(rows[0]), flat_out[where[0] : where[-1] + 1])
            return
        # runs of consecutive rows are read with one call each, duplicates read once
        starts = np.flatnonzero(np.r_[True, np.diff(rows) != 1])
        ends = np.r_[starts[1:], len(rows)]
        for a, b in zip(starts, ends):
            first, count = int(rows[a]), int(rows[b - 1]) - int(rows[a]) + 1
            buf = np.empty((count, *self.row_shape), dtype=self.dtype)
            _read_into(source, first, buf)
            flat_out[where[a:b]] = buf[rows[a:b] - first]


def as_rows(array: Any) -> Rows:
    """A ``Rows`` over ``array`` (itself when it already is one; an in-memory source otherwise)."""
    if isinstance(array, Rows):
        return array
    array = np.asarray(array)
    return Rows.of(array, len(array), array.shape[1:], array.dtype)


# --------------------------------------------------------------------------- helpers (Rows or NumPy)
def is_lazy(array: Any) -> bool:
    return isinstance(array, Rows)


def take_rows(array: Any, index: Any) -> Any:
    """``array[index]``: a lazy view for ``Rows``, a copy for a NumPy array."""
    return array.take(index) if isinstance(array, Rows) else array[index]


def zero_rows(like: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Zeros of ``shape``: free ``Rows`` when ``like`` is lazy, else a NumPy array."""
    if isinstance(like, Rows):
        return Rows.of(None, shape[0], shape[1:], dtype)
    return np.zeros(shape, dtype)


def concat_rows(parts: Sequence[Any]) -> Any:
    """``np.concatenate(parts)``; lazily when any part is a ``Rows``."""
    if not any(isinstance(p, Rows) for p in parts):
        return np.concatenate(parts)
    rows = [as_rows(p) for p in parts]
    if not all(r.joinable for r in rows):
        raise ValueError("rows computed on demand (a synthesised frame set) cannot be concatenated")
    first = rows[0]
    for r in rows[1:]:
        if r.row_shape != first.row_shape or r.dtype != first.dtype or r.src.shape[1:] != first.src.shape[1:]:
            raise ValueError(f"cannot concatenate rows {first.shape} {first.dtype} and {r.shape} {r.dtype}")
    sources: list[Source] = []
    seen: dict[Any, int] = {}
    srcs, poss = [], []
    for r in rows:
        remap = np.empty(len(r.sources), np.int32)
        for k, s in enumerate(r.sources):
            ident = s if isinstance(s, FileRows) else ("zeros" if s is None else id(s))
            if ident not in seen:
                seen[ident] = len(sources)
                sources.append(s)
            remap[k] = seen[ident]
        srcs.append(remap[r.src])
        poss.append(r.pos)
    return Rows(sources, np.concatenate(srcs), np.concatenate(poss), first.row_shape, first.dtype)


def stack_rows(parts: Sequence[Any], axis: int = 1) -> Any:
    """``np.stack(parts, axis=1)`` (the qualities extra: (N, Q, ...)); lazily when any part is a ``Rows``."""
    if not any(isinstance(p, Rows) for p in parts):
        return np.stack(parts, axis=axis)
    if axis != 1:
        raise ValueError("lazy rows stack along axis 1 only")
    rows = [as_rows(p) for p in parts]
    joined = concat_rows(rows)  # one source table; then interleave (N·Q) → (N, Q)
    n = len(rows[0])
    src = joined.src.reshape(len(rows), n, *joined.src.shape[1:]).swapaxes(0, 1)
    pos = joined.pos.reshape(len(rows), n, *joined.pos.shape[1:]).swapaxes(0, 1)
    return Rows(joined.sources, np.ascontiguousarray(src), np.ascontiguousarray(pos), joined.row_shape, joined.dtype)
