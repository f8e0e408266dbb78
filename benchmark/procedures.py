"""What a protocol does, by registered name, and the run context procedures work through.

``train_test`` (the default procedure) covers every protocol whose models are trained on
the spec's trainings and scored on its tests, optionally through a registered laundering
``perturbation`` or a registered FrameSet ``transform``. Protocols that need another flow
(e.g. ``compression_remedy``: a frozen detector plus a bleach trained on other data)
register their own procedure and use the same context.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.frames import FailedVideo, FrameSet
from dfbench.benchmark.metrics import bootstrap_auc_interval, compute_metrics, error_counts, video_level
from dfbench.benchmark.protocol import DataSpec, ProtocolSpec, TestSpec, TrainingSpec
from dfbench.benchmark.registry import Registry
from dfbench.benchmark.results import atomic_write_json, safe_component
from dfbench.detectors.base import Detector, create_detector

logger = logging.getLogger(__name__)

Perturbation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")
TEST_TRANSFORMS: Registry[Callable[..., FrameSet]] = Registry("test transform")
PROCEDURES: Registry[Callable[[RunContext], None]] = Registry("procedure")
# fakes made from a data entry's real frames (``synthesis:``), e.g. dfbench.benchmark.synthesis
SYNTHESES: Registry[Callable[..., FrameSet]] = Registry("synthesis")

# failed videos score 0.5 at video level and are counted (DATASETS.md convention)
FAILED_VIDEO_SCORE = 0.5


def cell_key(training: str, test: str, variant: str = "", perturbation: str = "", strength: float | None = None) -> str:
    return json.dumps([training, test, variant, perturbation, strength], sort_keys=True)


@dataclass
class RunContext:
    """Everything a procedure needs for one (protocol, detector, preset, seed) run."""

    spec: ProtocolSpec
    detector_name: str
    preset: str
    seed: int
    device: str
    run_dir: Path
    frame_loader: Callable[..., FrameSet]  # (data, split, frames_per_video, size, requires) -> FrameSet
    store: Any  # dfbench.benchmark.results.ResultsStore
    detector_overrides: dict[str, Any] = field(default_factory=dict)
    run_meta: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str, int, int], None] | None = None
    log: Callable[[str], None] = logger.info
    available: Callable[[str], bool] = lambda dataset: True
    skip_tests: frozenset[str] = frozenset()  # optional tests whose data is absent
    fingerprints: dict[str, str] = field(default_factory=dict)  # every set this process loaded (run.json)
    # What each trained model saw, by training name (and "training/variant" for a model
    # trained on top of it, e.g. a bleach). Stored beside the model and read back when it
    # is reused, so a row's data_fingerprint does not depend on whether the run resumed.
    model_fingerprints: dict[str, dict[str, str]] = field(default_factory=dict)

    # ---- detectors
    def new_detector(self, name: str | None = None, **overrides: Any) -> Detector:
        return create_detector(name or self.detector_name, preset=self.preset, **{**self.detector_overrides, **overrides})

    @property
    def work_dir(self) -> Path:
        path = self.run_dir / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_dir(self, training_name: str) -> Path:
        return self.run_dir / "models" / safe_component(training_name)

    def fit(self, detector: Detector, training_name: str, train: FrameSet, val: FrameSet) -> Detector:
        """Fit once per training and run dir; a finished model is reloaded, an interrupted fit resumes."""
        folder = self.model_dir(training_name)
        final = folder / "model.pt"
        if final.exists():
            self.log(f"[{training_name}] reusing trained model {final}")
            self.model_fingerprints[training_name] = stored_fingerprints(folder / "fit.json")
            return detector.to(self.device).load(final)
        if len(val) == 0 or len(np.unique(val.labels)) < 2:
            raise DfbenchError(
                f"Training {training_name!r} of protocol {self.spec.name!r} has no validation videos of both classes; "
                f"model selection uses the validation split only, so the dataset needs a val split."
            )
        self.log(f"[{training_name}] training {detector.name} on {train}")
        report = detector.fit(train, val, seed=self.seed, device=self.device, checkpoint_dir=folder, progress=self.progress)
        detector.save(final)
        seen = {"train": frames_fingerprint(train), "val": frames_fingerprint(val)}
        self.model_fingerprints[training_name] = seen
        atomic_write_json(folder / "fit.json", {
            "best_epoch": report.best_epoch, "best_val_video_auc": report.best_val_auc,
            "epochs_run": report.epochs_run, "resumed_from_epoch": report.resumed_from_epoch,
            "history": report.history, "wall_time_s": report.wall_time_s, "precision": report.precision,
            "data_fingerprints": seen,
        })
        (folder / "train_state.pt").unlink(missing_ok=True)  # finished: the inference checkpoint is enough
        return detector

    def tests_to_score(self, training_name: str) -> list[TestSpec]:
        """The tests of a training whose data is here (optional tests without data skipped)."""
        return [
            t for t in self.spec.tests_for(training_name)
            if t.name not in self.skip_tests and all(self.available(d.dataset) for d in t.data)
        ]

    def train_model(self, detector: Detector, training: TrainingSpec) -> Detector:
        """``detector`` fitted on ``training`` (or its finished model reloaded): training frames
        with the detector's extras, validation frames with ``validation_requires`` of them.
        The one pending-training block every procedure uses."""
        if not (self.model_dir(training.name) / "model.pt").exists():
            train = self.frames(training.data, "train", detector.requires)
            val = self.frames(training.data, "val", validation_requires(detector.requires), role="test")
        else:
            train = val = None
        return self.fit(detector, training.name, train, val)

    # ---- data
    def frames(
        self, data: Sequence[DataSpec], split: str, requires: Iterable[str] = (), *, role: str = "train",
        per_video: int | None = None,
    ) -> FrameSet:
        """Frames of ``data``'s ``split``; ``per_video`` (a test's own ``frames``) overrides the
        protocol's frames per video for the role."""
        if per_video is None:
            per_video = self.spec.frames_train if role == "train" else self.spec.frames_test
        synthesis = synthesis_of(data)
        if synthesis is None:
            frames = self.frame_loader(list(data), split, per_video, tuple(sorted(set(requires))))
        else:
            # the one place a data entry's ``synthesis`` happens: its reals are loaded with what
            # the synthesis needs, then turned into reals + fakes (seeded by the run's seed)
            make = SYNTHESES.get(synthesis)
            needed = tuple(sorted(set(requires) | set(getattr(make, "requires", ()))))
            reals = self.frame_loader(list(data), split, per_video, needed)
            frames = make(reals, seed=self.seed, keep=tuple(requires))
        self.fingerprints[f"{role}:{split}:" + ",".join(d.describe() for d in data)] = frames_fingerprint(frames)
        return frames

    # ---- scoring
    def cell_done(self, test_name: str, training_name: str, variant: str = "", perturbation: str = "", strength: float | None = None) -> bool:
        return self.store.cell_done(self.run_dir, cell_key(training_name, test_name, variant, perturbation, strength))

    def score(
        self,
        test_name: str,
        training_name: str,
        frames: FrameSet,
        scores: np.ndarray,
        *,
        variant: str = "",
        perturbation: str = "",
        strength: float | None = None,
        extra: dict[str, Any] | None = None,
        levels: tuple[str, ...] = ("frame", "video"),
    ) -> pd.DataFrame:
        """Every metric at frame and video level for one cell; written atomically as one unit.

        ``levels=("video",)`` when each "frame" is a whole video's score (``dfbench eval
        --predictions`` with one score per video): frame-level rows would then be made up."""
        scores = np.asarray(scores, dtype=float)
        if scores.shape != (len(frames),) or not np.all(np.isfinite(scores)):
            raise ValueError(f"scores for {test_name!r} must be {len(frames)} finite values")
        labels = frames.labels
        videos = video_level(frames.meta, scores)
        failed = _failed_videos(frames)
        if len(failed):
            videos = pd.concat([videos, failed.assign(score=FAILED_VIDEO_SCORE, n_frames=0)], ignore_index=True)
        base = self._row_base(test_name, training_name, variant, perturbation, strength, extra, frames)
        rows = []
        for level, y, s in (("frame", labels, scores), ("video", videos["label"].to_numpy(), videos["score"].to_numpy())):
            if level not in levels:
                continue
            counts = error_counts(y, s)
            ci = bootstrap_auc_interval(y, s, seed=self.seed) if level == "video" else (math.nan, math.nan)
            for metric, value in compute_metrics(y, s, self.spec.metrics).items():
                rows.append({
                    **base, "metric": metric, "level": level, "value": value,
                    "ci_low": ci[0] if metric == "auc" else math.nan, "ci_high": ci[1] if metric == "auc" else math.nan,
                    **counts, "n_failed": len(failed) if level == "video" else 0,
                })
        rows_df = pd.DataFrame(rows)
        pred = frames.meta[[c for c in ("video_id", "frame", "label", "dataset", "method", "quality") if c in frames.meta]].copy()
        pred["score"] = scores
        pred["training"], pred["test"], pred["variant"] = training_name, test_name, variant
        pred["perturbation"], pred["strength"] = perturbation, strength if strength is not None else math.nan
        key = cell_key(training_name, test_name, variant, perturbation, strength)
        self.store.mark_cell_done(self.run_dir, key, rows_df, pred)
        return rows_df

    def cell_fingerprint(self, training_name: str, variant: str, test_frames: FrameSet) -> str:
        """The data behind one cell: what its model(s) trained and validated on, and the test
        frames. Independent of what else this process loaded, so resumed = uninterrupted."""
        parts = {f"model:{k}": v for k, v in self.model_fingerprints.get(training_name, {}).items()}
        parts.update({f"{variant}:{k}": v for k, v in self.model_fingerprints.get(f"{training_name}/{variant}", {}).items()})
        parts["test"] = frames_fingerprint(test_frames)
        return combined_fingerprint(parts)

    def _row_base(self, test_name, training_name, variant, perturbation, strength, extra, frames) -> dict[str, Any]:
        training = next((t for t in self.spec.trainings if t.name == training_name), None)
        test = next((t for t in self.spec.tests if t.name == test_name), None)
        return {
            **self.run_meta,
            "training": training_name,
            "train_data": "+".join(d.describe() for d in training.data) if training else training_name,
            "train_quality": _qualities(training.data) if training else "",
            **_structured("train", training.data if training else ()),
            "test": test_name,
            "test_data": "+".join(d.describe() for d in test.data) if test else test_name,
            "test_quality": _qualities(test.data) if test else "",
            **_structured("test", test.data if test else ()),
            "variant": variant,
            "perturbation": perturbation,
            "strength": strength if strength is not None else math.nan,
            "data_fingerprint": self.cell_fingerprint(training_name, variant, frames),
            **(extra or {}),
        }


