"""Score a protocol's test cells without training: from a checkpoint, or from someone's predictions.

``dfbench eval --protocol P --checkpoint PATH`` loads a model in dfbench's own checkpoint
format (what ``Detector.save`` writes, e.g. ``<run>/models/<training>/model.pt``; read with
``torch.load(weights_only=True)``) and scores every test cell of that training.
``dfbench eval --protocol P --predictions scores.csv --name M`` takes one P(fake) per test
video or per test frame (``dfbench export-testlist`` writes the list to score) instead.

Both go through the run's own machinery: the protocol and data resolution of
``dfbench.benchmark.runner`` (``DataResolver``), the cell scoring of
``dfbench.benchmark.procedures`` (``RunContext.score``: every metric, the bootstrap interval,
failed videos at 0.5, predictions, one atomic cell) and the results store; so the rows are
the rows a run writes and the leaderboard reads them as any other. What differs is recorded
in every row: ``trained_here`` is False, ``checkpoint_sha256`` / ``predictions_sha256`` name
the file the scores came from, and ``detector`` is the label the rows are filed under
(``--name``; for a checkpoint, ``<detector>@checkpoint`` by default), never a built-in
detector's name, so a summary never averages them with a model trained here.

Scope: protocols whose procedure is ``train_test``. Predictions cover the tests without a
perturbation or transform (those need dfbench's own processing of the frames, so only a
model dfbench runs can be scored on them); such tests are skipped with a note.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.benchmark.failures import FailureLog
from dfbench.benchmark.frames import FailedVideo, FrameSet
from dfbench.benchmark.plugins import file_sha256
from dfbench.benchmark.protocol import ProtocolSpec, TestSpec, load_protocol

EVAL_PROCEDURES = ("train_test",)
TESTLIST_COLUMNS = ("training", "test", "dataset", "video_id", "frame", "note")
# a predictions file larger than this is refused before pandas reads it (untrusted input)
MAX_PREDICTIONS_BYTES = 512 * 1024 * 1024
SHOWN = 5  # names shown in a missing / extra error


@dataclass
class EvalRequest:
    protocol: str
    preset: str = "mini"
    seed: int = 0  # the bootstrap interval's seed (a run uses its training seed)
    device: str = "auto"
    data_root: Path | None = None
    dataset_roots: dict[str, Path] = field(default_factory=dict)
    results_root: Path | None = None
    checkpoints: Sequence[str] = ()  # "PATH" or "TRAINING=PATH"
    detector: str | None = None  # checkpoint mode: default = the name the checkpoint records
    predictions: Path | None = None
    name: str | None = None  # the label rows are filed under
    fresh: bool = False
    progress: bool = True
    quiet: bool = False


# --------------------------------------------------------------------------- shared set-up
def _spec(request: EvalRequest | Any) -> ProtocolSpec:
    from dfbench.benchmark.validate import check_spec

    spec = load_protocol(request.protocol, request.preset)
    check_spec(spec)
    if spec.procedure not in EVAL_PROCEDURES:
        raise ConfigError(
            f"Protocol {spec.name!r} uses procedure {spec.procedure!r}; dfbench eval scores protocols whose "
            f"models are trained and then tested ({', '.join(EVAL_PROCEDURES)}). Run it with `dfbench run`."
        )
    return spec


def _resolver(request: Any, spec: ProtocolSpec, input_size: int) -> tuple[Any, list[str]]:
    """The run's DataResolver, requiring only the test data (nothing is trained here)."""
    from dfbench.benchmark.runner import DataResolver, RunRequest

    run_request = RunRequest(
        protocol=request.protocol, detector="erm", preset=request.preset, data_root=request.data_root,
        dataset_roots=dict(request.dataset_roots), progress=request.progress, quiet=getattr(request, "quiet", False),
    )
    resolver = DataResolver(run_request, spec, input_size)
    for test in spec.tests:
        for d in test.data:
            if not test.optional and not resolver.available(d.dataset):
                raise DatasetError(
                    f"Protocol {spec.name!r} tests on dataset {d.dataset!r}, which is not available; supply it "
                    f"with --data-root DIR or --dataset-root {d.dataset}=PATH."
                )
    skipped = [t.name for t in spec.tests if t.optional and not resolver._has_test_videos(t.data)]
    return resolver, skipped


def _crop_size(preset: str) -> int:
    """The crop size a run of the preset's default detector reads (frame indices do not depend
    on it; it only picks the crop-cache entries, so a cache a run filled is reused)."""
    from dfbench.detectors import create_detector

    return create_detector("erm", preset=preset).get_config().input_size


