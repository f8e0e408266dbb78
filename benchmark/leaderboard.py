"""The leaderboard: HTML, CSV and Markdown tables from the long-form results table only.

Each protocol is laid out the way its paper prints it, decided from the rows, never from a
protocol's name:

* several trainings, no strengths (cross-quality): a train × test matrix per detector — one
  ``<tbody>`` per detector, a row per training, a column per test × metric (two_gen_bat
  Table II's Raw→*, C23→*, C40→* blocks, turned so that each detector is a square);
* one training (cross-manipulation, cross-dataset): one row per detector, a column per test
  set × metric (two_gen_bat Table IV, pim Table IV);
* rows with a strength (laundering): AUC-versus-strength curves per test cell, drawn here as
  inline SVG (no chart library, nothing fetched when the page is viewed), each with its
  numbers in a small table under it, one column per strength (big_arts Table 8).

Rows and columns follow the protocol's YAML (raw, c23, c40), not the store's file order. A
cell is "mean ± std over seeds, [mean per-seed 95% bootstrap interval]" in %, with the
seeds and the number of test videos that failed; its background is a colour scale on the
mean (AUC and ACC: red at 50 % or below, green at 100 %). The numbers the papers print for the
same method sit in the same cell directly below ours, each with a mark that the legend under
the table resolves (paper, table, method, backbone, training data). Which paper number that is
is declared elsewhere: a protocol's ``paper_cells:`` (YAML) says which paper table cells each
of its cells reproduces, at which level; a detector's registration says which paper method
names it is (``paper_methods``). This module holds no per-protocol or per-detector names; a
final section reports, per paper table, how many printed numbers have a dfbench cell
(``dfbench.benchmark.papers``). Every table states which data its numbers came from.

Columns sort on a click (a small inline script whose sha256 the page's Content-Security-Policy
names, so no other script can run); a train × test matrix sorts whole detectors by the row of
the training chosen above it. Everything a user can name (detector, variant, backbone, test
cell, ...) reaches the HTML only through Jinja2 with autoescaping on.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.papers import claims
from dfbench.benchmark.protocol import PaperCell, load_protocol
from dfbench.benchmark.results import (
    DERIVED_SEPARATOR,
    atomic_write_bytes,
    csv_bytes,
    in_order,
    protocol_axes,
    summarize,
    with_averages,
)

REFERENCE_PACKAGE = "dfbench.reference"
REFERENCE_FILE = "paper_results.csv"

DISPLAY_METRICS: tuple[str, ...] = ("auc", "acc")
METRIC_LABELS = {"auc": "AUC", "acc": "ACC"}
LEVELS: tuple[str, ...] = ("video", "frame")  # video first: the default view
DEFAULT_LEVEL = "video"
# Metrics the papers print either as a fraction or in percent; the CSV notes say which.
BOUNDED_METRICS = frozenset({"auc", "acc", "eer", "ap", "precision", "recall", "f1"})
# The colour scale: a detector at chance (AUC or ACC 0.5 on balanced data) or worse is red,
# a perfect one green; the hue runs linearly in between.
COLOUR_FLOOR = 0.5
COLOURED_METRICS = frozenset({"auc", "acc"})
SORT_SCRIPT = "sort.js"

DATA_KIND_NOTES = {
    "synthetic-mini": "Data: synthetic mini benchmark — pipeline check, not a claim about real deepfakes.",
    "real": "Data: real datasets (as named in the column headers).",
}


# --------------------------------------------------------------------------- declarations
# What our cells reproduce is declared where it belongs: a protocol's ``paper_cells:`` (YAML)
# and a detector's ``paper_methods`` (its registration). This module only reads them.
@cache
def protocol_paper_cells(protocol: str) -> tuple[PaperCell, ...]:
    """The shipped protocol's paper cells; none for a protocol dfbench does not ship."""
    try:
        return load_protocol(protocol).paper_cells
    except DfbenchError:
        return ()


@cache
def detector_paper_methods(detector: str, variant: str | None = None) -> tuple[str, ...]:
    """The paper method names a registered detector declares; none for an unknown name. With
    ``variant`` (a result row's), only that variant's where the registration names methods per
    variant (``variant_methods``)."""
    from dfbench.benchmark.papers import detector_paper_methods as every_detector
    from dfbench.benchmark.papers import detector_variant_methods

    per_variant = detector_variant_methods().get(detector)
    if variant is not None and per_variant is not None:
        return per_variant.get(variant, ())
    return every_detector().get(detector, ())



# --------------------------------------------------------------------------- reference CSV
def load_reference() -> pd.DataFrame:
    """The papers' printed numbers shipped with dfbench (``dfbench.reference/paper_results.csv``)."""
    with resources.files(REFERENCE_PACKAGE).joinpath(REFERENCE_FILE).open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle)


