"""The preprocessing driver: index rows → cached face crops.

For every video the driver picks a *reference* video (``reference_video_ids``): the video
whose face boxes it reuses. Reals use themselves at their best quality, fakes their target's
real video at its best quality, so crops are pixel-aligned across raw/c23/c40 and across a
fake and its real. The reference is decoded once (only the sampled frames converted to RGB),
MTCNN runs on those frames in batches, and the detections are cached under the reference's
identity; every video of the group is then decoded and cropped with those boxes.

A frame where the reference shows no face keeps ``face_found=False`` and borrows the box of
the nearest reference frame that has one (``box_frame`` records which). A reference without
any face fails its whole group with reason "no face". A video that cannot be decoded fails
alone. Failures are recorded (and cached, keyed by the file's identity, so a fixed file is
retried), listed in the report, and never replaced by another video.

Datasets whose files already are face crops (adapter attribute ``frames_are_crops``,
e.g. WildDeepfake) skip decoding and detection: each index row names a sequence in an
archive (``"<archive>::<sequence key>"``); ``frames`` positions are sampled evenly from
it (the same ``linspace`` rule as videos), every frame is fitted into the crop size with
the normal crop routine (a square of side ``max(h, w)`` centred on the file, black
padding, bicubic resize; no margin: the files are crops already), ``face_found`` is True
and ``landmarks``/``probs`` are NaN (no detector ran: only FF++/Celeb-DF-style videos
have landmarks). The entry's key hashes the archive file and the sequence key
(``sequence_identity``). An unreadable or unsafe archive fails its sequences with the
adapter's reason; the run goes on.

A row whose ``reencode`` column names a quality (a single-quality dataset's c23/c40, see
``reencode``) is the same file re-encoded at that quality before it is cropped; its key
hashes the file's identity and the re-encoding, and it reuses the boxes of the file itself
(its best quality) like any other quality of a video.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from dfbench.benchmark.errors import DatasetError
from dfbench.benchmark.preprocess.cache import CropCache, CropParams, file_identity, sequence_identity
from dfbench.benchmark.preprocess.faces import (
    FaceDetector,
    crop_frame,
    fill_missing,
    landmarks_to_crop,
    square_boxes,
)
from dfbench.benchmark.preprocess.reencode import REENCODE_COLUMN, read_reencoded, reencoded_identity
from dfbench.benchmark.preprocess.video import (
    DecodedFrames,
    VideoReadError,
    check_opens,
    read_frames,
    sample_indices,
)

NO_FACE = "no face"


# ----------------------------------------------------------------------------------------
# reference videos
# ----------------------------------------------------------------------------------------
def video_name(video_id: str) -> str:
    """The name part of ``<dataset>/<method>/<quality>/<name>``."""
    return video_id.split("/", 3)[-1]


def _quality_rank(qualities: Sequence[str]) -> dict[str, int]:
    return {q: i for i, q in enumerate(qualities)}


def reference_video_ids(
    index: pd.DataFrame,
    *,
    real_methods: Sequence[str],
    qualities: Sequence[str],
    pool: pd.DataFrame | None = None,
    detect_on_fake: bool = False,
) -> pd.Series:
    """For each row of ``index``, the video_id whose face boxes it reuses.

    Works from the schema columns only, so every adapter gets it: a real → the same
    (dataset, method, name) at its best available quality (``qualities`` is best first);
    a fake → the real video named by its ``target_id`` (a method in ``real_methods``, same
    dataset) at its best available quality; with ``detect_on_fake`` (or when no such real is
    indexed) → the fake itself at its best quality. ``pool`` is the index the references are
    looked up in (default: ``index``); pass the dataset's whole index when ``index`` is a slice.
    """
    pool = index if pool is None else pool
    rank = _quality_rank(qualities)
    real_rank = {m: i for i, m in enumerate(real_methods)}
    best_same: dict[tuple[str, str, str], tuple[int, str]] = {}
    best_real: dict[tuple[str, str], tuple[int, int, str]] = {}
    for ds, vid, method, quality in zip(pool["dataset"], pool["video_id"], pool["method"], pool["quality"]):
        name = video_name(vid)
        q = rank.get(quality, len(rank))
        key = (ds, method, name)
        if key not in best_same or q < best_same[key][0]:
            best_same[key] = (q, vid)
        if method in real_rank:
            rkey = (ds, name)
            cand = (real_rank[method], q, vid)
            if rkey not in best_real or cand < best_real[rkey]:
                best_real[rkey] = cand
    out = []
    for ds, vid, method, label, target in zip(
        index["dataset"], index["video_id"], index["method"], index["label"], index["target_id"]
    ):
        same = best_same.get((ds, method, video_name(vid)), (0, vid))[1]
        if int(label) == 1 and not detect_on_fake and (ds, str(target)) in best_real:
            out.append(best_real[(ds, str(target))][2])
        else:
            out.append(same)
    return pd.Series(out, index=index.index, name="reference_id", dtype=object)


# ----------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------
@dataclass
class PreprocessReport:
    total: int = 0
    cached: int = 0  # entries found in the cache (incl. cached failures)
    processed: int = 0  # entries built in this run
    frames: int = 0  # frames in the successful entries
    detected_references: int = 0  # reference videos MTCNN ran on in this run
    failed: dict[str, str] = field(default_factory=dict)  # video_id -> reason
    notes: list[str] = field(default_factory=list)
    rebuilt_corrupt: list[str] = field(default_factory=list)  # corrupt cache files replaced
    keys: dict[str, str] = field(default_factory=dict)  # video_id -> crop-cache key
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return self.total - len(self.failed)

    def summary(self) -> str:
        lines = [
            f"Preprocessed {self.total} videos in {self.seconds:.1f} s: {self.cached} from the cache, "
            f"{self.processed} built ({self.detected_references} reference videos ran face detection), "
            f"{len(self.failed)} failed."
        ]
        if self.rebuilt_corrupt:
            lines.append(f"{len(self.rebuilt_corrupt)} corrupt cache entries were found and rebuilt.")
        for vid, reason in sorted(self.failed.items()):
            lines.append(f"  FAILED {vid}: {reason}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# one group = one reference video and the videos that reuse its boxes
# ----------------------------------------------------------------------------------------
@dataclass
class _Member:
    video_id: str
    path: str
    key: str
    mask_path: str  # "" when none
    reencode: str = ""  # the quality the file is re-encoded to before cropping ("" = as is)

    def read(self, params: CropParams) -> DecodedFrames:
        """The member's sampled frames (of its re-encoding when it has one)."""
        if self.reencode:
            return read_reencoded(self.path, self.reencode, count=params.frames, sampler=params.sampler)
        return read_frames(self.path, count=params.frames, sampler=params.sampler)