def synthesis_of(data: Sequence[DataSpec]) -> str | None:
    """The synthesis a set of data entries asks for (None: plain selections). A set mixes no
    synthesised and plain entries (``parse_protocol`` rejects that in a spec)."""
    names = {d.synthesis for d in data}
    if len(names) > 1:
        raise DfbenchError(f"Data entries {[d.describe() for d in data]} mix synthesised and plain selections.")
    return names.pop() if names else None


def _structured(role: str, data: Sequence[DataSpec]) -> dict[str, str]:
    """``<role>_dataset/_methods/_qualities``: the selection as fields ("+"-joined, "all" when
    the spec leaves it open), so nothing downstream parses ``DataSpec.describe()`` strings."""
    def joined(values: Iterable[str]) -> str:
        return "+".join(dict.fromkeys(values))

    return {
        f"{role}_dataset": joined(d.dataset for d in data),
        f"{role}_methods": joined(m for d in data for m in d.method_names),
        f"{role}_qualities": joined(q for d in data for q in (d.qualities or ("all",))),
    }


def _qualities(data: Sequence[DataSpec]) -> str:
    qs = [q for d in data for q in (d.qualities or ())]
    return "+".join(dict.fromkeys(qs))


def _failed_videos(frames: FrameSet) -> pd.DataFrame:
    """The selected videos the loader could not use (``FailedVideo`` records: no face,
    undecodable, a required pair missing), one row each, to be counted at video level."""
    failed: list[FailedVideo] = frames.attrs.get("failed", [])
    return pd.DataFrame(
        [{"video_id": f.video_id, "label": int(f.label)} for f in failed], columns=["video_id", "label"]
    )


