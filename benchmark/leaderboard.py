"""The leaderboard: HTML, CSV and Markdown tables from the long-form results table only.

Per protocol, tables follow the papers' layout: one row per detector (× variant) × backbone,
columns test cell × metric (AUC, ACC), one table for video-level and one for frame-level
metrics, each cell "mean ± std over seeds" with the mean per-seed 95% bootstrap interval.
Below each of our detectors come the numbers the papers print for the same method, cell by
cell, as declared elsewhere: a protocol's ``paper_cells:`` (YAML) says which paper table
cells each of its cells reproduces, at which level; a detector's registration says which
paper method names it is (``paper_methods``). This module holds no per-protocol or
per-detector names and parses no display strings; anything undeclared has no paper row. A
final section reports, per paper table, how many printed numbers have a dfbench cell
(``dfbench.benchmark.papers``). Every table states which data its numbers came from.

Everything a user can name (detector, variant, backbone, test cell, ...) reaches the HTML
only through Jinja2 with autoescaping on, and the page forbids scripts by its CSP.
"""

from __future__ import annotations

import base64
import io
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

from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.papers import claims
from dfbench.benchmark.protocol import PaperCell, load_protocol
from dfbench.benchmark.results import atomic_write_bytes, empty_results, normalize_rows, summarize

REFERENCE_PACKAGE = "dfbench.reference"
REFERENCE_FILE = "paper_results.csv"

DISPLAY_METRICS: tuple[str, ...] = ("auc", "acc")
METRIC_LABELS = {"auc": "AUC", "acc": "ACC"}
LEVELS: tuple[str, ...] = ("video", "frame")  # video first: the default view
DEFAULT_LEVEL = "video"
# Metrics the papers print either as a fraction or in percent; the CSV notes say which.
BOUNDED_METRICS = frozenset({"auc", "acc", "eer", "ap", "precision", "recall", "f1"})

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
def detector_paper_methods(detector: str) -> tuple[str, ...]:
    """The paper method names a registered detector declares; none for an unknown name."""
    from dfbench.benchmark.papers import detector_paper_methods as every_detector

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
    source: str  # "ours" | "paper"
    labels: list[str]
    cells: list[str]


@dataclass
class Table:
    title: str
    notes: list[str]
    label_headers: list[str]
    column_groups: list[tuple[str, int]]  # (test cell label, number of metric columns)
    metric_headers: list[str]
    rows: list[TableRow] = field(default_factory=list)


@dataclass
class Figure:
    title: str
    note: str
    png_base64: str


@dataclass
class Section:
    protocol: str
    version: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


COLUMN_KEY = ("training", "test", "perturbation", "strength")
ROW_KEY = ("detector", "variant", "backbone", "preset")
LABEL_HEADERS = ["source", "detector", "variant", "backbone", "preset", "seeds"]


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


def _pct(value: float) -> str:
    return f"{100.0 * value:.2f}"


def _format_ours(row: Mapping[str, Any]) -> str:
    mean = row["mean"]
    if pd.isna(mean):
        return "n/a"
    text = _pct(mean)
    if row["n"] > 1 and not pd.isna(row["std"]):
        text += f" ± {_pct(row['std'])}"
    if not pd.isna(row["ci_low"]) and not pd.isna(row["ci_high"]):
        text += f" [{_pct(row['ci_low'])}, {_pct(row['ci_high'])}]"
    failed = row.get("n_failed", 0)
    if not pd.isna(failed) and int(failed) > 0:
        text += f" ({int(failed)} failed videos at 0.5)"
    return text


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


