"""The results store: one directory per run, long-form rows, per-frame predictions.

Layout (see docs/results.md)::

    <root>/<protocol>/<detector>/<backbone>/<preset>/seed<k>/
        run.json                 run metadata (resolved protocol, config, environment, status)
        rows.parquet             scored metrics, one row per metric (RESULT_COLUMNS)
        predictions.parquet      one row per scored frame
        cells/<sha1>.parquet     rows of one finished evaluation cell (resume unit)
        cells/<sha1>.pred.parquet  that cell's predictions
        cells/<sha1>.done.json   written last: the cell is complete

Every file is written to a temporary name in the same directory and renamed into place, so a
reader never sees half a file and an interrupted run leaves only ignorable ``*.tmp`` files.
``read_all`` concatenates every run's rows and skips (with a warning naming it) any file that
cannot be read, so one damaged run never hides the others.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dfbench.benchmark.errors import DfbenchError

RESULT_COLUMNS: tuple[str, ...] = (
    "protocol",
    "protocol_version",
    "detector",
    "variant",
    "backbone",
    "preset",
    "seed",
    "training",
    "train_data",
    "train_quality",
    # the selection as fields (rows written before these columns read them as "")
    "train_dataset",
    "train_methods",
    "train_qualities",
    "test",
    "test_data",
    "test_quality",
    "test_dataset",
    "test_methods",
    "test_qualities",
    # "" for a measured row; for a derived column (a protocol's ``averages:``, computed when
    # results are read, never stored) the tests whose values it averages, joined by "; "
    "derived_from",
    "perturbation",
    "strength",
    "metric",
    "level",
    "value",
    "ci_low",
    "ci_high",
    "n_real",
    "n_fake",
    "fp",
    "fn",
    "n_failed",
    "data_kind",
    "config_hash",
    "pretrained",
    "weights_sha256",
    "data_fingerprint",
    "device",
    "versions",
    "git_hash",
    "wall_time_s",
    "run_id",
    "timestamp",
    # where the scores came from (see docs/your_detector.md): a plug-in detector's code
    # (spec resolved + sha256 of its file; "" for a built-in detector), and for
    # `dfbench eval` rows, the checkpoint or predictions file they were scored from
    "detector_source",
    "detector_sha256",
    "trained_here",
    "checkpoint_sha256",
    "predictions_sha256",
)

# Columns a row cannot do without: they say what was measured.
REQUIRED_COLUMNS: tuple[str, ...] = ("protocol", "detector", "test", "metric", "value")

FLOAT_COLUMNS: tuple[str, ...] = ("strength", "value", "ci_low", "ci_high", "wall_time_s")
COUNT_COLUMNS: tuple[str, ...] = ("seed", "n_real", "n_fake", "fp", "fn", "n_failed")
# pretrained: did the backbone start from a weight file (ImageNet or --weights); NA = not recorded
# trained_here: False for rows `dfbench eval` scored from a checkpoint or predictions file; NA =
# written before the column existed (then the run trained the model)
BOOL_COLUMNS: tuple[str, ...] = ("pretrained", "trained_here")
STRING_COLUMNS: tuple[str, ...] = tuple(c for c in RESULT_COLUMNS if c not in FLOAT_COLUMNS + COUNT_COLUMNS + BOOL_COLUMNS)

PREDICTION_COLUMNS: tuple[str, ...] = ("test", "training", "variant", "video_id", "frame", "label", "score")

# One summary row per distinct measurement. train_/test_ data and quality are fixed by the
# training and test cell names; they are kept so the summary can still be mapped to the papers'
# vocabulary. preset, data_kind and protocol_version are part of
# the key: averaging a mini run with a paper run, synthetic with real data, or two versions of a
# protocol (whose meaning differs by definition) would produce a number nobody measured.
SUMMARY_KEYS: tuple[str, ...] = (
    "protocol",
    "protocol_version",
    "data_kind",
    "detector",
    "variant",
    "backbone",
    "preset",
    "training",
    "train_data",
    "train_quality",
    "test",
    "test_data",
    "test_quality",
    "derived_from",
    "perturbation",
    "strength",
    "metric",
    "level",
)

DATA_KINDS: tuple[str, ...] = ("synthetic-mini", "real")
RUN_STATUSES: tuple[str, ...] = ("complete", "partial")

ROWS_FILE = "rows.parquet"
PREDICTIONS_FILE = "predictions.parquet"
RUN_META_FILE = "run.json"
CELLS_DIR = "cells"
CELL_ROWS_SUFFIX = ".parquet"
CELL_PRED_SUFFIX = ".pred.parquet"
CELL_DONE_SUFFIX = ".done.json"
TMP_SUFFIX = ".tmp"


class ResultsError(DfbenchError):
    """The results store cannot be written or a results file cannot be used."""


class ResultsWarning(UserWarning):
    """A results file was skipped because it is unreadable or incomplete."""


# --------------------------------------------------------------------------- atomic writes
def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a same-directory temp file, fsync and rename.

    The rename is atomic on POSIX and Windows, so ``path`` holds either the old content or
    the whole new content. dfbench's one atomic-write helper: results, run.json, fit.json,
    bleach.json and checkpoints all go through it. A full disk or a folder that cannot be
    written is a user-facing condition: one ``ResultsError`` sentence naming the folder, and
    no temp file is left behind.
    """
    path = Path(path)
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; the file gets the mode open() would give it (0644 under umask 022)
        os.chmod(tmp_name, new_file_mode())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        raise write_error(path.parent, exc) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def new_file_mode() -> int:
    """0o666 less the process umask: the mode ``open(path, "w")`` gives a new file.

    Read from /proc on Linux, because ``os.umask`` can only be read by setting it, which
    would race with other threads creating files; elsewhere it is set and restored.
    """
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("Umask:"))
        return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection");