def _paper_fraction(value: float, metric: str, notes: str) -> float:
    """Paper value on the 0-1 scale our rows use (the CSV keeps numbers as printed)."""
    if metric not in BOUNDED_METRICS:
        return value
    lowered = notes.lower()
    if "percent" in lowered:
        return value / 100.0
    if "fraction" in lowered:
        return value
    return value / 100.0 if value > 1.0 else value


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


# --------------------------------------------------------------------------- table model
@dataclass
class TableRow:
    """A row of a plain table (the paper-coverage section)."""

    source: str
    labels: list[str]
    cells: list[str]


@dataclass
class Table:
    """A plain table: label columns and text cells (the paper-coverage section)."""

    title: str
    notes: list[str]
    label_headers: list[str]
    column_groups: list[tuple[str, int]]
    metric_headers: list[str]
    rows: list[TableRow] = field(default_factory=list)


@dataclass
class PaperValue:
    """A number a paper prints for one of our cells; ``mark`` points into the grid's legend."""

    mark: int
    value: float
    colour: str

    @property
    def text(self) -> str:
        return _pct(self.value)


@dataclass
class Cell:
    """One measurement: our mean (0-1, None when not measured), its spread, the papers' numbers."""

    metric: str
    mean: float | None = None
    std: str = ""  # "± 1.41" (two seeds or more)
    interval: str = ""  # "[68.12, 78.12]"
    failed: int = 0
    missing: bool = False  # measured, but undefined (one class only): "n/a"
    colour: str = ""
    papers: list[PaperValue] = field(default_factory=list)

    @property
    def text(self) -> str:
        if self.mean is None:
            return "n/a" if self.missing else ""
        return _pct(self.mean)

    @property
    def sort_value(self) -> str:
        return "" if self.mean is None else f"{self.mean:.6f}"


@dataclass
class GridRow:
    training: str  # the matrix row's training; "" in a one-row-per-detector grid
    cells: list[Cell]


@dataclass
class Block:
    """One detector × variant × backbone × preset: one row, or one matrix of rows."""

    labels: list[str]  # detector, variant, backbone, preset, seeds
    rows: list[GridRow]


@dataclass
class Grid:
    """Our numbers in the paper's layout; ``layout`` is "matrix" or "columns"."""

    id: str
    title: str
    notes: list[str]
    layout: str
    column_groups: list[tuple[str, int]]  # (test cell label, number of metric columns)
    metric_headers: list[str]
    blocks: list[Block] = field(default_factory=list)
    legend: list[tuple[int, str]] = field(default_factory=list)  # (mark, "paper Table: method, backbone")
    trainings: list[str] = field(default_factory=list)  # matrix rows, in protocol order

    label_headers = ("detector", "variant", "backbone", "preset", "seeds")


@dataclass
class Point:
    x: float
    y: float
    low: float  # error bar ends (mean ± std), in pixels like x and y
    high: float
    title: str


@dataclass
class Line:
    label: str
    colour: str
    dash: str
    paper: bool
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{p.x:.1f},{p.y:.1f}" for i, p in enumerate(self.points))


@dataclass
class Chart:
    """One AUC-versus-strength plot, in SVG pixel coordinates (the template only draws)."""

    title: str
    note: str
    x_label: str
    y_label: str
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    key: tuple[str, str, str] = ("", "", "")  # (training, test, perturbation) it plots
    lines: list[Line] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)  # its numbers, one small table per level


@dataclass
class Section:
    protocol: str
    version: str
    tables: list[Table] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


COLUMN_KEY = ("training", "test", "perturbation", "strength")
ROW_KEY = ("detector", "variant", "backbone", "preset")


def _pct(value: float) -> str:
    return f"{100.0 * value:.2f}"


def _colour(value: float | None, metric: str) -> str:
    """The cell background for ``value`` on the scale red (≤ COLOUR_FLOOR) → green (1.0)."""
    if value is None or metric not in COLOURED_METRICS or math.isnan(value):
        return ""
    share = min(max((value - COLOUR_FLOOR) / (1.0 - COLOUR_FLOOR), 0.0), 1.0)
    return f"hsl({120.0 * share:.0f}, 70%, 82%)"


def _column_label(key: tuple[Any, ...], multi_training: bool) -> str:
    training, test, perturbation, strength = key
    label = re.sub(r"\s*(->|→)\s*", " → ", str(test))
    if multi_training and training and "->" not in label and "→" not in label:
        label = f"{training} → {label}"
    if perturbation:
        label += f" · {perturbation}"
    if strength is not None:
        label += f"={strength:g}"
    return label