def frames_fingerprint(frames: FrameSet) -> str:
    """Hash of which videos and frames were used (ids, frame indices, labels)."""
    meta = frames.meta
    cols = [c for c in ("video_id", "frame", "label") if c in meta]
    blob = pd.util.hash_pandas_object(meta[cols], index=False).to_numpy().tobytes()
    return hashlib.sha256(blob).hexdigest()[:16]


def stored_fingerprints(path: Path) -> dict[str, str]:
    """The ``data_fingerprints`` a finished model's JSON record holds ({} for older records)."""
    try:
        blob = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    found = blob.get("data_fingerprints") if isinstance(blob, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def combined_fingerprint(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- train_test
def _test_cells(test: TestSpec) -> list[tuple[str, float | None]]:
    if test.perturbation is None:
        return [("", None)]
    return [(test.perturbation.op, v) for v in test.perturbation.values]


def score_test(ctx: RunContext, detector: Detector, training_name: str, test: TestSpec, *, variant: str = "") -> None:
    """Score one test spec (every perturbation strength) with a fitted detector; skips finished cells."""
    cells = [c for c in _test_cells(test) if not ctx.cell_done(test.name, training_name, variant, c[0], c[1])]
    if not cells:
        return
    transform = TEST_TRANSFORMS.get(test.transform.name) if test.transform else None
    requires = getattr(transform, "requires", frozenset())
    frames = ctx.frames(test.data, "test", requires, role="test", per_video=test.frames)
    for op, value in cells:
        shown = test.name if not op else f"{test.name} {op}={value:g}"
        ctx.log(f"[{training_name}] scoring {shown} ({len(frames)} frames)")
        rng = np.random.default_rng([ctx.seed, int(value * 1000)]) if op else None
        scored, scores = score_in_blocks(
            detector, frames,
            transform=None if transform is None else (lambda f: transform(f, **test.transform.kwargs)),
            perturbation=PERTURBATIONS.get(op) if op else None, value=value, rng=rng,
        )
        ctx.score(test.name, training_name, scored, scores, variant=variant, perturbation=op, strength=value)


# Frames a test transform and a perturbation make at once, in whole videos: a paper-scale
# laundered or partial-face set (FF++ test, 270 frames per video) is tens of GB as one array.
SCORING_BLOCK_FRAMES = 2048


def video_blocks(video_ids: Sequence[str], max_frames: int = SCORING_BLOCK_FRAMES) -> list[np.ndarray]:
    """Row positions cut into blocks of whole videos, in row order (a video's frames are
    consecutive in every loaded set): each block holds at most ``max_frames`` rows unless one
    video alone is longer."""
    ids = np.asarray(video_ids, dtype=object)
    if len(ids) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    if len(starts) != len(pd.unique(ids)):
        raise ValueError("a video's frames are not consecutive rows")
    ends = np.r_[starts[1:], len(ids)]
    blocks, first = [], 0
    for start, end in zip(starts, ends):
        if end - first > max_frames and start > first:
            blocks.append(np.arange(first, start))
            first = start
    blocks.append(np.arange(first, len(ids)))
    return blocks


def score_in_blocks(
    detector: Detector,
    frames: FrameSet,
    *,
    transform: Callable[[FrameSet], FrameSet] | None = None,
    perturbation: Perturbation | None = None,
    value: float | None = None,
    rng: np.random.Generator | None = None,
    max_frames: int = SCORING_BLOCK_FRAMES,
) -> tuple[FrameSet, np.ndarray]:
    """Transform, perturb and score a (streamed) test set a block of whole videos at a time,
    so no transformed or degraded copy of the whole set is ever in memory. The perturbation
    draws from ``rng`` block after block in row order, which gives the same numbers as one
    call on the whole set (``tests/test_laundering.py`` checks every registered operator).

    Returns the scored frames' description (metadata and attributes after the transform; the
    images are the untransformed ones, which scoring never reads again) and the scores.
    """
    metas, attrs, scores = [], dict(frames.attrs), []
    for rows in video_blocks(frames.meta["video_id"].astype(str).tolist(), max_frames):
        block = frames.subset(rows).in_memory()
        if transform is not None:
            block = transform(block)
        if perturbation is not None:
            # video re-encoders (h264) need to know which frames form one video
            wants_ids = "video_ids" in inspect.signature(perturbation).parameters
            kwargs = {"video_ids": block.meta["video_id"].astype(str).tolist()} if wants_ids else {}
            block = FrameSet(perturbation(block.images, value, rng, **kwargs), block.meta, block.extras, block.attrs)
        metas.append(block.meta)
        attrs.update(block.attrs)
        scores.append(detector.predict(block))
    meta = pd.concat(metas) if metas else frames.meta
    out = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float64)
    return FrameSet(frames.images, meta, {}, attrs), out


# Extras that change which frames a set holds rather than adding to each frame: "qualities"
# turns the selection into one row per video at its first quality with the others stacked
# beside it. Validation scores frames as a test does, so it loads them as separate rows;
# otherwise a multi-quality model (qad) would be selected on its raw frames alone.
TRAINING_ONLY_EXTRAS = frozenset({"qualities"})


def validation_requires(requires: Iterable[str]) -> tuple[str, ...]:
    """The extras to load validation frames with: the detector's, less the training-only ones."""
    return tuple(sorted(set(requires) - TRAINING_ONLY_EXTRAS))


def train_test(ctx: RunContext) -> None:
    """Train one model per training spec (validation-selected), then score its tests."""
    for training in ctx.spec.trainings:
        tests = ctx.tests_to_score(training.name)
        pending = [t for t in tests if any(not ctx.cell_done(t.name, training.name, "", op, v) for op, v in _test_cells(t))]
        if not pending:
            ctx.log(f"[{training.name}] all {len(tests)} test cells already scored")
            continue
        detector = ctx.train_model(ctx.new_detector(), training)
        for test in pending:
            score_test(ctx, detector, training.name, test)


PROCEDURES.register("train_test", train_test)