@dataclass
class _Group:
    reference_id: str
    reference_path: str
    box_key: str
    members: list[_Member]


_DETECTORS: dict[tuple[Any, ...], FaceDetector] = {}


def _detector(params: CropParams, device: str) -> FaceDetector:
    """One MTCNN per process and setting (building it loads three small networks)."""
    key = (params.thresholds, params.min_face_size, params.detect_size, device)
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(
            thresholds=params.thresholds,
            min_face_size=params.min_face_size,
            detect_size=params.detect_size,
            device=device,
        )
    return _DETECTORS[key]


def _failure(reason: str) -> dict[str, np.ndarray]:
    return {"failed": np.array(reason)}


def _detections(
    group: _Group, cache: CropCache, params: CropParams, device: str, rebuild: bool
) -> tuple[dict[str, np.ndarray], DecodedFrames | None, bool]:
    """(detections entry, decoded reference frames if decoded now, whether MTCNN ran)."""
    entry = None if rebuild else cache.get("boxes", group.box_key)
    if entry is not None:
        return entry, None, False
    try:
        decoded = read_frames(group.reference_path, count=params.frames, sampler=params.sampler)
    except VideoReadError as exc:
        entry = _failure(f"reference video {group.reference_id} is unusable: {exc}")
        cache.put("boxes", group.box_key, entry)
        return entry, None, False
    det = _detector(params, device).detect(decoded.frames)
    if not det.face_found.any():
        entry = _failure(f"{NO_FACE} in any sampled frame of reference video {group.reference_path}")
    else:
        entry = {
            "frame_indices": decoded.indices,
            "n_frames": np.array(decoded.n_frames),
            "width": np.array(decoded.width),
            "height": np.array(decoded.height),
            "boxes": det.boxes,
            "probs": det.probs,
            "landmarks": det.landmarks,
            "face_found": det.face_found,
        }
    cache.put("boxes", group.box_key, entry)
    return entry, decoded, True