def _our_cell(record: Mapping[str, Any] | None, metric: str) -> Cell:
    if record is None:
        return Cell(metric)
    mean = record["mean"]
    if pd.isna(mean):
        return Cell(metric, missing=True)
    std = f"± {_pct(record['std'])}" if record["n"] > 1 and not pd.isna(record["std"]) else ""
    interval = ""
    if not pd.isna(record["ci_low"]) and not pd.isna(record["ci_high"]):
        interval = f"[{_pct(record['ci_low'])}, {_pct(record['ci_high'])}]"
    failed = record.get("n_failed", 0)
    failed = 0 if failed is None or pd.isna(failed) else int(failed)
    return Cell(metric, float(mean), std=std, interval=interval, failed=failed, colour=_colour(float(mean), metric))


def _version_key(version: str) -> tuple[int, float, str]:
    try:
        return (0, float(version), version)
    except ValueError:
        return (1, 0.0, version)


def _ordered_unique(values: Iterable[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)


def _col_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """(training, test, perturbation, strength) with a missing strength as None, never NaN.

    NaN != NaN, so a NaN inside a dict key would make every lookup of that column miss.
    """
    strength = record.get("strength")
    strength = None if strength is None or pd.isna(strength) else float(strength)
    return (str(record["training"]), str(record["test"]), str(record["perturbation"]), strength)


def _column_order(frame: pd.DataFrame, protocol: str) -> list[tuple[Any, ...]]:
    """Columns in protocol order: tests as the YAML lists them, within a test the trainings as
    listed, then perturbations as first seen, strengths ascending. Tests the YAML does not list
    (a derived mean, a protocol that no longer loads) follow in the order the rows have them."""
    trainings, tests = protocol_axes(protocol)
    keys = _ordered_unique(_col_key(r) for r in frame.to_dict("records"))
    test_rank = {t: i for i, t in enumerate(in_order((k[1] for k in keys), tests))}
    training_rank = {t: i for i, t in enumerate(in_order((k[0] for k in keys), trainings))}
    perturbation_rank = {p: i for i, p in enumerate(_ordered_unique(k[2] for k in keys))}

    def sort_key(k: tuple[Any, ...]) -> tuple[int, int, int, float]:
        strength = float("-inf") if k[3] is None else k[3]
        return (test_rank[k[1]], training_rank[k[0]], perturbation_rank[k[2]], strength)

    return sorted(keys, key=sort_key)


def _table_label(paper: str, table: str) -> str:
    return table if table.startswith(("Table", "text")) else f"Table {table}"


@dataclass
class _PaperEntry:
    paper: str
    table: str
    method: str
    backbone: str
    train: str  # what the paper trained on, "" where our column labels say it
    values: dict[tuple[tuple[Any, ...], str], float]


def _cells_for(cells: Iterable[PaperCell], column: tuple[Any, ...]) -> list[PaperCell]:
    """The paper cells one of our columns (training, test, perturbation, strength) reproduces."""
    training, test, perturbation, strength = column
    return [
        c
        for c in cells
        if c.name == test
        and (c.training is None or c.derived or c.training == training)
        and c.perturbation == perturbation
        and (c.strength is None or (strength is not None and math.isclose(c.strength, strength)))
    ]


def _paper_entries(
    reference: pd.DataFrame,
    cells: tuple[PaperCell, ...],
    methods: tuple[str, ...],
    columns: Iterable[tuple[Any, ...]],
    metrics: Iterable[str],
    level: str,
    *,
    label_training: bool = True,
) -> list[_PaperEntry]:
    """Paper rows (one per paper × table × method × backbone [× training]) that fill our columns.

    A reference row fills a column when one of the column's declared paper cells reports it at
    this level and the detector's registration names its method. ``label_training``: the row
    says what the paper trained on (off where our column labels already name the training).
    """
    if not cells or not methods or reference.empty:
        return []
    metrics = set(metrics)
    by_column = {column: _cells_for(cells, column) for column in columns}
    by_column = {k: v for k, v in by_column.items() if v}
    if not by_column:
        return []
    tables = {(c.paper, c.table) for cs in by_column.values() for c in cs}
    entries: dict[tuple[str, ...], _PaperEntry] = {}
    for paper in reference.to_dict("records"):
        if (_text(paper.get("paper")), _text(paper.get("table"))) not in tables:
            continue
        method = _text(paper.get("method"))
        metric = _text(paper.get("metric"))
        if metric not in metrics or not claims(methods, _text(paper.get("paper")), method):
            continue
        value = _paper_fraction(float(paper["value"]), metric, _text(paper.get("notes")))
        for column, column_cells in by_column.items():
            if not any(c.level == level and c.reports(paper) for c in column_cells):
                continue
            train = " ".join(t for t in (_text(paper.get("train_data")), _text(paper.get("train_quality"))) if t)
            group = (
                _text(paper["paper"]),
                _text(paper["table"]),
                method,
                _text(paper.get("backbone")),
                train if label_training else "",
            )
            entry = entries.setdefault(group, _PaperEntry(*group, values={}))
            entry.values.setdefault((column, metric), value)
    return list(entries.values())


def _merge_identical(entries: list[_PaperEntry]) -> list[tuple[list[str], _PaperEntry]]:
    """Tables that reprint the same row (two_gen_bat I and IV) become one row citing both."""
    return [(tables, entry) for tables, entry, _ in _merge_identical_placed([(e, []) for e in entries])]


def _merge_identical_placed(
    entries: list[tuple[_PaperEntry, list[Any]]],
) -> list[tuple[list[str], _PaperEntry, list[Any]]]:
    """``_merge_identical`` for entries that each go to some of our rows (``places``): a row the
    paper reprints cites every table, and goes to every place any of its copies went to."""
    merged: list[tuple[list[str], _PaperEntry, list[Any]]] = []
    for entry, places in entries:
        label = _table_label(entry.paper, entry.table)
        for tables, kept, kept_places in merged:
            same_row = (kept.paper, kept.method, kept.backbone, kept.train) == (
                entry.paper,
                entry.method,
                entry.backbone,
                entry.train,
            )
            if same_row and kept.values == entry.values:
                if label not in tables:
                    tables.append(label)
                kept_places.extend(p for p in places if all(p is not q for q in kept_places))
                break
        else:
            merged.append(([label], entry, list(places)))
    return merged


# --------------------------------------------------------------------------- grids
def _layout(frame: pd.DataFrame) -> str:
    """"matrix" when a test cell is scored by more than one training (cross-quality), else
    "columns". Decided from the rows: protocols whose tests each belong to one training
    (quality_aware) would make a matrix of empty cells."""
    per_test = frame.groupby("test")["training"].nunique()
    return "matrix" if (per_test > 1).any() else "columns"


def _level_notes(protocol: str, data_kind: str, level: str, layout: str) -> list[str]:
    notes = [DATA_KIND_NOTES.get(data_kind, f"Data: {data_kind or 'unknown'} (data kind not recognised).")]
    notes.append(
        f"{level.capitalize()}-level metrics"
        + (" (video score = mean of its frame scores)" if level == "video" else "")
        + "; values in %, mean ± std over seeds, [mean of the per-seed 95% bootstrap interval bounds]"
        + ("; a test video that yielded no frames scores 0.5 and is counted ('N failed')."
           if level == "video" else ".")
    )
    if layout == "matrix":
        notes.append("One train × test matrix per detector: rows = training, columns = test, in protocol order.")
    cited = ", ".join(
        _ordered_unique(
            f"{c.paper} {_table_label(c.paper, c.table)}" for c in protocol_paper_cells(protocol) if c.level == level
        )
    )
    if cited:
        notes.append(
            f"Paper numbers (below ours in each cell, marked; legend under the table): as printed in {cited}"
            f" (converted to %), with the paper's own backbone, data and schedule, at the level the"
            f" protocol's paper_cells state for them ({level})."
        )
    else:
        notes.append(f"No paper number is declared for this protocol at {level} level.")
    notes.append(
        f"Colour: red at {100 * COLOUR_FLOOR:.0f} or below, green at 100 (AUC, ACC). Click a column header to sort."
    )
    return notes


def _grid(
    grid_id: str,
    protocol: str,
    version: str,
    data_kind: str,
    level: str,
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    long_rows: list[dict[str, Any]],
    subject: str = "",
) -> Grid:
    """One table of ``frame`` (one protocol, data kind and level) in the layout its rows call
    for; ``subject`` names what part of the protocol it holds (a curve's test cell)."""
    layout = _layout(frame)
    columns = _column_order(frame, protocol)
    metrics = [m for m in DISPLAY_METRICS if (frame["metric"] == m).any()]
    multi_training = frame["training"].nunique() > 1
    if layout == "matrix":
        trainings = in_order(frame["training"], protocol_axes(protocol)[0])
        heads: list[tuple[Any, ...]] = _ordered_unique(k[1:] for k in columns)  # (test, perturbation, strength)
        labels = [_column_label(("", *h), False) for h in heads]
    else:
        trainings = [""]
        heads = list(columns)
        labels = [_column_label(c, multi_training) for c in columns]

    def full(training: str, head: tuple[Any, ...]) -> tuple[Any, ...]:
        return (training, *head) if layout == "matrix" else head

    values: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        values.setdefault((*(record[k] for k in ROW_KEY), *_col_key(record), record["metric"]), record)

    grid = Grid(
        id=grid_id,
        title=" — ".join(t for t in (f"{protocol} (v{version})", subject, f"{level}-level", data_kind or "unknown data") if t),
        notes=_level_notes(protocol, data_kind, level, layout),
        layout=layout,
        column_groups=[(label, len(metrics)) for label in labels],
        metric_headers=[METRIC_LABELS[m] for _ in heads for m in metrics],
        trainings=[str(t) for t in trainings] if layout == "matrix" else [],
    )
    derived = frame.loc[frame["derived_from"] != "", ["test", "derived_from"]].drop_duplicates()
    for test, parts in derived.itertuples(index=False, name=None):
        grid.notes.append(
            f"{test}: derived column, the mean of {', '.join(str(parts).split(DERIVED_SEPARATOR))}, taken per seed from"
            " those columns' values (not a test set; shown where every one of them was scored)."
        )
    paper_cells = protocol_paper_cells(protocol)
    for detector in _ordered_unique(frame["detector"]):
        ours = frame[frame["detector"] == detector]
        blocks: list[Block] = []
        # each row of ours shows the paper rows of the methods its detector *and variant* are
        # (a frozen detector beside its bleached version: the paper's ERM row and PBNet's row)
        blocks_of: dict[tuple[str, ...], list[Block]] = {}
        for row_key in _ordered_unique(tuple(r) for r in ours[list(ROW_KEY)].itertuples(index=False, name=None)):
            seeds: set[int] = set()
            rows: list[GridRow] = []
            for training in trainings:
                cells: list[Cell] = []
                measured = False
                for head in heads:
                    for metric in metrics:
                        record = values.get((*row_key, *full(training, head), metric))
                        cells.append(_our_cell(record, metric))
                        if record is not None:
                            measured = True
                            seeds.update(int(s) for s in str(record.get("seeds") or "").split(",") if s)
                if measured:
                    rows.append(GridRow(str(training), cells))
            blocks.append(Block([*map(str, row_key), ",".join(map(str, sorted(seeds)))], rows))
            methods = detector_paper_methods(str(detector), _text(row_key[ROW_KEY.index("variant")]))
            blocks_of.setdefault(methods, []).append(blocks[-1])
        grid.blocks.extend(blocks)
        entries = [
            (entry, its_blocks)
            for methods, its_blocks in blocks_of.items()
            for entry in _paper_entries(
                reference, paper_cells, methods, columns, metrics, level, label_training=not multi_training
            )
        ]
        for tables, entry, its_blocks in _merge_identical_placed(entries):
            mark = len(grid.legend) + 1
            source = f"{entry.paper} {', '.join(tables)}: {entry.method}"
            source += f", {entry.backbone}" if entry.backbone else ""
            source += f", trained on {entry.train}" if entry.train else ""
            grid.legend.append((mark, source))
            # the paper's number sits in the very cell of ours it reproduces, below ours
            for block in its_blocks:
                for row in block.rows:
                    position = 0
                    for head in heads:
                        for metric in metrics:
                            value = entry.values.get((full(row.training, head), metric))
                            if value is not None:
                                row.cells[position].papers.append(PaperValue(mark, value, _colour(value, metric)))
                            position += 1
            for (column, metric), value in entry.values.items():
                long_rows.append(
                    {
                        "source": "paper",
                        "protocol": protocol,
                        "protocol_version": version,
                        "data_kind": data_kind,
                        "detector": detector,
                        **dict(zip(COLUMN_KEY, column)),
                        "metric": metric,
                        "level": level,
                        "mean": value,
                        "paper": entry.paper,
                        "paper_table": ", ".join(tables),
                        "paper_method": entry.method,
                        "paper_backbone": entry.backbone,
                        "paper_train_data": entry.train,
                    }
                )
    return grid


# --------------------------------------------------------------------------- curves
# Line colours (a 10-colour qualitative set) and, past ten lines, dash patterns: 30 detectors
# still get 30 distinguishable lines.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
DASHES = ("", "7 3", "2 2")
PAPER_DASH = "5 4"
CHART_SIZE = (640, 320)
CHART_MARGIN = (56, 14, 16, 44)  # left, top, right, bottom


def _ticks(low: float, high: float, step: float) -> list[float]:
    count = int(round((high - low) / step))
    return [round(low + i * step, 10) for i in range(count + 1)]


def _charts(frame: pd.DataFrame, reference: pd.DataFrame, protocol: str) -> list[Chart]:
    """AUC versus strength, one SVG chart per test cell; a line per detector × variant ×
    backbone × preset (mean, error bar ± std over seeds) and a dashed line per paper row."""
    curves = frame[frame["strength"].notna() & (frame["metric"] == "auc")]
    if curves.empty:
        return []
    level = DEFAULT_LEVEL if (curves["level"] == DEFAULT_LEVEL).any() else str(curves["level"].iloc[0])
    curves = curves[curves["level"] == level]
    cells = protocol_paper_cells(protocol)
    charts: list[Chart] = []
    groups = _ordered_unique(k[:3] for k in _column_order(curves, protocol))
    for training, test, perturbation in groups:
        part = curves[
            (curves["training"] == training) & (curves["test"] == test) & (curves["perturbation"] == perturbation)
        ]
        # (label, paper?, colour index, points as (strength, mean, std)); a paper line takes the
        # colour of the detector it belongs to, ours a colour each
        raw_lines: list[tuple[str, bool, int, list[tuple[float, float, float]]]] = []
        for detector in _ordered_unique(part["detector"]):
            theirs = part[part["detector"] == detector]
            first = len([line for line in raw_lines if not line[1]])
            for row_key in _ordered_unique(tuple(r) for r in theirs[list(ROW_KEY)].itertuples(index=False, name=None)):
                mine = theirs[(theirs[list(ROW_KEY)] == pd.Series(row_key, index=list(ROW_KEY))).all(axis=1)]
                mine = mine[mine["mean"].notna()].sort_values("strength")
                points = [
                    (float(r["strength"]), float(r["mean"]), 0.0 if pd.isna(r["std"]) else float(r["std"]))
                    for r in mine.to_dict("records")
                ]
                if points:
                    colour = len([line for line in raw_lines if not line[1]])
                    raw_lines.append((" / ".join(str(k) for k in row_key if k), False, colour, points))
            columns = _ordered_unique(_col_key(r) for r in theirs.to_dict("records"))
            entries = _paper_entries(reference, cells, detector_paper_methods(str(detector)), columns, ("auc",), level)
            for tables, entry in _merge_identical(entries):
                points = sorted((c[3], v, 0.0) for (c, _), v in entry.values.items())
                if points:
                    label = f"paper: {entry.method}, {entry.paper} {', '.join(tables)}"
                    raw_lines.append((label, True, first, points))
        if not raw_lines:
            continue
        xs = [p[0] for *_, pts in raw_lines for p in pts]
        ys = [y for *_, pts in raw_lines for p in pts for y in (p[1] - p[2], p[1] + p[2])]
        x_low, x_high = min(xs), max(xs)
        if x_high == x_low:
            x_low, x_high = x_low - 1.0, x_high + 1.0
        y_low = min(COLOUR_FLOOR, math.floor(min(ys) * 10) / 10)
        y_high = max(1.0, math.ceil(max(ys) * 10) / 10)
        width, height = CHART_SIZE
        left, top = CHART_MARGIN[0], CHART_MARGIN[1]
        right, bottom = width - CHART_MARGIN[2], height - CHART_MARGIN[3]

        def px(x: float, x_low: float = x_low, x_high: float = x_high, left: float = left, right: float = right) -> float:
            return left + (x - x_low) / (x_high - x_low) * (right - left)

        def py(y: float, y_low: float = y_low, y_high: float = y_high, top: float = top, bottom: float = bottom) -> float:
            return bottom - (y - y_low) / (y_high - y_low) * (bottom - top)

        chart = Chart(
            title=f"{test}: AUC versus {perturbation} strength (trained on {training})",
            note=f"{level}-level AUC in %; dots: ours, mean with a bar of ± std over seeds; dashed with ×: the paper's printed numbers.",
            x_label=f"{perturbation} strength",
            y_label=f"{level}-level AUC (%)",
            width=width,
            height=height,
            plot=(left, top, right, bottom),
            x_ticks=[(px(x), f"{x:g}") for x in sorted(set(xs))],
            y_ticks=[(py(y), f"{100 * y:.0f}") for y in _ticks(y_low, y_high, 0.1)],
            key=(str(training), str(test), str(perturbation)),
        )
        for label, is_paper, index, points in raw_lines:
            chart.lines.append(
                Line(
                    label=label,
                    colour=PALETTE[index % len(PALETTE)],
                    dash=PAPER_DASH if is_paper else DASHES[(index // len(PALETTE)) % len(DASHES)],
                    paper=is_paper,
                    points=[
                        Point(px(x), py(y), py(y - s), py(y + s), f"{label}: {x:g} → {_pct(y)}" + (f" ± {_pct(s)}" if s else ""))
                        for x, y, s in points
                    ],
                )
            )
        charts.append(chart)
    return charts


# --------------------------------------------------------------------------- rendering
def _md_escape(text: str) -> str:
    """Markdown table cell text: no pipes, no raw HTML, one line."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\n", " ")
    )


def _md_cell(cell: Cell) -> str:
    """Ours, then the papers' numbers for the same cell: "73.12 ± 1.41 [68.12, 78.12] · paper[1] 72.18"."""
    parts = [" ".join(t for t in (cell.text, cell.std, cell.interval) if t)]
    if cell.failed:
        parts[0] += f" ({cell.failed} failed videos at 0.5)"
    parts += [f"paper[{p.mark}] {p.text}" for p in cell.papers]
    return " · ".join(p for p in parts if p)


def _md_grid(grid: Grid) -> list[str]:
    lines = [f"### {_md_escape(grid.title)}", ""]
    lines += [f"*{_md_escape(n)}*  " for n in grid.notes]
    lines.append("")
    metrics = iter(grid.metric_headers)
    headers = [*grid.label_headers, *(["training"] if grid.layout == "matrix" else [])]
    for label, span in grid.column_groups:
        headers += [f"{label} {next(metrics)}" for _ in range(span)]
    lines.append("| " + " | ".join(_md_escape(h) for h in headers) + " |")
    lines.append("|" + "---|" * len(headers))
    for block in grid.blocks:
        for row in block.rows:
            training = [row.training] if grid.layout == "matrix" else []
            cells = [*block.labels, *training, *(_md_cell(c) for c in row.cells)]
            lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    lines.append("")
    lines += [f"[{mark}] {_md_escape(source)}  " for mark, source in grid.legend]
    lines += [""] if grid.legend else []
    return lines


def _render_markdown(sections: list[Section], coverage: Iterable[Section] = ()) -> str:
    lines = ["# dfbench leaderboard", ""]
    if not sections:
        lines += ["No results stored yet.", ""]
    for section in [*sections, *coverage]:
        version = f" (v{_md_escape(section.version)})" if section.version else ""
        lines += [f"## {_md_escape(section.protocol)}{version}", ""]
        lines += [f"> {_md_escape(n)}" for n in section.notes]
        lines += [""] if section.notes else []
        for chart in section.charts:
            lines += [f"*{_md_escape(chart.title)}: curve in leaderboard.html; its numbers:*", ""]
            for grid in chart.grids:
                lines += _md_grid(grid)
        for grid in section.grids:
            lines += _md_grid(grid)
        for table in section.tables:
            lines += [f"### {_md_escape(table.title)}", ""]
            lines += [f"*{_md_escape(n)}*  " for n in table.notes]
            lines.append("")
            metrics = iter(table.metric_headers)
            headers = [*table.label_headers]
            for label, span in table.column_groups:
                headers += [f"{label} {next(metrics)}" for _ in range(span)]
            lines.append("| " + " | ".join(_md_escape(h) for h in headers) + " |")
            lines.append("|" + "---|" * len(headers))
            for row in table.rows:
                lines.append("| " + " | ".join(_md_escape(c) for c in [*row.labels, *row.cells]) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,  # every name a user chose reaches the page as text, never as markup
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def sort_script() -> tuple[Markup, Markup]:
    """The page's one script (templates/sort.js) and its CSP source ``'sha256-…'``.

    The Content-Security-Policy allows exactly this script by its hash, so nothing else, not
    even a ``<script>`` smuggled into a name past the escaping, could run.
    """
    text = Path(__file__).with_name("templates").joinpath(SORT_SCRIPT).read_text(encoding="utf-8")
    if "</" in text:
        raise DfbenchError(f"templates/{SORT_SCRIPT} must not contain '</' (it is inlined in a <script> element).")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), Markup(f"'sha256-{digest}'")  # base64: no character to escape


# --------------------------------------------------------------------------- coverage
def coverage_section(reference: pd.DataFrame) -> Section:
    """"Paper coverage": per paper table, how many printed numbers dfbench has a cell for."""
    from dfbench.benchmark.papers import coverage_rows, summarize_coverage

    tables = summarize_coverage(coverage_rows(reference))
    printed = sum(t.printed for t in tables)
    covered = sum(t.covered for t in tables)
    section = Section(protocol="paper coverage", version="")
    section.notes.append(
        f"dfbench has a cell for {covered} of the {printed} numbers the five papers print "
        "(a protocol's paper_cells reproduce the setting, a detector's registration names the method;"
        " `dfbench papers` prints the same)."
    )
    table = Table(
        title="Printed numbers with a dfbench cell, per paper table",
        notes=["Reproduced by: protocol (preset): detectors. Not covered: number of printed values per reason."],
        label_headers=["paper", "table", "covered / printed", "reproduced by", "not covered"],
        column_groups=[],
        metric_headers=[],
    )
    for t in tables:
        table.rows.append(
            TableRow(
                "ours",
                [
                    t.paper,
                    _table_label(t.paper, t.table),
                    f"{t.covered} / {t.printed}",
                    "; ".join(t.by),
                    "; ".join(f"{reason} ({n})" if n else reason for reason, n in t.uncovered),
                ],
                [],
            )
        )
    section.tables.append(table)
    return section


# --------------------------------------------------------------------------- entry point
def build_sections(results: pd.DataFrame, reference: pd.DataFrame) -> tuple[list[Section], pd.DataFrame]:
    """The leaderboard's content: sections per protocol and the long-form CSV table."""
    # An empty store (no columns at all) is a normal first state, not a schema error.
    # the protocols' derived columns (averages:) computed from the measured rows, per seed
    rows = with_averages(results)
    summary = summarize(rows)
    long_rows: list[dict[str, Any]] = []
    sections: list[Section] = []
    used_ids: set[str] = set()
    for protocol in sorted(summary["protocol"].unique()) if not summary.empty else []:
        block = summary[summary["protocol"] == protocol]
        versions = sorted(block["protocol_version"].unique(), key=_version_key)
        version = versions[-1]
        section = Section(protocol=str(protocol), version=str(version))
        if len(versions) > 1:
            section.notes.append(
                f"Only the newest protocol version ({version}) is shown; older versions stored: "
                + ", ".join(map(str, versions[:-1]))
                + "."
            )
        block = block[block["protocol_version"] == version]
        for _, record in block.iterrows():
            long_rows.append({"source": "dfbench", **record.to_dict()})
        kinds = sorted(block["data_kind"].unique(), key=lambda k: (k != "real", k != "synthetic-mini", k))
        for kind in kinds:
            by_kind = block[block["data_kind"] == kind]
            charts = _charts(by_kind, reference, str(protocol))
            section.charts.extend(charts)

            def new_id(*parts: str) -> str:
                # a stable id, so a link can open the page sorted (#sort=<id>:<column>:desc)
                grid_id = re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))
                while grid_id in used_ids:
                    grid_id += "-"
                used_ids.add(grid_id)
                return grid_id

            for level in [*LEVELS, *sorted(set(by_kind["level"]) - set(LEVELS))]:
                part = by_kind[(by_kind["level"] == level) & by_kind["metric"].isin(DISPLAY_METRICS)]
                # the numbers behind a curve sit under it, one row per detector and a column per
                # strength (big_arts Table 8's layout) rather than in one table 100 columns wide
                plotted = pd.Series(False, index=part.index)
                for chart in charts:
                    training, test, perturbation = chart.key
                    mine = (
                        part["strength"].notna()
                        & (part["training"] == training)
                        & (part["test"] == test)
                        & (part["perturbation"] == perturbation)
                    )
                    plotted |= mine
                    if mine.any():
                        chart.grids.append(
                            _grid(new_id(str(protocol), kind, level, test), str(protocol), str(version), kind,
                                  level, part[mine], reference, long_rows, subject=test)
                        )
                rest = part[~plotted]
                if not rest.empty:
                    section.grids.append(
                        _grid(new_id(str(protocol), kind, level), str(protocol), str(version), kind, level, rest,
                              reference, long_rows)
                    )
        sections.append(section)
    long_columns = [
        "source",
        *summary.columns,
        "paper",
        "paper_table",
        "paper_method",
        "paper_backbone",
        "paper_train_data",
    ]
    return sections, pd.DataFrame(long_rows, columns=_ordered_unique(long_columns))


def build_leaderboard(
    results: pd.DataFrame, out_dir: Path, *, reference: pd.DataFrame | None = None
) -> dict[str, Path]:
    """Write leaderboard.html, leaderboard.csv and leaderboard.md into ``out_dir``.

    ``results`` is the long-form table (``ResultsStore.read_all()``). ``reference`` defaults to
    the shipped paper CSV; pass an empty DataFrame for a leaderboard without paper rows.
    Returns {"html": path, "csv": path, "md": path}. The CSV's text cells are neutralised
    against spreadsheet formulas (``results.csv_bytes``); every file is written whole and
    readable by others as the umask allows (``results.atomic_write_bytes``).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DfbenchError(f"Leaderboard output {out_dir} is a file; pass a directory with --out.")
    reference = load_reference() if reference is None else reference
    sections, long_table = build_sections(results, reference)
    coverage = [coverage_section(reference)] if not reference.empty else []
    script, script_source = sort_script()
    html = _environment().get_template("leaderboard.html").render(
        sections=sections, coverage=coverage, script=script, script_source=script_source
    )
    paths = {
        "html": out_dir / "leaderboard.html",
        "csv": out_dir / "leaderboard.csv",
        "md": out_dir / "leaderboard.md",
    }
    atomic_write_bytes(paths["html"], html.encode("utf-8"))
    atomic_write_bytes(paths["csv"], csv_bytes(long_table))
    atomic_write_bytes(paths["md"], _render_markdown(sections, coverage).encode("utf-8"))
    return paths
