"""FrameSet: the face crops of a set of videos, as detectors train on and score them.

A FrameSet holds uint8 crops (N, H, W, 3) — a NumPy array, or ``Rows`` read from the crop
cache as batches ask for them (``dfbench.benchmark.rows``) — one metadata row per frame, and optional per-frame extras that some recipes require (declared by the
detector's ``requires``; built by ``dfbench.benchmark.data.load_frames``):

  "paired_real"  uint8 (N, H, W, 3)    for a fake: the crop of its target's real video at the
                                        same quality and frame index (pixel-aligned); a real: itself
  "mask"         uint8 (N, H, W)       ground-truth manipulation mask in crop coordinates (0 = none)
  "landmarks"    float32 (N, 5, 2)     MTCNN's 5 landmarks in crop pixel coordinates
  "qualities"    uint8 (N, Q, H, W, 3) the same frame at every quality in ``attrs["qualities"]``

Metadata columns: video_id, frame (frame index in the video), label, dataset, method,
quality, face_found; loaders may add more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from dfbench.benchmark.rows import is_lazy, take_rows

META_COLUMNS: tuple[str, ...] = ("video_id", "frame", "label", "dataset", "method", "quality", "face_found")


@dataclass(frozen=True)
class FailedVideo:
    """A selected video that yields no frames (no face, undecodable, a required pair or
    quality missing). The loader keeps one record per such video in ``attrs["failed"]``;
    scoring counts it at video level instead of dropping it."""

    video_id: str
    label: int
    reason: str


class FrameSet(Dataset):
    """Frames + metadata + optional extras; ``frames[i]`` is a dict of tensors."""

    def __init__(
        self,
        images: Any,
        meta: pd.DataFrame,
        extras: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        if not is_lazy(images):
            images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if len(meta) != len(images):
            raise ValueError(f"{len(images)} images but {len(meta)} metadata rows")
        missing = [c for c in ("video_id", "label") if c not in meta.columns]
        if missing:
            raise ValueError(f"metadata lacks columns {missing}")
        self.images = images
        self.meta = meta.reset_index(drop=True)
        self.extras: dict[str, Any] = {k: v if is_lazy(v) else np.asarray(v) for k, v in (extras or {}).items()}
        for key, value in self.extras.items():
            if len(value) != len(images):
                raise ValueError(f"extra {key!r} has {len(value)} rows, expected {len(images)}")
        self.attrs: dict[str, Any] = dict(attrs or {})

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray:
        return self.meta["label"].to_numpy(dtype=np.int64)

    @property
    def streamed(self) -> bool:
        """Whether the crops are read from disk as needed (else they are in memory)."""
        return is_lazy(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(self.images[i])).permute(2, 0, 1),
            "label": torch.tensor(int(self.meta.at[i, "label"]), dtype=torch.long),
            "index": torch.tensor(i, dtype=torch.long),
        }
        for key, value in self.extras.items():
            item[key] = _to_tensor(key, np.ascontiguousarray(value[i]))
        return item

    def batch(self, indices: np.ndarray | torch.Tensor, extras: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The frames at ``indices`` as one batched dict (what a DataLoader would collate),
        fetched with a single fancy index per array instead of one item at a time.
        ``extras``: which extras to include (default: all)."""
        idx = np.asarray(indices, dtype=np.int64)
        out = {
            "image": torch.from_numpy(np.ascontiguousarray(self.images[idx])).permute(0, 3, 1, 2),
            "label": torch.from_numpy(self.labels[idx]),
            "index": torch.from_numpy(idx),
        }
        for key, value in self.extras.items():
            if extras is None or key in extras:
                out[key] = _to_batch_tensor(np.ascontiguousarray(value[idx]))
        return out

    def subset(self, rows: np.ndarray | pd.Series) -> FrameSet:
        """A new FrameSet of the selected rows (boolean mask or integer positions); a streamed
        set stays streamed (nothing is read)."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return FrameSet(
            take_rows(self.images, idx),
            self.meta.iloc[idx],
            {k: take_rows(v, idx) for k, v in self.extras.items()},
            self.attrs,
        )

    def redrawn(self, draw: int) -> FrameSet:
        """The set with its synthesised frames drawn anew for ``draw`` (a training epoch; see
        ``dfbench.benchmark.synthesis``); a set without synthesised frames is returned as it is."""
        redraw = getattr(self.images, "redrawn", None)
        if redraw is None:
            return self
        return FrameSet(redraw(draw), self.meta, self.extras, self.attrs)

    def in_memory(self) -> FrameSet:
        """The same frames with every array read into RAM (itself when already in memory)."""
        if not self.streamed and not any(is_lazy(v) for v in self.extras.values()):
            return self
        return FrameSet(np.asarray(self.images), self.meta, {k: np.asarray(v) for k, v in self.extras.items()}, self.attrs)

    def __repr__(self) -> str:
        n_videos = self.meta["video_id"].nunique()
        fake = int(self.labels.sum())
        return (
            f"FrameSet({len(self)} frames of {n_videos} videos, {fake} fake / {len(self) - fake} real, "
            f"{self.image_size}px, extras={sorted(self.extras)})"
        )


def _to_tensor(key: str, value: np.ndarray) -> torch.Tensor:
    """Image-like extras become channel-first tensors like ``image``; others as they are."""
    t = torch.from_numpy(value)
    if value.dtype == np.uint8 and value.ndim == 3 and value.shape[-1] == 3:  # (H, W, 3)
        return t.permute(2, 0, 1)
    if value.dtype == np.uint8 and value.ndim == 4 and value.shape[-1] == 3:  # (Q, H, W, 3)
        return t.permute(0, 3, 1, 2)
    return t


def _to_batch_tensor(value: np.ndarray) -> torch.Tensor:
    """Batched extras, channel-first for image-like ones (as ``_to_tensor`` per item)."""
    t = torch.from_numpy(value)
    if value.dtype == np.uint8 and value.ndim == 4 and value.shape[-1] == 3:  # (B, H, W, 3)
        return t.permute(0, 3, 1, 2)
    if value.dtype == np.uint8 and value.ndim == 5 and value.shape[-1] == 3:  # (B, Q, H, W, 3)
        return t.permute(0, 1, 4, 2, 3)
    return t


class SeededBatches(Sampler):
    """Index batches of ``n`` frames: a random permutation from ``torch.Generator`` seeded with
    ``seed``, cut into consecutive batches (the last partial one dropped when ``drop_last``
    and there is more than one batch), or the frames in order when ``shuffle`` is False.

    The order depends only on (n, batch_size, seed): a resumed fit sees the batches an
    uninterrupted one does, whatever the number of DataLoader workers. ``seed`` may be
    changed between epochs (a persistent DataLoader keeps its sampler object).

    ``rank`` / ``world`` (set by ``dfbench.benchmark.distributed`` under torchrun): each
    batch is the rank's contiguous share of the same global batch.
    """

    rank: int = 0
    world: int = 1

    def __init__(self, n: int, batch_size: int, seed: int = 0, *, shuffle: bool = True, drop_last: bool = True) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = int(n), int(batch_size), int(seed), shuffle
        self.drop_last = drop_last and self.n > self.batch_size

    def __len__(self) -> int:
        n, b = self.n, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).numpy()
        else:
            order = np.arange(self.n)
        for i in range(len(self)):
            batch = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield batch if self.world == 1 else np.array_split(batch, self.world)[self.rank]


class FrameBatches(Dataset):
    """A FrameSet indexed by whole batches: ``batches[indices]`` is ``frames.batch(indices)``.

    Used with ``DataLoader(FrameBatches(frames), sampler=SeededBatches(...), batch_size=None)``
    so each worker fetches a whole batch with one read per array instead of one per frame.
    """

    def __init__(self, frames: FrameSet, extras: Sequence[str] | None = None) -> None:
        self.frames, self.extras = frames, extras

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return self.frames.batch(indices, self.extras)


class ShuffledBatches:
    """Batches of a FrameSet in a seeded random order, fetched in this process (no workers)."""

    def __init__(self, frames: FrameSet, batch_size: int, seed: int, drop_last: bool = True) -> None:
        self.frames = frames
        self.sampler = SeededBatches(len(frames), batch_size, seed, drop_last=drop_last)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for idx in self.sampler:
            yield self.frames.batch(idx)