def crop_with_reference(
    decoded: DecodedFrames, ref: Mapping[str, np.ndarray], params: CropParams
) -> dict[str, np.ndarray]:
    """Crop a decoded video with its reference's detections (the cache entry's arrays)."""
    ref_idx = np.asarray(ref["frame_indices"], np.int64)
    # each frame takes the reference frame with the nearest index (the same index whenever
    # both videos have the same length, which is the case across qualities and FF++ pairs)
    pos = np.argmin(np.abs(decoded.indices[:, None] - ref_idx[None, :]), axis=1)
    src = fill_missing(ref["face_found"], ref_idx)[pos]
    scale = np.array(
        [decoded.width / float(ref["width"]), decoded.height / float(ref["height"])], np.float32
    )
    face_boxes = ref["boxes"][src] * np.tile(scale, 2)
    landmarks = ref["landmarks"][src] * scale
    crop_boxes = square_boxes(face_boxes, params.margin)
    crops = np.stack([crop_frame(f, b, params.size) for f, b in zip(decoded.frames, crop_boxes)])
    found = np.asarray(ref["face_found"], bool)[pos]
    return {
        "crops": crops,
        "frame_indices": decoded.indices,
        "n_frames": np.array(decoded.n_frames),
        "boxes": crop_boxes.astype(np.float32),
        "face_boxes": face_boxes.astype(np.float32),
        "landmarks": landmarks_to_crop(landmarks, crop_boxes, params.size),
        "probs": np.where(found, ref["probs"][pos], 0).astype(np.float32),
        "face_found": found,
        "box_frame": ref_idx[src],
    }


@dataclass
class _Outcome:
    video_id: str
    key: str
    failed: str | None = None
    frames: int = 0
    note: str | None = None
    entry: dict[str, np.ndarray] | None = None


def _process_group(
    group: _Group, cache: CropCache, params: CropParams, device: str, rebuild: bool, keep: bool
) -> tuple[list[_Outcome], bool]:
    ref, ref_frames, detected = _detections(group, cache, params, device, rebuild)
    outcomes = []
    for m in group.members:
        if "failed" in ref:
            reason = str(ref["failed"])
            if m.path != group.reference_path:
                # name the video's own fault too, not only its reference's
                try:
                    check_opens(m.path)
                except VideoReadError as exc:
                    reason = f"{exc}; besides, {reason}"
            cache.put("crops", m.key, _failure(reason))
            outcomes.append(_Outcome(m.video_id, m.key, failed=reason))
            continue
        note = None
        try:
            decoded = (
                ref_frames
                if ref_frames is not None and m.path == group.reference_path and not m.reencode
                else m.read(params)
            )
        except VideoReadError as exc:
            entry = _failure(str(exc))
            cache.put("crops", m.key, entry)
            outcomes.append(_Outcome(m.video_id, m.key, failed=str(exc)))
            continue
        entry = crop_with_reference(decoded, ref, params)
        if m.mask_path:
            try:
                mask = read_frames(m.mask_path, indices=decoded.indices, fmt="gray")
                entry["mask"] = np.stack(
                    [
                        crop_frame(f, b, params.size, resample=Image.Resampling.BILINEAR)
                        for f, b in zip(mask.frames, entry["boxes"])
                    ]
                )  # bilinear: mask edges stay soft instead of ringing as bicubic would
            except VideoReadError as exc:
                note = f"mask of {m.video_id} left out: {exc}"
        if not entry["face_found"].all():
            missing = int((~entry["face_found"]).sum())
            note = (note + "; " if note else "") + (
                f"{m.video_id}: {missing} of {len(entry['face_found'])} frames have no face in the reference "
                f"and use the nearest frame's box"
            )
        cache.put("crops", m.key, entry)
        outcomes.append(_Outcome(m.video_id, m.key, frames=len(entry["crops"]), note=note, entry=entry if keep else None))
    return outcomes, detected


# ----------------------------------------------------------------------------------------
# face-crop sequences (frames_are_crops): one batch = the sequences of one archive
# ----------------------------------------------------------------------------------------
@dataclass
class _SequenceBatch:
    archive: str
    members: list[_Member]  # path = "<archive>::<key>"; mask_path unused


