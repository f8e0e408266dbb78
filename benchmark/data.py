"""Protocol selections → FrameSet, through the dataset adapters and the crop cache.

``load_frames`` builds (once per dataset root and process) each dataset's index, applies
the selections, makes sure every needed video has a crop-cache entry (preprocessing what is
missing) and gathers the crops. A selected video that yields no frames (failed preprocessing,
or a required pair / quality of it failed) is never replaced: it is listed in a warning and
kept as a ``FailedVideo`` record in ``frames.attrs["failed"]``, so scoring counts it.
``frames.attrs["failed_inputs"]`` maps every failed input (dependants included) to its reason.

Streaming (the default): the FrameSet's images and image-like extras are ``Rows`` that name
rows of the crop-cache entries on disk (``dfbench.benchmark.rows``) and read them when a
batch asks for them, so memory does not grow with the number of videos; metadata, frame
indices and landmarks stay in memory (a few numbers per frame). ``in_memory=True`` loads
every entry and concatenates the crops into NumPy arrays instead (the same assembly code).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.benchmark.frames import FailedVideo, FrameSet
from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.benchmark.preprocess.pipeline import ensure_crops, video_name
from dfbench.benchmark.preprocess.reencode import offered_qualities, with_reencoded
from dfbench.benchmark.rows import Rows, concat_rows, npz_members, stack_rows, take_rows, zero_rows
from dfbench.benchmark.settings import get_settings
from dfbench.datasets.base import DATASETS, DatasetAdapter, Selection, get_dataset

EXTRAS = ("paired_real", "mask", "landmarks", "qualities")
META = ("video_id", "frame", "label", "dataset", "method", "quality", "face_found", "target_id", "source_id", "split")

_INDEX_MEMO: dict[tuple[str, str], tuple[DatasetAdapter, pd.DataFrame]] = {}


def load_adapters() -> None:
    """Make sure every adapter is registered (importing the package imports each adapter)."""
    importlib.import_module("dfbench.datasets")


def clear_index_memo() -> None:
    """Forget memoised indexes (after files under a dataset root changed in this process)."""
    _INDEX_MEMO.clear()


def dataset_index(name: str, root: str | Path) -> tuple[DatasetAdapter, pd.DataFrame]:
    """The adapter for ``name`` at ``root`` and its index, built once per (name, root). The
    index holds the re-encoded c23/c40 rows of a single-quality dataset too
    (``preprocess.reencode.with_reencoded``; a selection naming no quality leaves them out)."""
    key = (name, str(Path(root).expanduser().resolve()))
    if key not in _INDEX_MEMO:
        load_adapters()
        adapter = get_dataset(name, root)
        _INDEX_MEMO[key] = (adapter, with_reencoded(adapter.build_index(), adapter))
    return _INDEX_MEMO[key]


def default_roots(data_root: Path | None, datasets: Iterable[str], *, progress: bool = True) -> dict[str, Path]:
    """Where each dataset lives. Without ``data_root``: the embedded synthetic benchmark
    (generated on first use, with progress bars unless ``progress`` is False; a dataset whose
    adapter names an ``embedded_generator`` gets its stand-in only when it is in ``datasets``). With it:
    ``data_root/<adapter.default_dirname>`` if that folder exists, else ``data_root`` itself
    when it directly holds the dataset."""
    names = list(dict.fromkeys(datasets))
    load_adapters()
    roots: dict[str, Path] = {}
    if data_root is None:
        try:
            synth = importlib.import_module("dfbench.datasets.synth")
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "The embedded benchmark generator (dfbench.datasets.synth) is not installed; pass --data-root "
                "with the folder that holds the datasets."
            ) from exc
        synth.ensure_embedded_data("mini", progress=progress)
        # stand-ins generated only for the datasets this run names (adapter.embedded_generator)
        importlib.import_module("dfbench.datasets.synth.standins").ensure_standins(names, "mini", progress=progress)
        for name in names:
            sub = DATASETS.get(name).embedded_subdir
            path = get_settings().data / "mini" / sub if sub else None
            if path is not None and path.is_dir():
                roots[name] = path
        return roots  # a dataset without an embedded stand-in is left out: the runner names it
    data_root = Path(data_root).expanduser()
    for name in names:
        cls = DATASETS.get(name)
        candidate = data_root / (cls.default_dirname or name)
        if candidate.is_dir():
            roots[name] = candidate
        elif cls.looks_like(data_root):
            roots[name] = data_root
    return roots


def _align(target_frames: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Positions in ``frames`` of the frame indices nearest to ``target_frames`` (identical
    positions whenever both videos have the same length)."""
    return np.argmin(np.abs(np.asarray(target_frames)[:, None] - np.asarray(frames)[None, :]), axis=1)