def _column_order(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Columns in the order the runner produced them; strengths ascending within a perturbation."""
    keys = _ordered_unique(_col_key(r) for r in frame.to_dict("records"))
    first_seen = {k[:3]: i for i, k in reversed(list(enumerate(keys)))}

    def sort_key(k: tuple[Any, ...]) -> tuple[int, float]:
        return (first_seen[k[:3]], float("-inf") if k[3] is None else k[3])

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
    merged: list[tuple[list[str], _PaperEntry]] = []
    for entry in entries:
        for tables, kept in merged:
            same_row = (kept.paper, kept.method, kept.backbone, kept.train) == (
                entry.paper,
                entry.method,
                entry.backbone,
                entry.train,
            )
            if same_row and kept.values == entry.values:
                tables.append(_table_label(entry.paper, entry.table))
                break
        else:
            merged.append(([_table_label(entry.paper, entry.table)], entry))
    return merged


def _level_table(
    protocol: str,
    version: str,
    data_kind: str,
    level: str,
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    long_rows: list[dict[str, Any]],
) -> Table:
    paper_cells = protocol_paper_cells(protocol)
    columns = _column_order(frame)
    metrics = [m for m in DISPLAY_METRICS if (frame["metric"] == m).any()]
    multi_training = frame["training"].nunique() > 1
    labels = {c: _column_label(c, multi_training) for c in columns}
    values: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in frame.to_dict("records"):
        values.setdefault((*(record[k] for k in ROW_KEY), *_col_key(record), record["metric"]), record)

    notes = [DATA_KIND_NOTES.get(data_kind, f"Data: {data_kind or 'unknown'} (data kind not recognised).")]
    notes.append(
        f"{level.capitalize()}-level metrics"
        + (" (video score = mean of its frame scores)" if level == "video" else "")
        + "; values in %, mean ± std over seeds, [mean of the per-seed 95% bootstrap interval bounds]"
        + ("; a test video that yielded no frames scores 0.5 and is counted (shown as 'N failed videos')."
           if level == "video" else ".")
    )
    cited = ", ".join(
        _ordered_unique(f"{c.paper} {_table_label(c.paper, c.table)}" for c in paper_cells if c.level == level)
    )
    if cited:
        notes.append(
            f"Paper rows: numbers as printed in {cited} (converted to %), with the paper's own backbone,"
            f" data and schedule, at the level the protocol's paper_cells state for them ({level})."
        )
    table = Table(
        title=f"{protocol} (v{version}) — {level}-level — {data_kind or 'unknown data'}",
        notes=notes,
        label_headers=list(LABEL_HEADERS),
        column_groups=[(labels[c], len(metrics)) for c in columns],
        metric_headers=[METRIC_LABELS[m] for _ in columns for m in metrics],
    )
    for detector in _ordered_unique(frame["detector"]):
        ours = frame[frame["detector"] == detector]
        for row_key in _ordered_unique(
            tuple(r) for r in ours[list(ROW_KEY)].itertuples(index=False, name=None)
        ):
            cells = []
            seeds = 0
            for column in columns:
                for metric in metrics:
                    record = values.get((*row_key, *column, metric))
                    if record is not None:
                        cells.append(_format_ours(record))
                        seeds = max(seeds, int(record["n"]))
                    else:
                        cells.append("")
            table.rows.append(TableRow("ours", ["dfbench", *map(str, row_key), str(seeds)], cells))
        methods = detector_paper_methods(str(detector))
        entries = _paper_entries(
            reference, paper_cells, methods, columns, metrics, level, label_training=not multi_training
        )
        for tables, entry in _merge_identical(entries):
            # paper rows sit right under the detector they belong to: "beside ours"
            source = f"paper: {entry.paper} {', '.join(tables)}"
            train = entry.train
            row_cells = [
                _pct(entry.values[(c, m)]) if (c, m) in entry.values else "" for c in columns for m in metrics
            ]
            table.rows.append(
                TableRow(
                    "paper",
                    [source, entry.method, f"trained on {train}" if train else "", entry.backbone, "", ""],
                    row_cells,
                )
            )
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
                        "paper_train_data": train,
                    }
                )
    return table


# --------------------------------------------------------------------------- curves
def _curve_figures(frame: pd.DataFrame, reference: pd.DataFrame, protocol: str) -> list[Figure]:
    """AUC versus strength, one PNG per perturbation, one line per detector × backbone × test."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    curves = frame[frame["strength"].notna() & (frame["metric"] == "auc")]
    if curves.empty:
        return []
    level = DEFAULT_LEVEL if (curves["level"] == DEFAULT_LEVEL).any() else str(curves["level"].iloc[0])
    curves = curves[curves["level"] == level]
    cells = protocol_paper_cells(protocol)
    figures: list[Figure] = []
    for perturbation in _ordered_unique(curves["perturbation"]):
        part = curves[curves["perturbation"] == perturbation]
        # Object-oriented matplotlib (no pyplot): no global state, the Agg canvas renders off-screen.
        fig = MplFigure(figsize=(6.0, 3.6), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        line_keys = ["detector", "variant", "backbone", "preset", "training", "test"]
        for key, line in part.groupby(line_keys, sort=False, dropna=False):
            line = line.sort_values("strength")
            label = " / ".join(str(k) for k in key if k)
            ax.errorbar(
                line["strength"],
                line["mean"],
                yerr=line["std"].fillna(0.0),
                marker="o",
                capsize=3,
                label=label,
            )
        for detector in _ordered_unique(part["detector"]):
            columns = _ordered_unique(_col_key(r) for r in part[part["detector"] == detector].to_dict("records"))
            for _, entry in _merge_identical(
                _paper_entries(reference, cells, detector_paper_methods(str(detector)), columns, ("auc",), level)
            ):
                points = sorted((c[3], v) for (c, _), v in entry.values.items())
                if points:
                    xs, ys = zip(*points)
                    ax.plot(
                        xs, ys, linestyle="--", marker="x", label=f"paper: {entry.method} ({entry.paper})"
                    )
        ax.set_xlabel(f"{perturbation} strength")
        ax.set_ylabel(f"{level}-level AUC")
        ax.set_title(f"{protocol}: AUC vs {perturbation}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        figures.append(
            Figure(
                title=f"AUC versus {perturbation} strength",
                note=f"{level}-level AUC, mean ± std over seeds; dashed: the paper's printed numbers.",
                png_base64=base64.b64encode(buffer.getvalue()).decode("ascii"),
            )
        )
    return figures


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


def _render_markdown(sections: list[Section], coverage: Iterable[Section] = ()) -> str:
    lines = ["# dfbench leaderboard", ""]
    if not sections:
        lines += ["No results stored yet.", ""]
    for section in [*sections, *coverage]:
        version = f" (v{_md_escape(section.version)})" if section.version else ""
        lines += [f"## {_md_escape(section.protocol)}{version}", ""]
        lines += [f"> {_md_escape(n)}" for n in section.notes]
        lines += [""] if section.notes else []
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
        for figure in section.figures:
            lines += [f"*{_md_escape(figure.title)}: see leaderboard.html.*", ""]
    return "\n".join(lines) + "\n"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,  # every name a user chose reaches the page as text, never as markup
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


# --------------------------------------------------------------------------- derived cells
# What a derived row keeps from its parts; everything else about the parts differs or is moot.
_DERIVED_KEYS = ("protocol", "protocol_version", "data_kind", "detector", "variant", "backbone", "preset", "seed", "metric", "level")


def derived_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for the paper cells that average several of our cells (QAD Table 3: the mean of
    the raw, c23 and c40 AUCs), one per seed, from that seed's rows; a seed lacking one of the
    parts gets none. The mean is taken per seed, so mean ± std over seeds reads like any cell."""
    out: list[dict[str, Any]] = []
    for protocol in _ordered_unique(rows["protocol"]) if not rows.empty else []:
        seen: set[tuple[Any, ...]] = set()
        part = rows[rows["protocol"] == protocol]
        for cell in protocol_paper_cells(str(protocol)):
            key = (cell.name, cell.training, cell.tests)
            if not cell.derived or key in seen:
                continue
            seen.add(key)
            parts = part[part["test"].isin(cell.tests) & (part["perturbation"] == cell.perturbation)]
            if cell.training is not None:
                parts = parts[parts["training"] == cell.training]
            for _, group in parts.groupby(list(_DERIVED_KEYS), dropna=False, sort=False):
                if sorted(group["test"]) != sorted(cell.tests):
                    continue  # a part missing (or stored twice): no mean
                first = group.iloc[0].to_dict()
                trainings = _ordered_unique(group["training"])
                out.append(
                    {
                        **{k: first[k] for k in _DERIVED_KEYS},
                        "training": trainings[0] if len(trainings) == 1 else "",
                        "train_data": "+".join(_ordered_unique(group["train_data"])),
                        "test": cell.name,
                        "test_data": "mean of " + ", ".join(cell.tests),
                        "perturbation": cell.perturbation,
                        "value": float(group["value"].mean()),
                        "n_failed": int(group["n_failed"].fillna(0).sum()),
                        "run_id": first.get("run_id", ""),
                    }
                )
    return pd.DataFrame(out)


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
    rows = empty_results() if results.empty else normalize_rows(results)
    derived = derived_rows(rows)
    if not derived.empty:
        rows = normalize_rows(pd.concat([rows, derived], ignore_index=True))
    summary = summarize(rows)
    long_rows: list[dict[str, Any]] = []
    sections: list[Section] = []
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
            for level in [*LEVELS, *sorted(set(by_kind["level"]) - set(LEVELS))]:
                part = by_kind[(by_kind["level"] == level) & by_kind["metric"].isin(DISPLAY_METRICS)]
                if not part.empty:
                    section.tables.append(
                        _level_table(str(protocol), str(version), kind, level, part, reference, long_rows)
                    )
            section.figures.extend(_curve_figures(by_kind, reference, str(protocol)))
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
    Returns {"html": path, "csv": path, "md": path}.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DfbenchError(f"Leaderboard output {out_dir} is a file; pass a directory with --out.")
    reference = load_reference() if reference is None else reference
    sections, long_table = build_sections(results, reference)
    coverage = [coverage_section(reference)] if not reference.empty else []
    html = _environment().get_template("leaderboard.html").render(sections=sections, coverage=coverage)
    paths = {
        "html": out_dir / "leaderboard.html",
        "csv": out_dir / "leaderboard.csv",
        "md": out_dir / "leaderboard.md",
    }
    atomic_write_bytes(paths["html"], html.encode("utf-8"))
    atomic_write_bytes(paths["csv"], long_table.to_csv(index=False).encode("utf-8"))
    atomic_write_bytes(paths["md"], _render_markdown(sections, coverage).encode("utf-8"))
    return paths