def crops_from_sequence(
    frames: Sequence[np.ndarray], positions: np.ndarray, n_frames: int, params: CropParams
) -> dict[str, np.ndarray]:
    """A crop entry from frames that already are face crops (any size, one per position).

    Each frame goes through ``crop_frame`` with a square box of side ``max(h, w)`` centred on
    the frame: the whole file is kept (no margin), a non-square crop is padded with black
    rather than stretched, and the resize is the same bicubic one as for detected faces.
    """
    sizes = np.array([[f.shape[1], f.shape[0]] for f in frames], np.float32)  # (w, h)
    face_boxes = np.concatenate([np.zeros_like(sizes), sizes], axis=1)
    crop_boxes = square_boxes(face_boxes, 1.0)
    crops = np.stack([crop_frame(np.ascontiguousarray(f), b, params.size) for f, b in zip(frames, crop_boxes)])
    n = len(frames)
    positions = np.asarray(positions, np.int64)
    return {
        "crops": crops,
        "frame_indices": positions,
        "n_frames": np.array(n_frames),
        "boxes": crop_boxes.astype(np.float32),
        "face_boxes": face_boxes,
        # no detector ran: landmarks and probabilities are unknown, not zero
        "landmarks": np.full((n, 5, 2), np.nan, np.float32),
        "probs": np.full(n, np.nan, np.float32),
        "face_found": np.ones(n, bool),
        "box_frame": positions,
    }


def _process_sequences(
    batch: _SequenceBatch, cache: CropCache, params: CropParams, keep: bool
) -> tuple[list[_Outcome], bool]:
    """Crop entries for the sequences of one archive: the archive is listed once (one
    streaming pass), then each sequence's sampled frames are read."""
    # imported here: the adapter module imports preprocess.video, whose package imports us
    from dfbench.datasets.wilddeepfake import list_sequences, read_sequence, split_sequence_path

    outcomes = []

    def fail(m: _Member, reason: str) -> None:
        cache.put("crops", m.key, _failure(reason))
        outcomes.append(_Outcome(m.video_id, m.key, failed=reason))

    try:
        counts, _ = list_sequences(split_sequence_path(batch.members[0].path)[0])
    except DatasetError as exc:  # incl. UnsafePathError: a malicious archive fails its sequences
        for m in batch.members:
            fail(m, str(exc))
        return outcomes, False
    for m in batch.members:
        try:
            archive, key = split_sequence_path(m.path)
            n = counts.get(key, 0)
            if n == 0:
                raise DatasetError(f"Archive {archive} holds no frames of sequence {key!r}.")
            positions = sample_indices(n, params.frames, params.sampler)
            frames = read_sequence(m.path, positions.tolist())
        except DatasetError as exc:
            fail(m, str(exc))
            continue
        entry = crops_from_sequence(frames, positions, n, params)
        cache.put("crops", m.key, entry)
        outcomes.append(_Outcome(m.video_id, m.key, frames=len(entry["crops"]), entry=entry if keep else None))
    return outcomes, False


def _sequence_worker(batch: _SequenceBatch, cache_root: str, params: CropParams) -> tuple[list[_Outcome], bool]:
    return _process_sequences(batch, CropCache(cache_root), params, keep=False)


def _crop_datasets(index: pd.DataFrame, frames_are_crops: bool | None) -> set[str]:
    """Datasets of ``index`` whose files are face crops: all or none when the caller says so,
    else each dataset's adapter attribute ``frames_are_crops`` (unknown names: False)."""
    names = {str(d) for d in index["dataset"].unique()} if len(index) else set()
    if frames_are_crops is not None:
        return names if frames_are_crops else set()
    import importlib

    importlib.import_module("dfbench.datasets")  # registers every adapter
    from dfbench.datasets.base import DATASETS

    return {d for d in names if d in DATASETS and DATASETS.get(d).frames_are_crops}


def _worker(group: _Group, cache_root: str, params: CropParams, device: str, rebuild: bool) -> tuple[list[_Outcome], bool]:
    import torch

    torch.set_num_threads(1)  # one process per core: intra-op threads would oversubscribe
    return _process_group(group, CropCache(cache_root), params, device, rebuild, keep=False)