# tab and carriage return are on the list for the same reason (OWASP).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def neutralize_csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; others as given.

    Only strings are touched: a number (``-0.5`` in a float column) is data, not a formula,
    and is written as the number it is.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV (no index) with every text cell passed through ``neutralize_csv_cell``."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralize_csv_cell)
    return safe.to_csv(index=False).encode("utf-8")


def atomic_write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON through ``atomic_write_bytes`` (paths, NumPy values, tuples ok)."""
    payload = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True)
    atomic_write_bytes(path, (payload + "\n").encode("utf-8"))


# errno values that mean "this folder cannot take the write", with what to do about it
_WRITE_ERRORS = {
    errno.ENOSPC: "no space is left on its file system; free disk space and re-run (finished work is kept)",
    errno.EDQUOT: "the disk quota is exceeded; free space and re-run (finished work is kept)",
    errno.EROFS: "it is on a read-only file system; choose a writable folder",
    errno.EACCES: "permission is denied; choose a writable folder",
    errno.EPERM: "the operation is not permitted; choose a writable folder",
}


WRITE_ERRNOS = frozenset(_WRITE_ERRORS)


def write_error(folder: Path, exc: OSError) -> DfbenchError:
    """One sentence for a failed write into ``folder`` (full, read-only, not permitted)."""
    why = _WRITE_ERRORS.get(exc.errno or -1, exc.strerror or str(exc))
    return ResultsError(f"Cannot write to {folder}: {why}.")


def ensure_writable(folder: Path, what: str) -> None:
    """Fail fast, before any work, when ``folder`` (created if missing) cannot be written.

    ``what`` names the setting that chose the folder (e.g. "--results", "DFBENCH_HOME"), so
    the one-line error says which option to change. A probe file is written and removed.
    """
    folder = Path(folder)
    tmp_name: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".dfbench-probe.", suffix=TMP_SUFFIX)
        os.close(fd)
    except OSError as exc:
        raise ResultsError(f"{what} folder {folder} cannot be written: {_WRITE_ERRORS.get(exc.errno or -1, exc.strerror or str(exc))}.") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _parquet_bytes(df: pd.DataFrame, metadata: Mapping[str, str] | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _json_default(value: Any) -> Any:
    """JSON for the objects run metadata naturally contains (paths, NumPy scalars, dataclasses)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in run.json")


# --------------------------------------------------------------------------- schema
def safe_component(name: object) -> str:
    """A directory name for ``name`` that cannot escape the results root.

    Backbone names such as ``hf-hub:timm/x`` contain separators; names are kept readable but
    every character outside [A-Za-z0-9._+-] becomes ``_``, and dot-only names are prefixed.
    """
    text = re.sub(r"[^A-Za-z0-9._+-]", "_", str(name)) or "_"
    return f"_{text}" if set(text) == {"."} else text


