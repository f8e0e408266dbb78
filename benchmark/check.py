"""Regression check: today's AUCs against the reference AUCs stored for CI.

``results/reference/mini.json`` holds one entry per reference cell (protocol, detector,
backbone, preset, seed, training, test, variant, perturbation, strength, level, metric) with
the value a trusted run produced, and the absolute tolerance the check allows::

    {"tolerance": 0.02, "cells": [{"protocol": "cross_quality", ..., "value": 0.8312}, ...]}

``check_against_reference`` compares the mean of the matching result rows per cell (several
rows for one cell happen when a run was repeated) and reports drifted cells with the expected
and observed value, and reference cells the results do not contain at all. The CLI exits
non-zero naming each of them.

One file holds the references of every study (CI's cross_quality/erm seed-0 run and the
recipes' ≥3-seed mini studies alike). ``only`` narrows a check to the cells of one run —
``dfbench check --protocol P --detector D --seeds 3`` compares just P/D at seeds 0-2 — and
narrows ``write_reference`` to replacing those cells while keeping the rest of the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.results import atomic_write_bytes, normalize_rows

DEFAULT_TOLERANCE = 0.02
REFERENCE_METRICS: tuple[str, ...] = ("auc",)
CELL_KEYS: tuple[str, ...] = (
    "protocol",
    "detector",
    "backbone",
    "preset",
    "seed",
    "training",
    "test",
    "variant",
    "perturbation",
    "strength",
    "level",
    "metric",
)


class ReferenceFileError(DfbenchError):
    """The reference file cannot be read or does not have the expected shape."""


def _norm_key_value(name: str, value: Any) -> Any:
    """Canonical form of one key field so JSON values and DataFrame values compare equal.

    Missing values (None, NaN, "") all mean "not applicable"; seeds are ints and strengths
    floats, because JSON has no int/float distinction worth trusting.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if name == "seed":
        return int(value)
    if name == "strength":
        return float(value)
    text = str(value)
    return text if text else None


RUN_KEYS: tuple[str, ...] = ("protocol", "detector", "backbone", "preset", "seed")


