"""``dfbench score``: P(fake) of a trained detector for videos outside any dataset.

Faces are found and cropped by the preprocessing driver itself (``ensure_crops``: the same
frame sampler, MTCNN settings, detection size, margin and crop routine as a protocol run,
and the same crop cache), with the crop size the checkpoint's detector trained on. A video
outside a dataset has no real counterpart to borrow boxes from, so each video is its own
reference (``CropParams.detect_on_fake``): the boxes come from its own frames. A sampled
frame without a face takes the nearest frame's box, as in preprocessing, and is marked.

Scores: ``Detector.predict`` per frame, and per video the mean over its frames
(``metrics.video_level``, the video score of every protocol). A video with no face in any
sampled frame, or that cannot be decoded, gets no score: it is reported with the reason and
counted, never dropped.

The checkpoint is dfbench's inference checkpoint (``Detector.save``, ``model.pt`` in a run's
``models/<training>/`` folder), read with ``weights_only=True``; it names the registered
detector and holds its whole config (backbone, input size, normalisation), which is all
that is needed to rebuild the network.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.results import atomic_write_bytes, atomic_write_json, csv_bytes

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
DEFAULT_FRAMES = 32  # preprocessing's default frames per video (``CropParams.frames``)
# statuses of a scored video
OK, NO_FACE, UNREADABLE = "ok", "no face", "unreadable"
CHECKPOINT_KEYS = ("detector", "config", "state")


@dataclass
class VideoScore:
    """One input video: its P(fake) (NaN when it failed) and the per-frame scores."""

    path: Path
    name: str  # shown in the table: the path relative to the folder given (or the file name)
    status: str = OK
    reason: str = ""
    p_fake: float = math.nan
    frames: list[int] = field(default_factory=list)  # frame indices in the video
    frame_p_fake: list[float] = field(default_factory=list)
    face_found: list[bool] = field(default_factory=list)  # False: the frame borrowed a neighbour's box

    @property
    def failed(self) -> bool:
        return self.status != OK


@dataclass
class ScoreResult:
    checkpoint: Path
    detector: str
    backbone: str
    input_size: int
    frames: int
    videos: list[VideoScore]

    @property
    def failed(self) -> list[VideoScore]:
        return [v for v in self.videos if v.failed]


# ---------------------------------------------------------------------------- checkpoint
def load_checkpoint_detector(path: str | Path, device: str = "cpu", *, name: str | None = None) -> Any:
    """The detector a dfbench inference checkpoint describes, with its weights loaded
    (``torch.load(weights_only=True)``); ``name`` overrides the detector name it stores (a
    plug-in given as ``file.py:Class``). Used by ``dfbench score`` and ``dfbench eval``.

    Raises ConfigError (one sentence) for a missing file, a file that is not a dfbench
    checkpoint, a training-state checkpoint, a checkpoint without the detector name and
    config, or a detector name this installation does not register."""
    from dfbench.detectors.base import create_detector, read_checkpoint

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"--checkpoint {path}: the file does not exist.")
    blob = read_checkpoint(path)
    if "next_epoch" in blob and "state" not in blob:
        raise ConfigError(
            f"Checkpoint {path} is a training state (train_state.pt) of an unfinished fit; score the finished "
            f"model: models/<training>/model.pt in the run folder."
        )
    missing = [k for k in CHECKPOINT_KEYS if k not in blob]
    if missing or not isinstance(blob.get("config"), dict):
        raise ConfigError(
            f"Checkpoint {path} does not say which detector and config built it (missing {', '.join(missing) or 'config'}); "
            f"dfbench scores only checkpoints written by Detector.save (a run's models/<training>/model.pt)."
        )
    name = name or str(blob["detector"])
    try:  # the stored config holds every field: the preset only fills what it leaves out (nothing)
        detector = create_detector(name, **blob["config"])
    except ConfigError as exc:
        raise ConfigError(f"Checkpoint {path} was built by detector {name!r}, which cannot be rebuilt here: {exc}") from None
    return detector.to(device).load(path)


# ---------------------------------------------------------------------------- inputs
def find_videos(target: str | Path) -> list[tuple[Path, str]]:
    """(path, display name) of every video to score: ``target`` itself when it is a file,
    else every file under the folder (recursively) with a video suffix, in path order."""
    target = Path(target).expanduser()
    if target.is_file():
        return [(target, target.name)]
    if not target.is_dir():
        raise ConfigError(f"{target}: no such file or folder.")
    found = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not found:
        raise ConfigError(f"{target} holds no video files ({', '.join(VIDEO_SUFFIXES)}).")
    return [(p, p.relative_to(target).as_posix()) for p in found]


def _video_id(path: Path) -> str:
    # ``<dataset>/<method>/<quality>/<name>``: the preprocessing driver takes the part after the
    # third slash as the video's name, so the whole absolute path is the (unique) name
    return f"score/input/-/{path.resolve()}"


def _index(videos: Sequence[tuple[Path, str]]) -> pd.DataFrame:
    """The preprocessing driver's index schema for loose videos (label unknown: 0, unused
    since every video is its own reference)."""
    return pd.DataFrame({
        "dataset": "score", "method": "input", "quality": "-", "label": 0, "target_id": "",
        "video_id": [_video_id(p) for p, _ in videos], "path": [str(p) for p, _ in videos],
    })


# ---------------------------------------------------------------------------- scoring
def score_videos(
    target: str | Path,
    checkpoint: str | Path,
    *,
    frames: int = DEFAULT_FRAMES,
    device: str = "cpu",
    cache_root: Path | None = None,
    progress: bool = True,
) -> ScoreResult:
    """Score every video of ``target`` (a file or a folder) with ``checkpoint``."""
    from dfbench.benchmark.metrics import video_level
    from dfbench.benchmark.preprocess.cache import CropCache, CropParams
    from dfbench.benchmark.preprocess.pipeline import NO_FACE as NO_FACE_REASON
    from dfbench.benchmark.preprocess.pipeline import ensure_crops
    from dfbench.benchmark.results import ensure_writable
    from dfbench.benchmark.settings import get_settings

    if frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {frames}.")
    videos = find_videos(target)
    detector = load_checkpoint_detector(checkpoint, device)
    config = detector.get_config()
    cache = CropCache(cache_root or get_settings().cache)
    ensure_writable(cache.root, "The crop-cache (DFBENCH_CACHE, default $DFBENCH_HOME/cache)")
    params = CropParams(frames=frames, size=config.input_size, detect_on_fake=True)
    index = _index(videos)
    # MTCNN runs on CUDA or CPU (as in `dfbench preprocess`); the detector may be on mps
    face_device = device if device.startswith("cuda") else "cpu"
    logger.info("scoring %d video(s) with %s (%s, %d px crops, %d frames each)",
                len(videos), detector.name, config.backbone, config.input_size, frames)
    # not kept in memory: a folder of long videos would not fit; each video's crops are read
    # back from the cache when it is scored (the checksum is verified on read)
    report, _ = ensure_crops(
        index, cache=cache, params=params, real_methods=(), qualities=(), progress=progress,
        device=face_device, keep=False, frames_are_crops=False,
    )
    out = []
    for (path, name), vid in zip(videos, index["video_id"]):
        item = VideoScore(path=path, name=name)
        if vid in report.failed:
            reason = report.failed[vid]
            if reason.startswith(NO_FACE_REASON):
                item.status, item.reason = NO_FACE, "MTCNN found no face in any sampled frame"
            else:
                # the video is its own reference: the driver's "reference video … is unusable" says it twice
                item.status = UNREADABLE
                item.reason = reason.removeprefix(f"reference video {vid} is unusable: ")
        else:
            entry = cache.get("crops", report.keys[vid], ("crops", "frame_indices", "face_found"))
            if entry is None or "crops" not in entry:  # deleted or damaged since it was written
                item.status, item.reason = UNREADABLE, "its face crops vanished from the crop cache while scoring; re-run"
                out.append(item)
                continue
            scores = detector.predict(entry["crops"])
            item.frames = [int(i) for i in entry["frame_indices"]]
            item.frame_p_fake = [float(s) for s in scores]
            item.face_found = [bool(f) for f in entry["face_found"]]
            meta = pd.DataFrame({"video_id": [vid] * len(scores), "label": 0})
            item.p_fake = float(video_level(meta, scores)["score"].iloc[0])
        out.append(item)
    return ScoreResult(
        checkpoint=Path(checkpoint), detector=detector.name, backbone=config.backbone,
        input_size=config.input_size, frames=frames, videos=out,
    )


# ---------------------------------------------------------------------------- output
def render_table(result: ScoreResult) -> Any:
    """A rich table: one row per video (P(fake), frames, faces found, frame range)."""
    from rich.table import Table

    table = Table(title=f"P(fake) by {result.detector} ({result.backbone}, {result.input_size} px crops)",
                  title_justify="left")
    table.add_column("video", overflow="fold")
    table.add_column("P(fake)", justify="right")
    table.add_column("frames", justify="right")
    table.add_column("with face", justify="right")
    table.add_column("frame P(fake) min-max", justify="right")
    table.add_column("status")
    for v in result.videos:
        if v.failed:
            table.add_row(v.name, "-", "-", "-", "-", f"[red]{v.status}[/red]")
            continue
        scores = np.asarray(v.frame_p_fake)
        table.add_row(
            v.name, f"{v.p_fake:.4f}", str(len(v.frames)), str(int(np.sum(v.face_found))),
            f"{scores.min():.3f}-{scores.max():.3f}", "ok",
        )
    return table


def failure_lines(result: ScoreResult) -> list[str]:
    """One line per video that got no score, and a count."""
    lines = [f"{v.status.upper()}: {v.path}: {v.reason}" for v in result.failed]
    scored = len(result.videos) - len(result.failed)
    lines.append(f"{scored} of {len(result.videos)} video(s) scored; {len(result.failed)} without a score.")
    return lines


def result_rows(result: ScoreResult) -> pd.DataFrame:
    """Long form: one ``level="video"`` row per video (failed ones with their reason), then
    one ``level="frame"`` row per scored frame."""
    rows: list[dict[str, Any]] = []
    for v in result.videos:
        rows.append({"video": str(v.path), "level": "video", "frame": None, "p_fake": v.p_fake,
                     "face_found": None, "n_frames": len(v.frames), "status": v.status, "reason": v.reason})
    for v in result.videos:
        for frame, score, face in zip(v.frames, v.frame_p_fake, v.face_found):
            rows.append({"video": str(v.path), "level": "frame", "frame": frame, "p_fake": score,
                         "face_found": face, "n_frames": None, "status": v.status, "reason": ""})
    df = pd.DataFrame(rows, columns=["video", "level", "frame", "p_fake", "face_found", "n_frames", "status", "reason"])
    return df.astype({"frame": "Int64", "n_frames": "Int64"})  # integers, empty where they do not apply


def write_result(result: ScoreResult, out: str | Path) -> Path:
    """``out`` as CSV (long form, formula-like cells neutralised) or JSON (per video, with
    its frames), chosen by the suffix."""
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic_write_bytes(out, csv_bytes(result_rows(result)))
    elif suffix == ".json":
        atomic_write_json(out, {
            "checkpoint": str(result.checkpoint), "detector": result.detector, "backbone": result.backbone,
            "input_size": result.input_size, "frames_per_video": result.frames,
            "n_videos": len(result.videos), "n_failed": len(result.failed),
            "videos": [{
                "video": str(v.path), "status": v.status, "reason": v.reason,
                "p_fake": None if v.failed else v.p_fake,
                "frames": [{"frame": f, "p_fake": s, "face_found": ff}
                           for f, s, ff in zip(v.frames, v.frame_p_fake, v.face_found)],
            } for v in result.videos],
        })
    else:
        raise ConfigError(f"--out {out}: the file name must end in .csv or .json.")
    return out
