"""Which of the five papers' printed numbers dfbench has a cell for (``dfbench papers``).

A printed number (one row of the shipped reference CSV) is *covered* when a shipped protocol
declares, in its ``paper_cells:``, a cell that reproduces it (same paper table, training and
test data and quality, perturbation, level; a metric the protocol computes) and a registered
detector names the paper's method in its ``paper_methods``. The backbone is chosen per run
(``--backbone``); a paper backbone that is not a timm model cannot be run, so its numbers are
not covered. Every uncovered number gets one reason; the report groups them by reason.
A paper's "Avg" number is covered like any other, by a paper cell on a protocol's derived
column (``averages:``); uncovered, its reason is its row's (method, backbone, training data)
or else names the columns it spans that have no dfbench cell.

Everything here reads declarations (protocol YAML, detector registrations, the CSV); nothing
is keyed by a protocol's or detector's name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pandas as pd

# Tables of the five papers with no number in the reference CSV, and why (MISSING.md).
TABLES_WITHOUT_NUMBERS: dict[tuple[str, str], str] = {
    ("two_gen_bat", "VII"): "not face-forgery detection: ImageNet adversarial-attack accuracy",
    ("two_gen_bat", "XII"): "not face-forgery detection: ImageNet attack, kernel size",
    ("two_gen_bat", "XIII"): "not face-forgery detection: ImageNet attack, sigma initialisation",
    ("two_gen_bat", "XIV"): "not face-forgery detection: ImageNet attack",
    ("pbnet", "I"): "numbers lost in the text conversion (image-only table)",
    ("pbnet", "II"): "list of symbols, no results",
    ("pbnet", "VI"): "numbers lost in the text conversion (image-only table)",
    ("pbnet", "IX"): "numbers lost in the text conversion (image-only table)",
    ("pbnet", "XI"): "numbers lost in the text conversion (caption included)",
}

# Why a whole table's uncovered numbers are uncovered, where the generic reasons below would
# mislead (the paper leaves the setting open, or the model is of another kind).
TABLE_REASONS: dict[tuple[str, str], str] = {
    ("two_gen_bat", "text (Sec. IV-A)"): "setting not implemented: multi-frame TSN model (dfbench detectors score single frames)",
    ("pbnet", "X"): "setting not stated: the paper does not say which FF++ manipulation Table X uses",
    ("pbnet", "IV"): "setting not stated: the numbers follow ADD's setting [44]; no training quality, and no backbone for PBNet, is printed",
    ("pim", "II"): "setting not implemented: perturbing a trained model's first-stage feature statistics at test time (mean x1.2, variance x0.65), a model-internal operation, not an input perturbation",
    ("pim", "III"): "setting not implemented: perturbing a trained model's first-stage feature statistics at test time (mean x1.2, variance x0.65), a model-internal operation, not an input perturbation",
}

# The reference CSV's dataset names → the dataset adapter that reads them.
DATASET_ADAPTERS: dict[str, str] = {
    "FF++": "ffpp",
    "FF++/DF": "ffpp",
    "FF++/F2F": "ffpp",
    "FF++/FS": "ffpp",
    "FF++/NT": "ffpp",
    "FF++/FSH": "ffpp",
    "FF++-real+SBI": "ffpp",  # FF++ reals + their self-blended pseudo-fakes (synthesis: self_blended)
    "DFD": "ffpp",  # DeepFakeDetection ships inside FaceForensics++
    "CDF": "celebdf",
    "CDFv2": "celebdf",
    "DFDCP": "dfdcp",
    "DFDC": "dfdc",
    "WDF": "wdf",
    "FFIW10K": "ffiw10k",
    "UADFV": "uadfv",
    "DT-LQ": "dftimit",  # DF-TIMIT low quality: the dftimit adapter's LQ fakes and the VidTIMIT reals
    "DT-HQ": "dftimit",  # DF-TIMIT high quality: its HQ fakes and the same reals
}

# The papers' backbone names → timm model names (None: not a timm model, cannot be run).
PAPER_BACKBONES: dict[str, str | None] = {
    "EfficientNet": "efficientnet_b4",  # two_gen_bat does not say which; B4 is the DFDC-winning size
    "EfficientNet-B0": "efficientnet_b0",
    "EfficientNet-B1": "efficientnet_b1",
    "EfficientNet-B4": "efficientnet_b4",
    "Xception": "legacy_xception",
    "ResNet-18": "resnet18",
    "ResNet-34": "resnet34",
    "ResNet-50": "resnet50",
    "DenseNet-121": "densenet121",
    "VGG16": "vgg16",
    "ConvNeXt-base": "convnext_base",
    "AlexNet": None,
    "MesoInception4": None,
    "F3-Net": None,
    "TSN": None,
    # two_gen_bat Table VI's other base models: attention-based architectures of their own papers
    "Stehouwer et al.": None,
    "Zhao et al. (MAT)": None,
}

# How the reference CSV names a table's column average (``test_data``).
AVERAGE_COLUMN = "Avg"

# Counts every result row carries beside its metrics (benchmark.metrics.error_counts).
ROW_COUNTS = frozenset({"fp", "fn"})


@dataclass(frozen=True)
class Cover:
    protocol: str
    preset: str
    detectors: tuple[str, ...]


@dataclass
class TableCoverage:
    paper: str
    table: str
    printed: int
    covered: int
    by: list[str] = field(default_factory=list)  # "protocol (preset): detector, ..."
    uncovered: list[tuple[str, int]] = field(default_factory=list)  # (reason, numbers)


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value).strip()  # NaN != NaN


def detector_paper_methods() -> dict[str, tuple[str, ...]]:
    """Registered detector → the paper method names its registration declares."""
    import dfbench.detectors  # noqa: F401  (registers every detector)
    from dfbench.detectors.base import DETECTORS

    return {name: tuple(DETECTORS.meta(name).get("paper_methods", ())) for name in DETECTORS.names()}


def detector_variant_methods() -> dict[str, dict[str, tuple[str, ...]]]:
    """Registered detector → {result-row variant → paper method names}, for detectors whose
    rows of different variants are different paper methods (``variant_methods``)."""
    import dfbench.detectors  # noqa: F401  (registers every detector)
    from dfbench.detectors.base import DETECTORS

    out = {}
    for name in DETECTORS.names():
        per_variant = DETECTORS.meta(name).get("variant_methods")
        if per_variant:
            out[name] = {str(k): tuple(v) for k, v in per_variant.items()}
    return out


def claims(names: tuple[str, ...], paper: str, method: str) -> bool:
    """Whether a detector declaring ``names`` is the paper's ``method``.

    A name is a method as the reference CSV prints it, or ``"<paper>:<method>"`` for a name that
    means this recipe in one paper only (pbnet prints its frozen detector as "ERM").
    """
    return method in names or f"{paper}:{method}" in names


@cache  # the shipped YAMLs do not change while dfbench runs; parsing them all takes seconds
def _protocols() -> tuple[Any, ...]:
    from dfbench.benchmark.protocol import list_protocols, load_protocol

    return tuple(load_protocol(name) for name in list_protocols())


def _backbone_reason(backbone: str) -> str | None:
    if not backbone or backbone not in PAPER_BACKBONES:
        return None  # unstated, or a method's own name (other papers' methods)
    if PAPER_BACKBONES[backbone] is None:
        return f"backbone not available (not a timm model): {backbone}"
    return None


def _uncovered_reason(
    row: dict[str, Any], claimed: bool, metrics: set[str], columns: Sequence[tuple[str, bool]] = ()
) -> str:
    """Why one printed number has no dfbench cell. ``columns``: for an "Avg" number, the
    (test_data, covered) of the printed columns it averages (``average_columns``)."""
    key = (_text(row.get("paper")), _text(row.get("table")))
    if key in TABLE_REASONS:
        return TABLE_REASONS[key]
    metric = _text(row.get("metric"))
    if metric not in metrics:
        return f"metric not computed: {metric}"
    average = _text(row.get("test_data")) == AVERAGE_COLUMN
    from dfbench.datasets import list_datasets

    adapters = set(list_datasets())
    for role in ("train_data",) if average else ("train_data", "test_data"):
        name = _text(row.get(role))
        if name and DATASET_ADAPTERS.get(name) not in adapters:
            return f"no dataset adapter: {name}"
    compressed = None if average else _compressed_version_missing(row)
    if compressed:
        return compressed
    method = _text(row.get("method"))
    if not claimed:
        return f"method not in dfbench: {method}"
    backbone = _backbone_reason(_text(row.get("backbone")))
    if backbone:
        return backbone
    if average:
        missing = [name for name, covered in columns if not covered]
        if missing:
            return f"column average over columns without a dfbench cell: {', '.join(missing)}"
        return "column average: no protocol declares it (averages: + paper_cells)"
    setting = " ".join(
        t
        for t in (
            _text(row.get("train_data")) or "?",
            _text(row.get("train_quality")),
            "->",
            _text(row.get("test_data")) or "?",
            _text(row.get("test_quality")),
            _text(row.get("perturbation")),
        )
        if t
    )
    return f"setting not implemented: {setting}"


def _compressed_version_missing(row: dict[str, Any]) -> str | None:
    """A paper that re-compresses a single-quality dataset itself (qad: Celeb-DF v2 and FFIW10K
    at c23 and c40) asks for a quality the dataset does not ship. dfbench re-encodes a
    single-quality video dataset to c23/c40 itself (``preprocess.reencode``); only a dataset
    it cannot re-encode (face-crop archives, or several qualities without c23) lacks them."""
    from dfbench.benchmark.preprocess.reencode import offered_qualities
    from dfbench.datasets.base import DATASETS

    for data, quality in (("train_data", "train_quality"), ("test_data", "test_quality")):
        name, wanted = _text(row.get(data)), _text(row.get(quality))
        adapter = DATASET_ADAPTERS.get(name)
        if not adapter or wanted not in ("c23", "c40", "mixed"):
            continue
        have = offered_qualities(DATASETS.get(adapter))
        if "c23" not in have:
            return f"no compressed version: {name} ships at {'/'.join(have)} only and cannot be re-encoded to c23/c40"
    return None


def average_columns(reference: pd.DataFrame, covered: list[bool]) -> dict[int, list[tuple[str, bool]]]:
    """For each "Avg" number (by position): the printed columns of its row, (test_data, covered).

    A paper's Avg spans the columns its row prints, checked by hand for every table with one
    (two_gen_bat I/IV/VIII/X/XV: six AUC columns, five ACC columns as DFD prints no ACC; pim
    IV/VI-IX: the four cross-dataset columns; big_arts 1/4-6: all seven; qad 1-3, 5: all
    seven, fewer where a method prints fewer; tests/test_paper_mapping.py checks the declared
    ones). The row: the same paper, table, method, backbone, perturbation, metric and level,
    and the Avg's training data and quality where it states them (qad's Avg states none:
    each of its columns has its own training).
    """
    key = ("paper", "table", "method", "backbone", "perturbation", "metric", "level")
    records = reference.to_dict("records")
    rows: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(records):
        rows.setdefault(tuple(_text(row.get(k)) for k in key), []).append(i)
    out: dict[int, list[tuple[str, bool]]] = {}
    for members in rows.values():
        for i in members:
            if _text(records[i].get("test_data")) != AVERAGE_COLUMN:
                continue
            # the Avg states the training its columns share; "" where each column has its own (qad)
            train = [(k, _text(records[i].get(k))) for k in ("train_data", "train_quality")]
            out[i] = [
                (_text(records[j].get("test_data")), covered[j])
                for j in members
                if _text(records[j].get("test_data")) != AVERAGE_COLUMN
                and all(not value or _text(records[j].get(k)) == value for k, value in train)
            ]
    return out


def coverage_rows(reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """The reference CSV with, per printed number, ``covered``, ``covered_by`` and ``reason``."""
    if reference is None:
        from dfbench.benchmark.leaderboard import load_reference

        reference = load_reference()
    methods = detector_paper_methods()
    protocols = _protocols()
    all_metrics = {m for spec in protocols for m in spec.metrics} | ROW_COUNTS
    covered, covered_by, reasons, cover_lists, claimed = [], [], [], [], []
    records = reference.to_dict("records")
    for row in records:
        method = _text(row.get("method"))
        metric = _text(row.get("metric"))
        claimed_by = tuple(d for d, names in methods.items() if claims(names, _text(row.get("paper")), method))
        covers: list[Cover] = []
        if _backbone_reason(_text(row.get("backbone"))) is None:
            for spec in protocols:
                if metric not in set(spec.metrics) | ROW_COUNTS:
                    continue
                cells = [c for c in spec.paper_cells if c.reports(row)]
                if not cells:
                    continue
                allowed = [c for c in cells if c.methods is None or method in c.methods]
                detectors = claimed_by if allowed else ()
                if detectors:
                    preset = "paper" if "paper" in (spec.raw.get("presets") or {}) else "mini"
                    covers.append(Cover(spec.name, preset, detectors))
        covered.append(bool(covers))
        cover_lists.append(covers)
        covered_by.append("; ".join(f"{c.protocol} ({c.preset}): {', '.join(c.detectors)}" for c in covers))
        claimed.append(bool(claimed_by))
    columns = average_columns(reference, covered)
    for i, row in enumerate(records):
        reasons.append("" if covered[i] else _uncovered_reason(row, claimed[i], all_metrics, columns.get(i, [])))
    out = reference.copy()
    out["covered"] = covered
    out["covered_by"] = covered_by
    out["reason"] = reasons
    out["covers"] = cover_lists  # the same as Cover records, for summarize_coverage
    return out


def summarize_coverage(rows: pd.DataFrame) -> list[TableCoverage]:
    """One entry per paper table (CSV order), plus the tables that print no extractable number."""
    out: list[TableCoverage] = []
    for (paper, table), part in rows.groupby(["paper", "table"], sort=False):
        entry = TableCoverage(str(paper), str(table), len(part), int(part["covered"].sum()))
        detectors: dict[tuple[str, str], dict[str, None]] = {}
        for covers in part["covers"]:
            for cover in covers:
                detectors.setdefault((cover.protocol, cover.preset), {}).update(dict.fromkeys(cover.detectors))
        entry.by = [f"{protocol} ({preset}): {', '.join(names)}" for (protocol, preset), names in detectors.items()]
        entry.uncovered = sorted(Counter(r for r in part["reason"] if r).items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(entry)
    for (paper, table), reason in TABLES_WITHOUT_NUMBERS.items():
        out.append(TableCoverage(paper, table, 0, 0, uncovered=[(reason, 0)]))
    order = list(dict.fromkeys(rows["paper"]))
    return sorted(out, key=lambda e: order.index(e.paper) if e.paper in order else len(order))


def render_coverage(tables: list[TableCoverage], *, details: bool = True) -> str:
    """The ``dfbench papers`` text: per paper and table, covered / printed, then why not."""
    lines: list[str] = []
    total = sum(t.printed for t in tables)
    done = sum(t.covered for t in tables)
    papers = list(dict.fromkeys(t.paper for t in tables))
    whose = "the five papers" if len(papers) == 5 else ", ".join(papers)
    lines.append(f"dfbench has a cell for {done} of the {total} numbers {whose} print ({_pct(done, total)}).")
    paper = None
    for t in tables:
        if t.paper != paper:
            paper = t.paper
            p_total = sum(x.printed for x in tables if x.paper == paper)
            p_done = sum(x.covered for x in tables if x.paper == paper)
            lines += ["", f"{paper}: {p_done} / {p_total}"]
        lines.append(f"  {_table_name(t.table):22s} {t.covered:4d} / {t.printed:4d}")
        if details:
            lines += [f"      reproduced by {b}" for b in t.by]
            lines += [f"      not covered ({n}): {reason}" if n else f"      no numbers: {reason}" for reason, n in t.uncovered]
    return "\n".join(lines) + "\n"


def _table_name(table: str) -> str:
    return table if table.startswith(("Table", "text")) else f"Table {table}"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "n/a"