def cell_key(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(_norm_key_value(k, cell.get(k)) for k in CELL_KEYS)


def _run_key(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(_norm_key_value(k, cell.get(k)) for k in RUN_KEYS)


def describe_cell(cell: Mapping[str, Any]) -> str:
    """A one-line name of a cell: the fields that are set, in CELL_KEYS order."""
    parts = []
    for name in CELL_KEYS:
        value = _norm_key_value(name, cell.get(name))
        if value is not None:
            parts.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return " ".join(parts)


@dataclass(frozen=True)
class DriftedCell:
    cell: dict[str, Any]
    expected: float
    got: float

    @property
    def difference(self) -> float:
        return self.got - self.expected

    def describe(self) -> str:
        return f"{describe_cell(self.cell)}: expected {self.expected:.4f}, got {self.got:.4f}"


@dataclass
class CheckOutcome:
    """Result of a regression check; ``passed`` only when nothing drifted and nothing is missing."""

    tolerance: float
    checked: int = 0
    drifted: list[DriftedCell] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.drifted and not self.missing

    @property
    def ok(self) -> bool:
        """Alias of ``passed`` (the CLI's spelling)."""
        return self.passed

    def report(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        """Human-readable report: one line per drifted or missing cell, then a summary line."""
        out = [f"DRIFT {d.describe()} (tolerance {self.tolerance:g})" for d in self.drifted]
        out += [f"MISSING {describe_cell(c)}: no result rows for this reference cell" for c in self.missing]
        verdict = "passed" if self.passed else "FAILED"
        out.append(
            f"check {verdict}: {self.checked} cells compared, {len(self.drifted)} drifted, "
            f"{len(self.missing)} missing (tolerance {self.tolerance:g} absolute)"
        )
        return out


def load_reference_cells(path: Path) -> tuple[float, list[dict[str, Any]]]:
    """(tolerance, cells) from a reference JSON file, with a one-sentence error when unusable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReferenceFileError(
            f"Reference file {path} does not exist; create it with `dfbench check --write --reference PATH`."
        ) from exc
    except (OSError, ValueError) as exc:
        raise ReferenceFileError(
            f"Reference file {path} is not readable JSON ({exc}); restore it from git."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ReferenceFileError(f"Reference file {path} must be a JSON object with a list under 'cells'.")
    tolerance = data.get("tolerance", DEFAULT_TOLERANCE)
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
        raise ReferenceFileError(
            f"Reference file {path}: 'tolerance' must be a non-negative number, got {tolerance!r}."
        )
    cells = []
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or not isinstance(cell.get("value"), (int, float)):
            raise ReferenceFileError(
                f"Reference file {path}: cell {i} must be an object with a numeric 'value'."
            )
        cells.append(cell)
    return float(tolerance), cells


def _cell_means(results: pd.DataFrame) -> dict[tuple[Any, ...], float]:
    """Mean value per cell key over all matching result rows."""
    rows = normalize_rows(results)
    if rows.empty:
        return {}
    sums: dict[tuple[Any, ...], list[float]] = {}
    for record in rows[list(CELL_KEYS) + ["value"]].to_dict("records"):
        sums.setdefault(cell_key(record), []).append(float(record["value"]))
    return {key: float(pd.Series(values).mean()) for key, values in sums.items()}


CellFilter = Mapping[str, Collection[Any]]


def _compile_filter(only: CellFilter | None) -> dict[str, set[Any]]:
    """``only`` with its allowed values normalised once ({} = every cell)."""
    if only is None:
        return {}
    unknown = sorted(set(only) - set(CELL_KEYS))
    if unknown:
        raise ValueError(f"unknown cell field(s) {unknown}; known: {', '.join(CELL_KEYS)}")
    return {name: {_norm_key_value(name, v) for v in allowed} for name, allowed in only.items()}


def _matches(cell: Mapping[str, Any], compiled: Mapping[str, set[Any]]) -> bool:
    """Whether a cell's fields lie in the compiled filter's allowed values."""
    return all(_norm_key_value(name, cell.get(name)) in allowed for name, allowed in compiled.items())


def _describe_filter(only: CellFilter | None) -> str:
    """"protocol=cross_quality seed=0,1" for error messages; "" for no filter."""
    # joined here, not through describe_cell: "0,1,2" is no seed (_norm_key_value would reject it)
    only = only or {}
    return " ".join(
        f"{name}={','.join(str(_norm_key_value(name, v)) for v in only[name])}" for name in CELL_KEYS if name in only
    )


def check_against_reference(
    results: pd.DataFrame,
    reference_path: Path,
    *,
    tolerance: float | None = None,
    only: CellFilter | None = None,
    runs_in_results: bool = False,
) -> CheckOutcome:
    """Compare mean AUC per reference cell; ``tolerance`` overrides the file's (default 0.02).

    ``only`` (field → allowed values) restricts the comparison to the reference cells it
    matches, e.g. ``{"protocol": ["cross_quality"], "detector": ["erm"], "seed": [0]}``.
    ``runs_in_results`` restricts it to the runs (protocol, detector, backbone, preset, seed)
    the results contain, so a results folder holding one study is checked against that study
    only; a cell missing inside such a run is still reported.
    A NaN result (an undefined AUC) counts as drifted: a reference cell had a number.
    """
    file_tolerance, cells = load_reference_cells(reference_path)
    outcome = CheckOutcome(tolerance=file_tolerance if tolerance is None else float(tolerance))
    compiled = _compile_filter(only)
    selected = [c for c in cells if _matches(c, compiled)]
    wanted = _describe_filter(only)
    if runs_in_results:
        present = {_run_key(r) for r in normalize_rows(results)[list(RUN_KEYS)].to_dict("records")}
        selected = [c for c in selected if _run_key(c) in present]
        wanted = " ".join(w for w in (wanted, "the runs in these results") if w)
    if not selected:
        raise ReferenceFileError(
            f"Reference file {reference_path} has no cells{' for ' + wanted if wanted else ''}; "
            "nothing to compare (store them with `dfbench check --protocol P --detector D --write`)."
        )
    means = _cell_means(results)
    for cell in selected:
        key = cell_key(cell)
        if key not in means:
            outcome.missing.append({k: cell.get(k) for k in CELL_KEYS})
            continue
        outcome.checked += 1
        got, expected = means[key], float(cell["value"])
        if math.isnan(got) or abs(got - expected) > outcome.tolerance:
            outcome.drifted.append(DriftedCell({k: cell.get(k) for k in CELL_KEYS}, expected, got))
    return outcome


def write_reference(
    results: pd.DataFrame,
    path: Path,
    *,
    tolerance: float | None = None,
    only: CellFilter | None = None,
    metrics: Iterable[str] = REFERENCE_METRICS,
) -> Path:
    """Store the current mean AUC of every result cell matching ``only`` as the reference.

    An existing file keeps its cells outside ``only`` and its tolerance (unless ``tolerance``
    is given); the matching cells are replaced by today's. Without a file, ``tolerance`` None
    means the default (0.02 absolute), so a CLI flag left unset can be passed as is.
    """
    path = Path(path)
    compiled = _compile_filter(only)
    kept: list[dict[str, Any]] = []
    file_tolerance = DEFAULT_TOLERANCE
    if path.is_file():
        file_tolerance, existing = load_reference_cells(path)
        kept = [c for c in existing if not _matches(c, compiled)]
    tolerance = file_tolerance if tolerance is None else float(tolerance)
    if tolerance < 0:
        raise ReferenceFileError(f"Tolerance must be non-negative, got {tolerance}.")
    rows = normalize_rows(results)
    rows = rows[rows["metric"].isin(list(metrics))]
    if compiled:
        rows = rows[[_matches(r, compiled) for r in rows[list(CELL_KEYS)].to_dict("records")]]
    if rows.empty:
        wanted = _describe_filter(only)
        raise ReferenceFileError(
            f"No AUC results{' for ' + wanted if wanted else ''}; run them before writing the reference."
        )
    cells = list(kept)
    for key, value in _cell_means(rows).items():
        if math.isnan(value):
            continue  # an undefined AUC is no reference; the check would report it as missing
        cell = dict(zip(CELL_KEYS, key))
        cell["value"] = round(value, 6)
        cells.append(cell)
    cells.sort(key=lambda c: tuple(str(_norm_key_value(k, c.get(k))) for k in CELL_KEYS))
    payload = json.dumps({"tolerance": tolerance, "cells": cells}, indent=1, sort_keys=True)
    atomic_write_bytes(path, (payload + "\n").encode("utf-8"))
    return path