def normalize_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with RESULT_COLUMNS first, in order, with stable dtypes.

    Missing optional columns are filled ("" for text, NA for numbers); a missing required
    column is a bug in the caller (not a user mistake) and raises ValueError. Extra columns a
    procedure adds (e.g. ``n_failed``) are kept after the fixed ones, never silently dropped.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"results rows lack required columns {missing}")
    extras = [c for c in rows.columns if c not in RESULT_COLUMNS]
    out = rows.reindex(columns=[*RESULT_COLUMNS, *extras]).reset_index(drop=True)
    for column in FLOAT_COLUMNS:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in COUNT_COLUMNS:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("Int64")
    for column in BOOL_COLUMNS:
        out[column] = out[column].map(_as_bool).astype("boolean")
    for column in STRING_COLUMNS:
        # "" means "not applicable" (no variant, no perturbation); NA would split groupbys.
        out[column] = out[column].map(_as_text).astype("object")
    return out


def _as_bool(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return pd.NA
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def empty_results() -> pd.DataFrame:
    return normalize_rows(pd.DataFrame({c: [] for c in RESULT_COLUMNS}))


def cell_id(key: str | Mapping[str, Any]) -> str:
    """sha1 of the cell key (a string, or a mapping serialised with sorted keys)."""
    text = key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _key_text(key: str | Mapping[str, Any]) -> str:
    return key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)