def load_frames(
    selections: Sequence[Selection],
    *,
    roots: Mapping[str, Path],
    cache: CropCache | None = None,
    crop: CropParams,
    requires: Iterable[str] = (),
    progress: bool = True,
    rebuild: bool = False,
    workers: int = 0,
    failures: dict[str, str] | None = None,
    in_memory: bool = False,
) -> FrameSet:
    """Frames of every video the selections name, with the extras in ``requires``.

    ``requires``: "paired_real" (a fake's target real at the same quality and frame
    position; a real: itself), "mask", "landmarks", "qualities" (the same frames at every
    quality — the selection's, else the adapter's — best first; one row per (video, frame),
    ``images`` holds the first quality). Raises DatasetError when a selection matches no
    video, a required quality or mask is missing, or every video failed.
    ``failures``: a dict that receives every failed video (video_id → reason), including
    those preprocessed only as dependencies (a paired real, another quality) and the videos
    left out because such a dependency failed; filled even when the call raises.
    """
    requires = tuple(dict.fromkeys(requires))
    unknown = [r for r in requires if r not in EXTRAS]
    if unknown:
        raise ConfigError(f"Unknown frame extras {unknown} in requires; known: {', '.join(EXTRAS)}.")
    cache = cache if cache is not None else CropCache()
    failed: dict[str, str] = {}
    notes: list[str] = []
    parts: list[tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]], pd.DataFrame, DatasetAdapter, list[str]]] = []
    for sel in selections:
        if sel.dataset not in roots:
            raise ConfigError(f"No root folder given for dataset {sel.dataset!r}; add it to roots (or --data-root).")
        adapter, index = dataset_index(sel.dataset, roots[sel.dataset])
        rows, qualities, todo = selection_rows(sel, adapter, index, requires)
        report, entries = ensure_crops(
            todo,
            cache=cache,
            params=crop,
            real_methods=adapter.real_methods,
            qualities=adapter.qualities,
            pool=index,
            rebuild=rebuild,
            progress=progress,
            workers=workers,
            keep=in_memory,
        )
        failed.update(report.failed)
        notes.extend(report.notes)
        if not in_memory:
            entries = CachedEntries(cache, {v: k for v, k in report.keys.items() if v not in report.failed})
        parts.append((rows, entries, index, adapter, qualities))
    try:
        frames = _assemble(parts, requires, crop, failed)
    finally:
        if failures is not None:
            failures.update(failed)
    lost: list[FailedVideo] = frames.attrs["failed"]
    if lost:
        shown = "; ".join(f"{f.video_id}: {f.reason}" for f in lost[:3])
        warnings.warn(
            f"{len(lost)} selected videos yield no frames ({shown}{' …' if len(lost) > 3 else ''}); they are "
            f"counted at video level with score 0.5; see frames.attrs['failed'].",
            UserWarning,
            stacklevel=2,
        )
    frames.attrs["notes"] = notes
    return frames


def selection_rows(
    sel: Selection, adapter: DatasetAdapter, index: pd.DataFrame, requires: Iterable[str]
) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """What one selection loads: (its rows — one per video at the first quality when
    "qualities" is required —, the qualities stacked, every index row whose crops are read,
    the extras' paired reals and other qualities included). ``dfbench preprocess --protocol``
    fills exactly these rows, so a run after it reads only what is cached."""
    requires = tuple(requires)
    rows = sel.apply(index, adapter.real_methods)
    if rows.empty:
        raise DatasetError(
            f"Selection {sel} matches no video under {adapter.root}; run `dfbench datasets check {adapter.root}`."
        )
    qualities = [rows["quality"].iloc[0]]
    needed = [rows]
    if "qualities" in requires:
        wanted_q = sel.qualities if sel.qualities is not None else adapter.qualities
        qualities = [q for q in offered_qualities(adapter) if q in wanted_q]
        rows, others = _quality_rows(rows, index, qualities)
        needed.append(others)
    if "paired_real" in requires:
        needed.append(_paired_rows(rows, index, adapter.real_methods))
    return rows, qualities, pd.concat(needed).drop_duplicates("video_id")