def _plain_tests(spec: ProtocolSpec, training: str, log: Callable[[str], None]) -> list[TestSpec]:
    tests = []
    for test in spec.tests_for(training):
        if test.perturbation is not None or test.transform is not None:
            log(f"note: test {test.name!r} is skipped: its frames are perturbed or transformed by dfbench "
                f"(only a model dfbench runs can be scored on it).")
            continue
        tests.append(test)
    return tests


# --------------------------------------------------------------------------- test list
def test_list(request: Any, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Every (training, test, video, frame) a predictions file must score; a video dfbench's
    preprocessing could not use is listed once with an empty frame and the reason in ``note``."""
    spec = _spec(request)
    resolver, skipped = _resolver(request, spec, _crop_size(request.preset))
    rows: list[dict[str, Any]] = []
    for training in spec.trainings:
        for test in _plain_tests(spec, training.name, log):
            if test.name in skipped:
                continue
            frames = resolver.load(list(test.data), "test", test.frames or spec.frames_test, ())
            meta = frames.meta
            for vid, ds, frame in zip(meta["video_id"], meta["dataset"], meta["frame"]):
                rows.append({"training": training.name, "test": test.name, "dataset": ds, "video_id": vid,
                             "frame": int(frame), "note": ""})
            for failed in frames.attrs.get("failed", []):
                rows.append({"training": training.name, "test": test.name, "dataset": failed.video_id.split("/")[0],
                             "video_id": failed.video_id, "frame": None, "note": f"no frames: {failed.reason}"})
    out = pd.DataFrame(rows, columns=list(TESTLIST_COLUMNS))
    out["frame"] = out["frame"].astype("Int64")
    return out


# --------------------------------------------------------------------------- predictions file
def read_predictions(path: Path, trainings: Sequence[str]) -> pd.DataFrame:
    """The predictions CSV, checked: columns ``video_id, score`` (+ ``frame`` for per-frame
    scores, + ``training`` when the protocol has several trainings); scores in [0, 1] and
    finite, or empty for a video the method could not score (then counted as failed, at 0.5,
    as dfbench counts its own failed videos). Every problem is one ConfigError naming the row."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"--predictions {path}: the file does not exist.")
    if path.stat().st_size > MAX_PREDICTIONS_BYTES:
        raise ConfigError(f"--predictions {path}: larger than {MAX_PREDICTIONS_BYTES >> 20} MiB; is it the right file?")
    try:
        # every cell as text first: nothing in an untrusted file is interpreted before it is checked
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ConfigError(f"--predictions {path}: not a readable CSV file ({exc}).") from None
    df.columns = [str(c).strip() for c in df.columns]
    allowed = {"video_id", "score", "frame", "training"}
    unknown = sorted(set(df.columns) - allowed)
    missing = sorted({"video_id", "score"} - set(df.columns))
    if missing or unknown:
        raise ConfigError(
            f"--predictions {path}: columns must be video_id, score and optionally frame, training; "
            + (f"missing {missing}" if missing else f"unknown {unknown}") + "."
        )
    if df.empty:
        raise ConfigError(f"--predictions {path}: the file holds no rows.")
    if "training" not in df.columns:
        if len(trainings) != 1:
            raise ConfigError(
                f"--predictions {path}: the protocol trains {len(trainings)} models ({', '.join(trainings)}); add a "
                f"training column saying which model scored each row."
            )
        df["training"] = trainings[0]
    bad_training = sorted(set(df["training"]) - set(trainings))
    if bad_training:
        raise ConfigError(f"--predictions {path}: unknown training(s) {bad_training[:SHOWN]}; the protocol's: {', '.join(trainings)}.")
    if (df["video_id"].str.strip() == "").any():
        line = int(np.flatnonzero(df["video_id"].str.strip() == "")[0]) + 2
        raise ConfigError(f"--predictions {path}: line {line} has an empty video_id.")
    text = df["score"].str.strip()
    empty = text == ""
    score = pd.to_numeric(text.where(~empty), errors="coerce")
    bad = (~empty) & (score.isna() | ~np.isfinite(score.fillna(0.0)) | (score < 0) | (score > 1))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConfigError(
            f"--predictions {path}: line {i + 2} score {df['score'].iloc[i]!r} is not a probability in [0, 1] "
            f"({int(bad.sum())} such rows); leave the cell empty for a video your method could not score."
        )
    df["score"] = score.astype(float)  # NaN = empty = failed
    key = ["training", "video_id"]
    if "frame" in df.columns:
        frame = pd.to_numeric(df["frame"].str.strip(), errors="coerce")
        if frame.isna().any() or (frame < 0).any() or (frame != frame.round()).any():
            i = int(np.flatnonzero((frame.isna() | (frame < 0) | (frame != frame.round())).to_numpy())[0])
            why = (" (a video the test list shows without frames could not be used by dfbench: leave it out, it "
                   "counts as failed as in dfbench's own runs)") if df["frame"].iloc[i].strip() == "" else ""
            raise ConfigError(f"--predictions {path}: line {i + 2} frame {df['frame'].iloc[i]!r} is not a frame index{why}.")
        df["frame"] = frame.astype(np.int64)
        key.append("frame")
    dupes = df.duplicated(key)
    if dupes.any():
        i = int(np.flatnonzero(dupes.to_numpy())[0])
        raise ConfigError(f"--predictions {path}: line {i + 2} repeats {', '.join(key)} of an earlier row.")
    return df


def _names(keys: set[tuple], what: str, several_trainings: bool) -> str:
    """"3 videos (a, b, c)": keys are (training, video_id[, frame]); the first few are named."""
    def text(key: tuple) -> str:
        out = str(key[1]) + (f" frame {key[2]}" if len(key) > 2 else "")
        return f"{out} ({key[0]})" if several_trainings else out

    items = [text(k) for k in sorted(keys, key=lambda k: tuple(map(str, k)))]
    shown = ", ".join(items[:SHOWN])
    return f"{len(items)} {what} ({shown}{', …' if len(items) > SHOWN else ''})"


def _video_frames(frames: FrameSet) -> FrameSet:
    """One row per selected video (the loaded ones, then those dfbench could not use), with
    no pixels: the per-video predictions are the scores, each video one "frame"."""
    meta = frames.meta.drop_duplicates("video_id")[["video_id", "label", "dataset", "method", "quality"]]
    failed = pd.DataFrame(
        [{"video_id": f.video_id, "label": f.label, "dataset": f.video_id.split("/")[0], "method": "", "quality": ""}
         for f in frames.attrs.get("failed", [])],
        columns=meta.columns,
    )
    meta = pd.concat([meta, failed], ignore_index=True).assign(frame=0)
    meta["label"] = meta["label"].astype(np.int64)
    return FrameSet(np.zeros((len(meta), 1, 1, 3), np.uint8), meta, attrs={"failed": []})


def _scored(frames: FrameSet, given: pd.DataFrame, per_frame: bool) -> tuple[FrameSet, np.ndarray, set, set]:
    """(the frames to score, their scores, missing keys, the given keys used). An empty score
    (NaN) turns its video into a failed video, as dfbench's own failed videos are counted."""
    key = ["video_id", "frame"] if per_frame else ["video_id"]
    wanted = frames.meta[key].astype({"video_id": str})
    lookup = dict(zip(map(tuple, given[key].itertuples(index=False, name=None)), given["score"]))
    keys = list(map(tuple, wanted.itertuples(index=False, name=None)))
    missing = {k for k in keys if k not in lookup}
    scores = np.array([lookup.get(k, np.nan) for k in keys], dtype=float)
    failed_ids = set(frames.meta.loc[np.isnan(scores), "video_id"].astype(str)) if not missing else set()
    keep = ~frames.meta["video_id"].astype(str).isin(failed_ids).to_numpy()
    failed = list(frames.attrs.get("failed", []))
    for vid, label in frames.meta.loc[~keep, ["video_id", "label"]].drop_duplicates("video_id").itertuples(index=False):
        failed.append(FailedVideo(str(vid), int(label), "no score in the predictions file"))
    subset = frames.subset(np.flatnonzero(keep))
    subset.attrs["failed"] = failed
    return subset, scores[keep], missing, set(keys)


# --------------------------------------------------------------------------- the run
def _context(request: Any, spec: ProtocolSpec, resolver: Any, skipped: list[str], label: str, backbone: str,
             meta: dict[str, Any], identity: Mapping[str, Any], failures: FailureLog | None) -> Any:
    """The results folder and RunContext of one eval (run.json written as ``partial``)."""
    from dfbench.benchmark.environment import environment_info
    from dfbench.benchmark.procedures import RunContext
    from dfbench.benchmark.results import ResultsStore
    from dfbench.benchmark.runner import resolve_device
    from dfbench.benchmark.settings import get_settings

    device = resolve_device(request.device)
    store = ResultsStore(request.results_root or get_settings().results)
    env = environment_info(device)
    run_dir = store.run_dir(spec.name, label, backbone, request.preset, request.seed)
    run_meta = {
        "protocol": spec.name, "protocol_version": spec.version, "protocol_hash": spec.spec_hash(),
        "detector": label, "backbone": backbone, "preset": request.preset, "seed": request.seed,
        "data_kind": "synthetic-mini" if resolver.embedded else "real", "device": env.get("device", device),
        "versions": json.dumps(env.get("versions", {}), sort_keys=True), "git_hash": env.get("git_hash"),
        "trained_here": False, **meta,
    }
    old = store.read_run_meta(run_dir) or {}
    if request.fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    elif old and {k: old.get(k) for k in identity} != dict(identity):
        raise ConfigError(
            f"{run_dir} holds an eval of other input ({', '.join(f'{k} {old.get(k)}' for k in identity)}); "
            f"pass --fresh to replace it, --name to file it under another name, or --results DIR."
        )
    if failures is not None:
        resolver.failures = failures
    run_id = uuid.uuid4().hex[:12]
    store.write_run_meta(run_dir, {
        **run_meta, **identity, "status": "partial", "run_id": run_id, "started": datetime.now(timezone.utc).isoformat(),
        "protocol_spec": spec.raw, "environment": env, "roots": {k: str(v) for k, v in resolver.roots.items()},
    })
    log = (lambda msg: None) if request.quiet else (lambda msg: print(msg, flush=True))
    return RunContext(
        spec=spec, detector_name=label, preset=request.preset, seed=request.seed, device=device, run_dir=run_dir,
        frame_loader=resolver.load, store=store,
        run_meta={**run_meta, "run_id": run_id, "timestamp": datetime.now(timezone.utc).isoformat()},
        log=log, available=resolver.available, skip_tests=frozenset(skipped),
    )


def _finish(ctx: Any, resolver: Any, started: float) -> pd.DataFrame:
    store = ctx.store
    store.write_run_meta(ctx.run_dir, {
        **(store.read_run_meta(ctx.run_dir) or {}), "status": "complete", "wall_time_s": time.perf_counter() - started,
        "finished": datetime.now(timezone.utc).isoformat(), "data_fingerprints": ctx.fingerprints,
        **resolver.failures.to_json(),
    })
    rows = store.read_run(ctx.run_dir)
    ctx.log(f"{len(rows)} result rows in {ctx.run_dir}")
    return rows


def checkpoint_map(values: Sequence[str], spec: ProtocolSpec) -> dict[str, Path]:
    """``--checkpoint`` values → {training: path}. ``TRAINING=PATH`` names the training a
    model fills; a bare PATH is allowed when the protocol has one training."""
    names = [t.name for t in spec.trainings]
    out: dict[str, Path] = {}
    for value in values:
        head, sep, tail = value.partition("=")
        if sep and head in names:
            training, path = head, Path(tail)
        elif sep and head and "/" not in head and not Path(value).expanduser().exists():
            raise ConfigError(
                f"--checkpoint {value}: {head!r} is not a training of protocol {spec.name!r} (its trainings: {', '.join(names)})."
            )
        elif len(names) == 1:
            training, path = names[0], Path(value)
        else:
            raise ConfigError(
                f"--checkpoint {value}: protocol {spec.name!r} trains {len(names)} models; say which one this is "
                f"with --checkpoint TRAINING=PATH (TRAINING one of {', '.join(names)})."
            )
        if training in out:
            raise ConfigError(f"--checkpoint: training {training!r} is given twice.")
        path = path.expanduser()
        if not path.is_file():
            raise ConfigError(f"--checkpoint {value}: file {path} does not exist.")
        out[training] = path
    if not out:
        raise ConfigError("dfbench eval needs --checkpoint PATH or --predictions FILE.")
    return out


def evaluate_checkpoint(request: EvalRequest, *, failures: FailureLog | None = None) -> pd.DataFrame:
    """Score every test cell of each given training with its checkpoint; returns the rows."""
    from dfbench.benchmark.plugins import plugin_identity
    from dfbench.benchmark.procedures import score_test, stored_fingerprints
    from dfbench.benchmark.score import load_checkpoint_detector

    spec = _spec(request)
    paths = checkpoint_map(request.checkpoints, spec)
    models: dict[str, tuple[Any, str]] = {}
    for training, path in paths.items():
        # torch.load(weights_only=True); a foreign or training-state file is a ConfigError
        models[training] = (load_checkpoint_detector(path, name=request.detector), file_sha256(path))
    detectors = [d for d, _ in models.values()]
    if len({d.name for d in detectors}) != 1 or len({d.config.input_size for d in detectors}) != 1 or \
            len({d.config.backbone for d in detectors}) != 1:
        raise ConfigError("--checkpoint: the checkpoints of one eval must hold the same detector, backbone and input size.")
    first = detectors[0]
    label = request.name or f"{first.name}@checkpoint"
    shas = {t: sha for t, (_, sha) in models.items()}
    identity = {"checkpoints_sha256": shas}
    meta = {
        "config_hash": first.config.config_hash(), **plugin_identity(first.name),
        "checkpoint_detector": first.name, "pretrained": None, "weights_sha256": "",
    }
    started = time.perf_counter()
    resolver, skipped = _resolver(request, spec, first.config.input_size)
    ctx = _context(request, spec, resolver, skipped, label, first.config.backbone, meta, identity, failures)
    from dfbench.benchmark.progress import ProgressReporter

    with ProgressReporter(enabled=request.progress) as progress:
        ctx.progress = progress.update
        for training, (detector, sha) in models.items():
            detector.to(ctx.device)
            ctx.run_meta["checkpoint_sha256"] = sha
            # what the model saw, when the checkpoint sits in the run folder that trained it
            ctx.model_fingerprints[training] = stored_fingerprints(paths[training].parent / "fit.json")
            for test in ctx.tests_to_score(training):
                score_test(ctx, detector, training, test)
    return _finish(ctx, resolver, started)


def evaluate_predictions(request: EvalRequest, *, failures: FailureLog | None = None) -> pd.DataFrame:
    """Score the protocol's test cells from a predictions file; returns the rows."""
    if not request.name:
        raise ConfigError("--predictions needs --name: the method name the rows are filed under.")
    spec = _spec(request)
    trainings = [t.name for t in spec.trainings]
    given = read_predictions(Path(request.predictions), trainings)
    per_frame = "frame" in given.columns
    sha = file_sha256(Path(request.predictions).expanduser())
    started = time.perf_counter()
    resolver, skipped = _resolver(request, spec, _crop_size(request.preset))
    log = (lambda msg: None) if request.quiet else (lambda msg: print(msg, flush=True))
    # every cell is checked before anything is written: a file with missing or extra videos
    # stores nothing
    cells: list[tuple[str, TestSpec, FrameSet, np.ndarray]] = []
    missing: set = set()
    used: dict[str, set] = {t: set() for t in trainings}
    for training in sorted(set(given["training"]), key=trainings.index):
        rows = given[given["training"] == training]
        for test in _plain_tests(spec, training, log):
            if test.name in skipped:
                continue
            frames = resolver.load(list(test.data), "test", test.frames or spec.frames_test, ())
            if not per_frame:
                frames = _video_frames(frames)
            scored, scores, lost, keys = _scored(frames, rows, per_frame)
            missing |= {(training, *k) for k in lost}
            used[training] |= keys
            cells.append((training, test, scored, scores))
    key = ["video_id", "frame"] if per_frame else ["video_id"]
    extra = {(t, *k) for t, k in zip(given["training"], map(tuple, given[key].itertuples(index=False, name=None)))
             if tuple(k) not in used[t]}
    what = "frame(s)" if per_frame else "video(s)"
    if missing or extra:
        parts = []
        several = len(trainings) > 1
        if missing:
            parts.append(f"missing {_names(missing, what, several)} that the protocol's test sets hold")
        if extra:
            parts.append(f"extra {_names(extra, what, several)} that no test set {'of its training ' if several else ''}holds")
        raise ConfigError(
            f"--predictions {request.predictions}: {'; '.join(parts)}. `dfbench export-testlist --protocol "
            f"{request.protocol}` writes the exact list."
        )
    meta = {"config_hash": "", "pretrained": None, "weights_sha256": "", "detector_source": "predictions",
            "detector_sha256": "", "predictions_sha256": sha}
    ctx = _context(request, spec, resolver, skipped, request.name, "external", meta, {"predictions_sha256": sha}, failures)
    levels = ("frame", "video") if per_frame else ("video",)
    for training, test, scored, scores in cells:
        if ctx.cell_done(test.name, training):
            continue
        ctx.log(f"[{training}] scoring {test.name} from {Path(request.predictions).name} ({len(scored)} "
                f"{'frames' if per_frame else 'videos'})")
        ctx.score(test.name, training, scored, scores, levels=levels)
    return _finish(ctx, resolver, started)


def evaluate(request: EvalRequest, *, failures: FailureLog | None = None) -> pd.DataFrame:
    """``dfbench eval``: a checkpoint or a predictions file, not both."""
    if bool(request.checkpoints) == (request.predictions is not None):
        raise ConfigError("dfbench eval takes either --checkpoint PATH or --predictions FILE (one of them).")
    if request.predictions is not None:
        if request.detector:
            raise ConfigError("--detector goes with --checkpoint; predictions are filed under --name.")
        return evaluate_predictions(request, failures=failures)
    return evaluate_checkpoint(request, failures=failures)