# ----------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------
def ensure_crops(
    index: pd.DataFrame,
    *,
    cache: CropCache,
    params: CropParams,
    real_methods: Sequence[str],
    qualities: Sequence[str],
    pool: pd.DataFrame | None = None,
    rebuild: bool = False,
    progress: bool = True,
    workers: int = 0,
    device: str = "cpu",
    keep: bool = False,
    frames_are_crops: bool | None = None,
    ray: str | None = None,
    ray_gpus: float = 0.0,
) -> tuple[PreprocessReport, dict[str, dict[str, np.ndarray]]]:
    """Make sure every row of ``index`` has a crop entry; returns the report and, with
    ``keep``, the entries of the successful videos (video_id → arrays), read once.

    ``frames_are_crops``: whether the rows are face-crop sequences (no detection); None =
    ask each row's dataset adapter (its ``frames_are_crops`` attribute).

    ``ray`` (``auto`` or a cluster address): each reference group (and each crop-sequence
    archive) is one Ray task writing into the same cache folder, which must then be on a
    file system every node shares; ``ray_gpus`` is each task's GPU request."""
    start = time.perf_counter()
    report = PreprocessReport(total=len(index))
    entries: dict[str, dict[str, np.ndarray]] = {}
    pool = index if pool is None else pd.concat([pool, index]).drop_duplicates("video_id")
    refs = reference_video_ids(
        index, real_methods=real_methods, qualities=qualities, pool=pool, detect_on_fake=params.detect_on_fake
    )
    path_of = dict(zip(pool["video_id"], pool["path"]))
    corrupt_before = len(cache.stats.corrupt)
    groups: dict[str, _Group] = {}
    batches: dict[str, _SequenceBatch] = {}
    crop_sets = _crop_datasets(index, frames_are_crops)
    for (_, row), ref_id in zip(index.iterrows(), refs):
        vid = row["video_id"]
        if str(row["dataset"]) in crop_sets:
            path = str(row["path"])
            try:
                key = cache.sequence_key(sequence_identity(path), params)
            except OSError as exc:
                report.failed[vid] = f"archive of {path} cannot be read ({exc.strerror or exc})"
                continue
            report.keys[vid] = key
            if not _cached(cache, key, vid, rebuild, keep, report, entries):
                archive = path.rpartition("::")[0]
                batches.setdefault(archive, _SequenceBatch(archive, [])).members.append(_Member(vid, path, key, ""))
            continue
        if row["label"] == 1 and ref_id == vid and not params.detect_on_fake:
            report.notes.append(f"{vid}: its target's real video is not indexed; boxes are detected on the fake")
        try:
            ident = file_identity(row["path"])
        except OSError as exc:
            report.failed[vid] = f"video file {row['path']} cannot be read ({exc.strerror or exc})"
            continue
        if ident.startswith("0:"):  # an empty file fails by itself, whatever its reference does
            report.failed[vid] = f"video file {row['path']} is empty (0 bytes)"
            continue
        try:
            ref_ident = file_identity(path_of[ref_id])
        except OSError as exc:
            report.failed[vid] = f"reference video file {path_of[ref_id]} cannot be read ({exc.strerror or exc})"
            continue
        reencode = row.get(REENCODE_COLUMN, "")
        reencode = reencode if isinstance(reencode, str) else ""  # absent column / NaN: the file as is
        if reencode:  # the same file re-encoded: its own identity, so its own cache entry
            ident = reencoded_identity(ident, reencode)
        mask_path = str(row.get("mask_path", "") or "")
        mask_ident = None
        if mask_path:
            try:
                mask_ident = file_identity(mask_path)
            except OSError:
                report.notes.append(f"{vid}: mask file {mask_path} is missing; crops are made without a mask")
                mask_path = ""
        key = cache.crop_key(ident, ref_ident, mask_ident, params)
        report.keys[vid] = key
        if _cached(cache, key, vid, rebuild, keep, report, entries):
            continue
        group = groups.setdefault(
            ref_id, _Group(ref_id, str(path_of[ref_id]), cache.box_key(ref_ident, params), [])
        )
        group.members.append(_Member(vid, str(row["path"]), key, mask_path, reencode))
    report.rebuilt_corrupt = cache.stats.corrupt[corrupt_before:]

    n_todo = sum(len(g.members) for g in groups.values()) + sum(len(b.members) for b in batches.values())
    with _progress(progress, n_todo) as advance:
        results: Iterable[tuple[list[_Outcome], bool]]
        if ray is not None and groups.keys() | batches.keys():
            from dfbench.benchmark.sweep import ray_futures

            futures = ray_futures(ray, [(_worker, (g, str(cache.root), params, device, rebuild)) for g in groups.values()]
                                  + [(_sequence_worker, (b, str(cache.root), params)) for b in batches.values()], gpus=ray_gpus)
            _tally(_collect(futures, advance), report, entries, cache, keep)
        elif workers > 1 and len(groups) + len(batches) > 1:
            ctx = get_context("spawn")  # no fork: torch's thread pools do not survive fork
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                futures = [
                    ex.submit(_worker, g, str(cache.root), params, device, rebuild) for g in groups.values()
                ] + [ex.submit(_sequence_worker, b, str(cache.root), params) for b in batches.values()]
                results = _collect(futures, advance)
                _tally(results, report, entries, cache, keep)
        else:
            results = itertools.chain(
                (_advance(_process_group(g, cache, params, device, rebuild, keep), advance) for g in groups.values()),
                (_advance(_process_sequences(b, cache, params, keep), advance) for b in batches.values()),
            )
            _tally(results, report, entries, cache, keep)
    report.seconds = time.perf_counter() - start
    return report, entries