def _quality_rows(rows: pd.DataFrame, index: pd.DataFrame, qualities: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per video at the first quality, the rows of the other qualities)."""
    by_key = {
        (ds, m, video_name(v), q): i
        for i, (ds, m, v, q) in enumerate(zip(index["dataset"], index["method"], index["video_id"], index["quality"]))
    }
    base, others = [], []
    seen = set()
    for ds, m, v in zip(rows["dataset"], rows["method"], rows["video_id"]):
        name = video_name(v)
        if (ds, m, name) in seen:
            continue
        seen.add((ds, m, name))
        for q in qualities:
            if (ds, m, name, q) not in by_key:
                raise DatasetError(
                    f"Video {ds}/{m}/{name} has no {q} version under the dataset root, but every quality "
                    f"{qualities} was required; download it or select fewer qualities."
                )
        base.append(by_key[(ds, m, name, qualities[0])])
        others += [by_key[(ds, m, name, q)] for q in qualities[1:]]
    return index.iloc[base].reset_index(drop=True), index.iloc[others].reset_index(drop=True)


def _paired_key(real_methods: Sequence[str], index: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    """(dataset, name, quality) → row of the real video, first real method wins."""
    out: dict[tuple[str, str, str], int] = {}
    order = {m: i for i, m in enumerate(real_methods)}
    reals = index[index["method"].isin(real_methods)]
    for i, ds, _method, v, q in sorted(
        zip(reals.index, reals["dataset"], reals["method"], reals["video_id"], reals["quality"]),
        key=lambda t: order[t[2]],
    ):
        out.setdefault((ds, video_name(v), q), i)
    return out


def _paired_rows(rows: pd.DataFrame, index: pd.DataFrame, real_methods: Sequence[str]) -> pd.DataFrame:
    key = _paired_key(real_methods, index)
    hits = [
        key[(ds, str(t), q)]
        for ds, t, q, label in zip(rows["dataset"], rows["target_id"], rows["quality"], rows["label"])
        if int(label) == 1 and (ds, str(t), q) in key
    ]
    return index.loc[hits]


def _assemble(
    parts: list[tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]], pd.DataFrame, DatasetAdapter, list[str]]],
    requires: tuple[str, ...],
    crop: CropParams,
    failed: dict[str, str],
) -> FrameSet:
    images: list[np.ndarray] = []
    meta: list[pd.DataFrame] = []
    extras: dict[str, list[np.ndarray]] = {r: [] for r in requires}
    qualities_attr: list[str] | None = None
    seen: set[str] = set()
    lost: dict[str, FailedVideo] = {}  # selected videos without frames, in selection order
    for rows, entries, index, adapter, qualities in parts:
        paired = _paired_key(adapter.real_methods, index) if "paired_real" in requires else {}
        if "qualities" in requires:
            if qualities_attr is not None and qualities_attr != qualities:
                raise ConfigError(
                    f"Selections ask for different quality sets ({qualities_attr} and {qualities}) with requires=qualities."
                )
            qualities_attr = qualities
        for row in rows.itertuples(index=False):
            vid = row.video_id
            if vid in seen or vid in lost:
                continue
            if vid in failed or vid not in entries:
                lost[vid] = FailedVideo(vid, int(row.label), failed.get(vid, "no crop-cache entry"))
                continue
            entry = entries[vid]
            fidx = entry["frame_indices"]
            got: dict[str, np.ndarray] = {}
            reason = None
            if "paired_real" in requires:
                if int(row.label) == 0:
                    got["paired_real"] = entry["crops"]
                else:
                    real_row = paired.get((row.dataset, str(row.target_id), row.quality))
                    real_id = index.at[real_row, "video_id"] if real_row is not None else None
                    if real_id is None:
                        reason = f"its target's real video {row.target_id} at {row.quality} is not indexed (paired_real)"
                    elif real_id not in entries:
                        reason = f"its target's real video {real_id} failed: {failed.get(real_id, 'no crops')}"
                    else:
                        real = entries[real_id]
                        got["paired_real"] = take_rows(real["crops"], _align(fidx, real["frame_indices"]))
            if "mask" in requires and reason is None:
                if "mask" in entry:
                    got["mask"] = entry["mask"]
                elif int(row.label) == 0:
                    got["mask"] = zero_rows(entry["crops"], entry["crops"].shape[:3], np.uint8)  # a real is unmanipulated
                else:
                    raise DatasetError(
                        f"Fake video {vid} has no mask file ({row.mask_path or 'none indexed'}), but the detector "
                        f"requires masks; download the dataset's masks or pick a detector without them."
                    )
            if "landmarks" in requires:
                got["landmarks"] = entry["landmarks"].astype(np.float32)
            if "qualities" in requires and reason is None:
                stack = []
                name = video_name(vid)
                for q in qualities:
                    qid = f"{row.dataset}/{row.method}/{q}/{name}"
                    if qid not in entries:
                        reason = f"its {q} version {qid} failed: {failed.get(qid, 'no crops')}"
                        break
                    stack.append(take_rows(entries[qid]["crops"], _align(fidx, entries[qid]["frame_indices"])))
                if reason is None:
                    got["qualities"] = stack_rows(stack, axis=1)
            if reason is not None:
                failed[vid] = reason
                lost[vid] = FailedVideo(vid, int(row.label), reason)
                continue
            seen.add(vid)
            n = len(entry["crops"])
            images.append(entry["crops"])
            meta.append(
                pd.DataFrame(
                    {
                        "video_id": vid,
                        "frame": fidx.astype(np.int64),
                        "label": int(row.label),
                        "dataset": row.dataset,
                        "method": row.method,
                        "quality": row.quality,
                        "face_found": entry["face_found"].astype(bool),
                        "target_id": str(row.target_id),
                        "source_id": str(row.source_id),
                        "split": row.split,
                    },
                    index=range(n),
                )
            )
            for k, v in got.items():
                extras[k].append(v)
    if not images:
        raise DatasetError(
            f"Every selected video failed preprocessing ({len(failed)} failures, e.g. "
            f"{next(iter(failed.items()), ('', ''))[0]}: {next(iter(failed.values()), '')})."
        )
    attrs: dict[str, object] = {"failed": list(lost.values()), "failed_inputs": dict(failed), "crop": crop}
    if qualities_attr is not None:
        attrs["qualities"] = list(qualities_attr)
    return FrameSet(
        concat_rows(images),
        pd.concat(meta, ignore_index=True)[list(META)],
        {k: concat_rows(v) for k, v in extras.items()},
        attrs,
    )


# crop-cache entry arrays read row by row from disk; the others are a few numbers per frame
LAZY_ARRAYS = ("crops", "mask")


class CachedEntries(Mapping[str, Mapping[str, "np.ndarray | Rows"]]):
    """video_id → its crop-cache entry, with ``crops`` (and ``mask``) as ``Rows`` on the file.

    ``ensure_crops`` has verified every entry's checksum while this load ran; an entry is
    opened here by reading its zip directory, array headers and small arrays only. An entry
    that cannot be read row by row (not an uncompressed npz) is loaded whole instead.
    """

    def __init__(self, cache: CropCache, keys: Mapping[str, str]) -> None:
        self.cache = cache
        self.keys = dict(keys)
        self._memo: dict[str, dict[str, np.ndarray | Rows]] = {}

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.keys

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, video_id: str) -> dict[str, np.ndarray | Rows]:
        if video_id not in self._memo:
            self._memo[video_id] = self._open(video_id)
        return self._memo[video_id]

    def _open(self, video_id: str) -> dict[str, np.ndarray | Rows]:
        key = self.keys[video_id]
        path = self.cache.path("crops", key)
        try:
            with np.load(path, allow_pickle=False) as npz:  # np.load reads a member only when asked
                names = list(npz.files)
                entry: dict[str, np.ndarray | Rows] = {n: npz[n] for n in names if n not in LAZY_ARRAYS}
            for name, member in npz_members(path, [n for n in names if n in LAZY_ARRAYS]).items():
                entry[name] = Rows.of(member, member.count, member.shape, member.dtype)
            return entry
        except (OSError, ValueError, KeyError):
            whole = self.cache.get("crops", key)
            if whole is None or "failed" in whole:
                raise DatasetError(
                    f"The crop-cache entry of {video_id} ({path}) vanished or changed while frames were loaded; "
                    f"run the command again."
                ) from None
            return whole