# --------------------------------------------------------------------------- the store
class ResultsStore:
    """Run directories under ``root``; see the module docstring for the layout."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ---------------------------------------------------------------- paths
    def run_dir(self, protocol: str, detector: str, backbone: str, preset: str, seed: int) -> Path:
        """``<root>/<protocol>/<detector>/<backbone>/<preset>/seed<k>`` with safe components."""
        parts = [safe_component(p) for p in (protocol, detector, backbone, preset)]
        return self.root.joinpath(*parts, f"seed{int(seed)}")

    def run_dirs(self) -> list[Path]:
        """Every run directory under the root (those holding run.json, rows or cells)."""
        if not self.root.is_dir():
            return []
        found: set[Path] = set()
        for pattern in (RUN_META_FILE, ROWS_FILE, f"{CELLS_DIR}/*{CELL_ROWS_SUFFIX}"):
            for path in self.root.glob(f"*/*/*/*/seed*/{pattern}"):
                found.add(path.parent.parent if path.parent.name == CELLS_DIR else path.parent)
        return sorted(found)

    # ---------------------------------------------------------------- run-level files
    def write_rows(self, run_dir: Path | str, rows: pd.DataFrame) -> Path:
        """Append ``rows`` to the run's rows.parquet (read, concatenate, atomic replace)."""
        path = Path(run_dir) / ROWS_FILE
        new = normalize_rows(rows)
        if path.exists():
            old = self._read_parquet(path, on_error="raise")
            new = pd.concat([normalize_rows(old), new], ignore_index=True)
        atomic_write_bytes(path, _parquet_bytes(new))
        return path

    def write_run_meta(self, run_dir: Path | str, meta: Mapping[str, Any]) -> Path:
        """Write run.json (atomically). ``status`` must be "complete" or "partial" when given."""
        status = meta.get("status")
        if status is not None and status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {status!r}")
        kind = meta.get("data_kind")
        if kind is not None and kind not in DATA_KINDS:
            raise ValueError(f"data_kind must be one of {DATA_KINDS}, got {kind!r}")
        payload = json.dumps(dict(meta), indent=2, sort_keys=True, default=_json_default, allow_nan=True)
        path = Path(run_dir) / RUN_META_FILE
        atomic_write_bytes(path, (payload + "\n").encode("utf-8"))
        return path

    def read_run_meta(self, run_dir: Path | str) -> dict[str, Any] | None:
        """run.json as a dict; None (with a warning) when absent or unreadable."""
        path = Path(run_dir) / RUN_META_FILE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping unreadable run metadata {path}: {exc}", ResultsWarning, stacklevel=2)
            return None

    def write_predictions(self, run_dir: Path | str, df: pd.DataFrame) -> Path:
        """Write predictions.parquet (one row per frame) atomically, replacing any previous file."""
        path = Path(run_dir) / PREDICTIONS_FILE
        atomic_write_bytes(path, _parquet_bytes(_check_predictions(df)))
        return path

    # ---------------------------------------------------------------- cells (resume unit)
    def _cell_paths(self, run_dir: Path | str, key: str | Mapping[str, Any]) -> tuple[Path, Path, Path]:
        base = Path(run_dir) / CELLS_DIR / cell_id(key)
        return (
            base.with_name(base.name + CELL_ROWS_SUFFIX),
            base.with_name(base.name + CELL_PRED_SUFFIX),
            base.with_name(base.name + CELL_DONE_SUFFIX),
        )

    def cell_done(self, run_dir: Path | str, key: str | Mapping[str, Any]) -> bool:
        """True when the cell's done marker names this key and its rows file exists.

        The marker is written after both data files, so any interruption before it (a crash,
        a full disk, a leftover temp file) leaves the cell "not done" and it is recomputed.
        """
        rows_path, pred_path, done_path = self._cell_paths(run_dir, key)
        if not (done_path.is_file() and rows_path.is_file()):
            return False
        try:
            marker = json.loads(done_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return marker.get("key") == _key_text(key) and (pred_path.is_file() or not marker.get("predictions"))

    def mark_cell_done(
        self,
        run_dir: Path | str,
        key: str | Mapping[str, Any],
        rows_df: pd.DataFrame,
        predictions_df: pd.DataFrame | None = None,
    ) -> Path:
        """Store one finished cell: predictions, then rows, then the done marker (each atomic).

        Re-marking a cell replaces its files, so a re-run of a cell never duplicates rows.
        """
        rows_path, pred_path, done_path = self._cell_paths(run_dir, key)
        # Remove a stale marker first: while the new files are written the cell is "not done".
        with contextlib.suppress(OSError):
            done_path.unlink()
        text = _key_text(key)
        has_predictions = predictions_df is not None
        if has_predictions:
            atomic_write_bytes(
                pred_path, _parquet_bytes(_check_predictions(predictions_df), {"dfbench_cell_key": text})
            )
        atomic_write_bytes(rows_path, _parquet_bytes(normalize_rows(rows_df), {"dfbench_cell_key": text}))
        marker = {
            "key": text,
            "rows": rows_path.name,
            "predictions": pred_path.name if has_predictions else None,
        }
        atomic_write_bytes(done_path, (json.dumps(marker, sort_keys=True) + "\n").encode("utf-8"))
        return rows_path

    # ---------------------------------------------------------------- reading
    @staticmethod
    def _read_parquet(path: Path, on_error: str = "warn") -> pd.DataFrame | None:
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
            if on_error == "raise":
                raise ResultsError(
                    f"Cannot read results file {path} ({exc}); move it aside or delete it and re-run."
                ) from exc
            warnings.warn(f"skipping unreadable results file {path}: {exc}", ResultsWarning, stacklevel=3)
            return None

    def _run_frames(self, run_dir: Path) -> list[pd.DataFrame]:
        frames: list[pd.DataFrame] = []
        rows_path = run_dir / ROWS_FILE
        if rows_path.is_file():
            df = self._read_parquet(rows_path)
            if df is not None:
                frames.append(df)
        cells = run_dir / CELLS_DIR
        if cells.is_dir():
            for rows_path in sorted(cells.glob(f"*{CELL_ROWS_SUFFIX}")):
                if rows_path.name.endswith(CELL_PRED_SUFFIX):
                    continue
                done = rows_path.with_name(rows_path.name[: -len(CELL_ROWS_SUFFIX)] + CELL_DONE_SUFFIX)
                if not done.is_file():
                    warnings.warn(
                        f"skipping incomplete cell {rows_path} (no done marker); re-run to complete it",
                        ResultsWarning,
                        stacklevel=3,
                    )
                    continue
                df = self._read_parquet(rows_path)
                if df is not None:
                    frames.append(df)
        return frames

    def read_run(self, run_dir: Path | str) -> pd.DataFrame:
        """One run's rows (its rows.parquet and finished cells), skipping unreadable files."""
        frames = []
        for df in self._run_frames(Path(run_dir)):
            try:
                frames.append(normalize_rows(df))
            except ValueError as exc:
                warnings.warn(
                    f"skipping results in {run_dir} with a foreign schema: {exc}",
                    ResultsWarning,
                    stacklevel=2,
                )
        return pd.concat(frames, ignore_index=True) if frames else empty_results()

    def read_all(self) -> pd.DataFrame:
        """Every stored row (run-level rows files and finished cells), RESULT_COLUMNS schema.

        Unreadable or schema-less files are skipped with a ResultsWarning naming them. The same
        measurement from the same run stored twice (rows.parquet and a cell) is kept once.
        """
        frames = [rows for run_dir in self.run_dirs() if not (rows := self.read_run(run_dir)).empty]
        if not frames:
            return empty_results()
        out = pd.concat(frames, ignore_index=True)
        identity = ["run_id", "seed", *[k for k in SUMMARY_KEYS if k != "protocol_version"]]
        return out.drop_duplicates(subset=identity, keep="last").reset_index(drop=True)

    def read_predictions(self, run_dir: Path | str) -> pd.DataFrame:
        """A run's predictions: predictions.parquet plus every finished cell's predictions."""
        run_dir = Path(run_dir)
        frames: list[pd.DataFrame] = []
        path = run_dir / PREDICTIONS_FILE
        if path.is_file():
            df = self._read_parquet(path)
            if df is not None:
                frames.append(df)
        cells = run_dir / CELLS_DIR
        if cells.is_dir():
            for pred in sorted(cells.glob(f"*{CELL_PRED_SUFFIX}")):
                if pred.with_name(pred.name[: -len(CELL_PRED_SUFFIX)] + CELL_DONE_SUFFIX).is_file():
                    df = self._read_parquet(pred)
                    if df is not None:
                        frames.append(df)
        if not frames:
            return pd.DataFrame({c: [] for c in PREDICTION_COLUMNS})
        return pd.concat(frames, ignore_index=True)


def _check_predictions(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"predictions lack columns {missing}")
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------- table order
@functools.cache  # loading a protocol parses every shipped YAML; tables ask once per table
def protocol_axes(protocol: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The protocol's training and test names in the order its YAML lists them.

    The papers print raw, c23, c40 in that order; the store returns rows in file order, so
    every table sorts its rows and columns by this. A protocol that cannot be loaded (a YAML
    path since moved, an old name) has no order: ``((), ())``.
    """
    from dfbench.benchmark.protocol import load_protocol  # protocol imports datasets; keep this module light

    try:
        spec = load_protocol(protocol)
    except (DfbenchError, OSError):
        return (), ()
    # derived columns (averages) follow the tests, in the order the YAML declares them
    return tuple(t.name for t in spec.trainings), (*(t.name for t in spec.tests), *(a.name for a in spec.averages))


@functools.cache
def protocol_averages(protocol: str) -> tuple[Any, ...]:
    """The shipped protocol's derived columns (``AverageSpec``); none for a protocol that
    cannot be loaded."""
    from dfbench.benchmark.protocol import load_protocol

    try:
        return load_protocol(protocol).averages
    except (DfbenchError, OSError):
        return ()


def in_order(values: Any, order: tuple[str, ...]) -> list[Any]:
    """The distinct ``values``: those named in ``order`` first, in that order, then the rest as first seen."""
    distinct = list(dict.fromkeys(values))
    rank = {name: i for i, name in enumerate(order)}
    return sorted(distinct, key=lambda v: (rank.get(str(v), len(rank)), distinct.index(v)))


# --------------------------------------------------------------------------- summary
def _sample_std(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for one seed) and number of seeds per measurement.

    Grouped by SUMMARY_KEYS. ``ci_low``/``ci_high`` are the means of the per-seed bootstrap
    interval bounds (for one seed: that seed's interval). NaN values (an undefined metric) are
    left out of the mean; ``n`` counts the seeds with a defined value.
    """
    rows = empty_results() if df.empty else normalize_rows(df)
    if rows.empty:
        return pd.DataFrame(columns=[*SUMMARY_KEYS, "mean", "std", "n", "ci_low", "ci_high", "seeds", "n_failed"])
    agg: dict[str, tuple[str, str | Callable[[pd.Series], Any]]] = {
        "mean": ("value", "mean"),
        "std": ("value", _sample_std),
        "n": ("value", "count"),
        "ci_low": ("ci_low", "mean"),
        "ci_high": ("ci_high", "mean"),
        "seeds": ("seed", lambda s: ",".join(str(int(v)) for v in sorted(s.dropna().unique()))),
        # videos counted at score 0.5 because they yielded no frames: the most any seed had
        "n_failed": ("n_failed", "max"),
    }
    grouped = rows.groupby(list(SUMMARY_KEYS), dropna=False, sort=False)
    out = grouped.agg(**agg).reset_index()  # type: ignore[call-overload]
    out["n"] = out["n"].astype(int)
    out["n_failed"] = out["n_failed"].fillna(0).astype(int)
    return out


# --------------------------------------------------------------------------- derived columns
# What identifies one averaged value: every measured row it averages shares these (and the
# training, unless the average spans trainings). Seeds are never pooled: the mean is taken
# per seed, so mean ± std over seeds reads like any measured cell.
AVERAGE_KEYS: tuple[str, ...] = (
    "protocol", "protocol_version", "data_kind", "detector", "variant", "backbone", "preset", "seed",
    "metric", "level", "perturbation", "strength",
)
# Test names may hold "+" and ","; derived_from joins them with this.
DERIVED_SEPARATOR = "; "
# Selection fields a derived row states as the "+"-joined distinct values of its parts.
_JOINED = ("training", "train_data", "train_quality", "train_dataset", "train_methods", "train_qualities",
           "test_quality", "test_dataset", "test_methods", "test_qualities")


def average_rows(rows: pd.DataFrame, averages: Mapping[str, tuple[Any, ...]] | None = None) -> pd.DataFrame:
    """The rows of every derived column the rows' protocols declare (``averages:``).

    A shipped protocol's averages are looked up by the rows' protocol name; ``averages``
    ({protocol name: its ``ProtocolSpec.averages``}) supplies those of a protocol given as a
    YAML path (rows carry only its name), as ``dfbench run`` / ``eval`` do for their spec.

    For each average, each group of measured rows sharing AVERAGE_KEYS (and the training,
    unless ``across_trainings``) that holds exactly one row per named test gives one row: the
    plain mean of their values (NaN when any is undefined: never a mean of fewer columns),
    ``test`` = the average's name, ``test_data`` = "mean of …" and ``derived_from`` = the tests.
    A group lacking a test (an optional test set not scored, a seed still running) or holding
    one twice gives none. Counts and bootstrap bounds do not average and are left empty.
    """
    rows = empty_results() if rows.empty else normalize_rows(rows)
    measured = rows[rows["derived_from"] == ""]
    out: list[dict[str, Any]] = []
    given = dict(averages or {})
    for protocol, part in measured.groupby("protocol", sort=False):
        declared = given[str(protocol)] if str(protocol) in given else protocol_averages(str(protocol))
        for average in declared:
            mine = part[part["test"].isin(average.tests)]
            if average.trainings is not None:
                mine = mine[mine["training"].isin(average.trainings)]
            keys = list(AVERAGE_KEYS) if average.across_trainings else [*AVERAGE_KEYS, "training"]
            for _, group in mine.groupby(keys, dropna=False, sort=False):
                if sorted(group["test"]) != sorted(average.tests):
                    continue
                first = group.iloc[0]
                row: dict[str, Any] = {k: first[k] for k in AVERAGE_KEYS}
                row.update({k: "+".join(dict.fromkeys(str(v) for v in group[k] if str(v))) for k in _JOINED})
                row.update(
                    test=average.name,
                    test_data=average.describe(),
                    derived_from=DERIVED_SEPARATOR.join(average.tests),
                    value=float(group["value"].mean(skipna=False)),
                    n_failed=int(group["n_failed"].fillna(0).sum()),
                    run_id="+".join(dict.fromkeys(str(v) for v in group["run_id"] if str(v))),
                )
                out.append(row)
    return normalize_rows(pd.DataFrame(out)) if out else empty_results()


def with_averages(rows: pd.DataFrame, averages: Mapping[str, tuple[Any, ...]] | None = None) -> pd.DataFrame:
    """The measured rows followed by their protocols' derived (averaged) rows (``average_rows``)."""
    rows = empty_results() if rows.empty else normalize_rows(rows)
    derived = average_rows(rows, averages)
    return rows if derived.empty else normalize_rows(pd.concat([rows, derived], ignore_index=True))