def _cached(
    cache: CropCache,
    key: str,
    vid: str,
    rebuild: bool,
    keep: bool,
    report: PreprocessReport,
    entries: dict[str, dict[str, np.ndarray]],
) -> bool:
    """Record ``vid``'s cached entry (or cached failure) in the report; False on a miss."""
    # without keep, only the small arrays are loaded (the checksum still covers the crops)
    entry = None if rebuild else cache.get("crops", key, None if keep else ("failed", "frame_indices"))
    if entry is None:
        return False
    report.cached += 1
    if "failed" in entry:
        report.failed[vid] = str(entry["failed"])
    else:
        report.frames += len(entry["frame_indices"])
        if keep:
            entries[vid] = entry
    return True


def _tally(
    results: Iterable[tuple[list[_Outcome], bool]],
    report: PreprocessReport,
    entries: dict[str, dict[str, np.ndarray]],
    cache: CropCache,
    keep: bool,
) -> None:
    for outcomes, detected in results:
        report.detected_references += int(detected)
        for o in outcomes:
            report.processed += 1
            if o.note:
                report.notes.append(o.note)
            if o.failed is not None:
                report.failed[o.video_id] = o.failed
                continue
            report.frames += o.frames
            if keep:
                entry = o.entry if o.entry is not None else cache.get("crops", o.key)
                if entry is None or "failed" in entry:
                    report.failed[o.video_id] = "its crop-cache entry vanished after it was written"
                else:
                    entries[o.video_id] = entry


def _advance(result: tuple[list[_Outcome], bool], advance: Any) -> tuple[list[_Outcome], bool]:
    advance(len(result[0]))
    return result


def _collect(futures: list[Any], advance: Any) -> Iterable[tuple[list[_Outcome], bool]]:
    from concurrent.futures import as_completed

    for fut in as_completed(futures):
        yield _advance(fut.result(), advance)


class _progress:
    """A rich progress bar (or nothing); yields a callable that advances it."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled and total > 0
        self.total = total

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self._bar.__enter__()
        task = self._bar.add_task("Cropping faces", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


def preprocess(
    index: pd.DataFrame,
    *,
    cache: CropCache,
    params: CropParams,
    adapter: Any | None = None,
    real_methods: Sequence[str] | None = None,
    qualities: Sequence[str] | None = None,
    pool: pd.DataFrame | None = None,
    rebuild: bool = False,
    progress: bool = True,
    workers: int = 0,
    device: str = "cpu",
    ray: str | None = None,
    ray_gpus: float = 0.0,
) -> PreprocessReport:
    """Fill the crop cache for every video of ``index`` and print a summary.

    ``adapter`` (a DatasetAdapter) supplies ``real_methods`` and ``qualities``; without one,
    pass them. ``pool``: the index references are looked up in when ``index`` is a slice.
    ``rebuild`` ignores existing entries. ``workers`` > 1 spreads reference groups over
    that many processes; ``ray`` spreads them over a Ray cluster (see ``ensure_crops``).
    """
    frames_are_crops = None
    if adapter is not None:
        real_methods = adapter.real_methods if real_methods is None else real_methods
        qualities = adapter.qualities if qualities is None else qualities
        frames_are_crops = bool(adapter.frames_are_crops)
    if real_methods is None or qualities is None:
        raise TypeError("preprocess needs an adapter or both real_methods and qualities")
    report, _ = ensure_crops(
        index,
        cache=cache,
        params=params,
        real_methods=real_methods,
        qualities=qualities,
        pool=pool,
        rebuild=rebuild,
        progress=progress,
        workers=workers,
        device=device,
        frames_are_crops=frames_are_crops,
        ray=ray,
        ray_gpus=ray_gpus,
    )
    if progress:
        from rich.console import Console

        Console(stderr=True).print(report.summary(), markup=False, highlight=False)
    return report


__all__ = [
    "NO_FACE",
    "PreprocessReport",
    "crop_with_reference",
    "crops_from_sequence",
    "ensure_crops",
    "preprocess",
    "reference_video_ids",
    "video_name",
]
