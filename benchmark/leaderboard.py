"""The leaderboard: HTML, CSV and Markdown tables from the long-form results table only.

Per protocol, tables follow the papers' layout: one row per detector (× variant) × backbone,
columns test cell × metric (AUC, ACC), one table for video-level and one for frame-level
metrics, each cell "mean ± std over seeds" with the mean per-seed 95% bootstrap interval.
Below each of our detectors come the numbers the papers print for the same method in the
tables that protocol reproduces, matched cell by cell through the small declarative mapping
below (protocol → paper tables, detector → paper method names, test-cell vocabulary → the
reference CSV's test_data/test_quality/perturbation). Anything unmapped simply has no paper
row. Every table states which data its numbers came from.

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
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from dfbench.benchmark.errors import DfbenchError
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


# --------------------------------------------------------------------------- declarative mapping
@dataclass(frozen=True)
class ProtocolPaperMap:
    """Which paper tables a protocol reproduces, and the dataset a cell means when it names none."""

    tables: tuple[tuple[str, str], ...]  # (paper, table) as in the reference CSV
    default_test_data: str | None = None  # e.g. cross_quality cells "raw->c40" are FF++/NT
    # CSV fields a paper row leaves empty but that table's text settles (QAD Table 4 prints no
    # dataset; its notes place it on FF++/NT, quality-agnostic): applied to paper rows only
    paper_unstated: tuple[tuple[str, str], ...] = ()

    def complete(self, paper: Mapping[str, Any]) -> Mapping[str, Any]:
        """A paper row with the fields it leaves empty filled from ``paper_unstated``."""
        missing = {k: v for k, v in self.paper_unstated if not _text(paper.get(k))}
        return {**paper, **missing} if missing else paper


PROTOCOL_TABLES: dict[str, ProtocolPaperMap] = {
    # two_gen_bat: EfficientNet tables I-V, their Xception counterparts VIII-XI.
    "cross_manipulation": ProtocolPaperMap(
        (("two_gen_bat", "I"), ("two_gen_bat", "IV"), ("two_gen_bat", "VIII"), ("two_gen_bat", "X"))
    ),
    "cross_quality": ProtocolPaperMap(
        (("two_gen_bat", "II"), ("two_gen_bat", "V"), ("two_gen_bat", "IX"), ("two_gen_bat", "XI")),
        default_test_data="FF++/NT",
    ),
    "all_qualities": ProtocolPaperMap((("two_gen_bat", "III"),), default_test_data="FF++/NT"),
    "cross_dataset": ProtocolPaperMap(
        (("pim", "IV"), ("pim", "V"), ("pim", "VIII"), ("big_arts", "Table 4")), default_test_data=None
    ),
    "partial_manipulation": ProtocolPaperMap((("big_arts", "Table 7"),), default_test_data="CDF"),
    "laundering": ProtocolPaperMap((("big_arts", "Table 8"),), default_test_data="CDF"),
    "quality_agnostic": ProtocolPaperMap(
        (("qad", "Table 1"), ("qad", "Table 2"), ("qad", "Table 3")), default_test_data="FF++/NT"
    ),
    "qad_ablation": ProtocolPaperMap(
        (("qad", "Table 4"),),
        default_test_data="FF++/NT",
        paper_unstated=(("test_data", "FF++/NT"), ("test_quality", "mixed")),
    ),
    "compression_remedy": ProtocolPaperMap((("pbnet", "III"), ("pbnet", "X")), default_test_data="FF++/NT"),
}

# Registered detector name → the method names the papers print for that recipe.
DETECTOR_METHODS: dict[str, tuple[str, ...]] = {
    "erm": ("ERM",),
    "aug_noise": ("Gaussian Noise",),
    "aug_blur": ("Gaussian Blur",),
    "aug_jpeg": ("JPEG Compression",),
    "aug_combined": ("Combined Traditional",),
    "grad_aat": ("Grad-AAT",),
    "grad_sat": ("Grad-SAT",),
    "grad_bat": ("Grad-BAT",),
    "gen_bat": ("Gen-BAT",),
    "two_gen_bat": ("Two-Gen-BAT",),
    "combined_at": ("Combined AT",),
    # PBNet's tables print the frozen detector (RECG ×) as ERM beside it with the bleach (✓)
    "pbnet": ("PBNet", "ERM"),
    "pim": ("PIM",),
    # PIM Table VIII: SAM is DualFlat with α=0, β=1; our DualFlat default is the balanced α:β.
    "sam": ("DualFlat (a+b=1.0, a:b=0.0:1.0)",),
    "dualflat": ("DualFlat (a+b=1.0, a:b=0.5:0.5)",),
    "big_arts": ("BiG-Arts",),
    "qad": ("QAD",),
    # QAD Table 4 (loss ablation) method names
    "qad_pairwise": ("Coll. loss: Pairwise",),
    "qad_hsic_only": ("Coll. loss: HSIC",),
    "qad_awp_only": ("Adv. loss: AWP-XE",),
}

# Dataset words a test cell or a row's test_data may use → the reference CSV's test_data.
DATA_ALIASES: dict[str, str] = {
    "nt": "FF++/NT",
    "neuraltextures": "FF++/NT",
    "df": "FF++/DF",
    "deepfakes": "FF++/DF",
    "f2f": "FF++/F2F",
    "face2face": "FF++/F2F",
    "fs": "FF++/FS",
    "faceswap": "FF++/FS",
    "fsh": "FF++/FSH",
    "faceshifter": "FF++/FSH",
    "ffpp": "FF++",
    "ff++": "FF++",
    "faceforensics": "FF++",
    "cdf": "CDF",
    "celebdf": "CDF",
    "celeb-df": "CDF",
    "cdfv2": "CDFv2",
    "dfdcp": "DFDCP",
    "dfdc": "DFDC",
    "wdf": "WDF",
    "wilddeepfake": "WDF",
    "dfd": "DFD",
    "deepfakedetection": "DFD",
}
_KNOWN_DATA = frozenset(DATA_ALIASES.values())
# The CSV writes Celeb-DF as "CDF" (version not stated) or "CDFv2"; both mean our Celeb-DF cell.
DATA_EQUIVALENTS: dict[str, tuple[str, ...]] = {"CDF": ("CDF", "CDFv2"), "CDFv2": ("CDFv2", "CDF")}
QUALITY_ALIASES: dict[str, str] = {
    "raw": "raw",
    "c0": "raw",
    "c23": "c23",
    "hq": "c23",
    "c40": "c40",
    "lq": "c40",
    "mixed": "mixed",
    "all": "mixed",
}
# Perturbation family words → one canonical family (CSV "crf=5" is family "crf", strength 5).
PERTURBATION_ALIASES: dict[str, str] = {
    "h264": "crf",
    "h264_crf": "crf",
    "crf": "crf",
    "random_jpeg": "jpeg_random",
    "jpeg_random": "jpeg_random",
}
# CSV perturbation labels that describe the test setting rather than an applied perturbation.
DESCRIPTIVE_PERTURBATIONS = frozenset({"video_compression"})


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


# --------------------------------------------------------------------------- cell matching
@dataclass(frozen=True)
class CellSpec:
    """What a column of ours means in the reference CSV's vocabulary (None = not stated)."""

    train_data: str | None
    train_quality: str | None
    test_data: str | None
    test_quality: str | None
    perturbation: str | None
    strength: float | None


def _norm_data(word: str) -> str | None:
    word = word.strip()
    if not word:
        return None
    lowered = word.lower()
    if lowered in DATA_ALIASES:
        return DATA_ALIASES[lowered]
    # "ffpp/NT", "FF++/nt", "ffpp_nt": a FaceForensics++ method written with its dataset.
    match = re.fullmatch(r"(?:ffpp|ff\+\+)[/_:-](\w+)", lowered)
    if match and match.group(1) in DATA_ALIASES:
        return DATA_ALIASES[match.group(1)]
    return word


def _norm_quality(word: str) -> str | None:
    return QUALITY_ALIASES.get(word.strip().lower()) if word.strip() else None


def _norm_perturbation(text: str) -> tuple[str | None, float | None]:
    """(family, strength-from-text) with "partial:" prefixes and aliases removed."""
    text = text.strip().lower()
    if not text:
        return None, None
    text = re.sub(r"^partial[:_-]", "", text)
    strength: float | None = None
    if "=" in text:
        name, _, raw = text.partition("=")
        text = name.strip()
        try:
            strength = float(raw)
        except ValueError:
            strength = None
    return PERTURBATION_ALIASES.get(text, text), strength


def _parse_cell_name(name: str) -> tuple[str | None, str | None, list[str]]:
    """(dataset, quality, leftover words) from a cell name such as "NT/raw", "CDF", "DF/c23"."""
    data: str | None = None
    quality: str | None = None
    leftover: list[str] = []
    # Keep "FF++" whole; split on "/", whitespace and "·".
    for token in (t for t in re.split(r"[/\s·]+", name) if t):
        q = _norm_quality(token)
        d = _norm_data(token) if token.lower() in DATA_ALIASES else None
        if q is not None and quality is None:
            quality = q
        elif d is not None:
            # "ffpp/NT": the method is more specific than the dataset it belongs to.
            if data is None or (data == "FF++" and d.startswith("FF++/")):
                data = d
        else:
            leftover.append(token)
    return data, quality, leftover


def _norm_qualities(text: str) -> str | None:
    """One quality, or "mixed" for several joined with "+" ("raw+c23+c40"); None when unstated."""
    parts = [p for p in text.split("+") if p.strip()]
    if len(parts) > 1:
        return "mixed"
    return _norm_quality(parts[0]) if parts else None


# DataSpec.describe() in the runner's rows: "<dataset>:<methods joined by +>@<qualities joined by +>",
# several specs joined by "+" ("ffpp:NeuralTextures@raw+ffpp:Deepfakes@raw").
_DESCRIBED = re.compile(r"([A-Za-z0-9_-]+):([^@]*)@([A-Za-z0-9]+(?:\+(?![A-Za-z0-9_-]+:)[A-Za-z0-9]+)*)")


def _parse_data_text(text: str) -> tuple[str | None, str | None]:
    """(dataset, quality) in the CSV's vocabulary from a row's train_data/test_data text."""
    specs = _DESCRIBED.findall(text)
    if not specs:
        return (_norm_data(text) if text else None), None
    datasets: list[str] = []
    qualities: list[str | None] = []
    for dataset, methods, quality in specs:
        name = DATA_ALIASES.get(dataset.lower(), dataset)
        method_list = [m for m in methods.split("+") if m and m != "all"]
        if name == "FF++" and len(method_list) == 1:
            name = DATA_ALIASES.get(method_list[0].lower(), name)
        datasets.append(name)
        qualities.append(None if quality == "all" else _norm_qualities(quality))
    unique = set(datasets)
    if len(unique) == 1:
        data: str | None = datasets[0]
    elif all(d.startswith("FF++") for d in unique):
        data = "FF++"  # several FF++ methods together: the FF++ test set as the papers name it
    else:
        data = None
    unique_q = set(qualities)
    quality_out = qualities[0] if len(unique_q) == 1 else "mixed"
    return data, quality_out


def column_spec(column: Mapping[str, Any], mapping: ProtocolPaperMap | None) -> CellSpec:
    """Translate one of our result columns (row fields) into the reference CSV's vocabulary.

    The row's train_/test_ data and quality fields win; the cell names ("NT/c23", "raw->c40",
    "CDF") fill what those leave unstated; the protocol's default dataset comes last.
    """
    test = _text(column.get("test"))
    arrow_train: str | None = None
    if re.search(r"->|→", test):  # "raw->c40": training quality -> test quality
        left, _, test = re.split(r"(->|→)", test, maxsplit=1)
        arrow_train = _norm_quality(left)
    name_data, name_quality, leftover = _parse_cell_name(test)
    train_name_data, train_name_quality, _ = _parse_cell_name(_text(column.get("training")))

    test_data, test_quality = _parse_data_text(_text(column.get("test_data")))
    test_data = test_data if test_data in _KNOWN_DATA else name_data or test_data
    if test_data is None and mapping is not None:
        test_data = mapping.default_test_data
    test_quality = test_quality or _norm_qualities(_text(column.get("test_quality"))) or name_quality

    train_data, train_quality = _parse_data_text(_text(column.get("train_data")))
    train_data = train_data if train_data in _KNOWN_DATA else train_name_data or train_data
    train_quality = (
        train_quality
        or _norm_qualities(_text(column.get("train_quality")))
        or arrow_train
        or train_name_quality
    )

    perturbation_text = _text(column.get("perturbation")) or (leftover[0] if len(leftover) == 1 else "")
    family, text_strength = _norm_perturbation(perturbation_text)
    strength = column.get("strength")
    strength = float(strength) if strength is not None and not pd.isna(strength) else text_strength
    return CellSpec(train_data, train_quality, test_data, test_quality, family, strength)


def _optional_equal(a: str | None, b: str | None) -> bool:
    """Equal, or one side does not state it (the CSV leaves unstated settings empty)."""
    return a is None or b is None or a == b


def paper_row_matches(paper: Mapping[str, Any], spec: CellSpec) -> bool:
    """Whether one reference-CSV row reports the cell ``spec`` describes."""
    paper_data = _text(paper.get("test_data"))
    if not paper_data or spec.test_data is None:
        return False
    if paper_data not in DATA_EQUIVALENTS.get(spec.test_data, (spec.test_data,)):
        return False
    if not _optional_equal(_norm_quality(_text(paper.get("test_quality"))), spec.test_quality):
        return False
    if not _optional_equal(_norm_quality(_text(paper.get("train_quality"))), spec.train_quality):
        return False
    # Training data must agree when both sides state it: a paper row trained on other data
    # (FF++ Deepfakes only, or FF++ reals + blended images) is a different experiment.
    if not _optional_equal(_text(paper.get("train_data")) or None, spec.train_data):
        return False
    raw = _text(paper.get("perturbation"))
    if raw in DESCRIPTIVE_PERTURBATIONS:
        raw = ""
    family, strength = _norm_perturbation(raw)
    if family is None:
        return spec.perturbation is None
    if family != spec.perturbation:
        return False
    return strength is None or (spec.strength is not None and math.isclose(strength, spec.strength))


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
    train_data: str
    train_quality: str
    values: dict[tuple[tuple[Any, ...], str], float]


def _paper_entries(
    reference: pd.DataFrame,
    mapping: ProtocolPaperMap | None,
    methods: tuple[str, ...],
    specs: Mapping[tuple[Any, ...], CellSpec],
    metrics: Iterable[str],
    level: str,
) -> list[_PaperEntry]:
    """Paper rows (one per paper × table × method × backbone × training data) that fill our columns."""
    if mapping is None or not methods or reference.empty:
        return []
    metrics = set(metrics)
    wanted = set(mapping.tables)
    several_train_data = len({spec.train_data for spec in specs.values()}) > 1
    entries: dict[tuple[str, ...], _PaperEntry] = {}
    for paper in reference.to_dict("records"):
        if (_text(paper.get("paper")), _text(paper.get("table"))) not in wanted:
            continue
        if _text(paper.get("method")) not in methods or _text(paper.get("metric")) not in metrics:
            continue
        paper_level = _text(paper.get("level")) or DEFAULT_LEVEL  # unstated level: the default view
        if paper_level != level:
            continue
        metric = _text(paper["metric"])
        value = _paper_fraction(float(paper["value"]), metric, _text(paper.get("notes")))
        # Where our columns state the training quality (cross_quality: "raw->c40"), the paper's
        # train quality is matched per column and its rows merge into one; otherwise papers rows
        # trained at different qualities stay separate rows, labelled with what they trained on.
        # Likewise for training data where our columns come from several trainings
        # (compression_remedy: "FS/c23 -> FS/c40", ...): one paper row per backbone.
        paper = mapping.complete(paper)
        for column, spec in specs.items():
            if not paper_row_matches(paper, spec):
                continue
            tq = "" if spec.train_quality else _text(paper.get("train_quality"))
            td = "" if spec.train_data and several_train_data else _text(paper.get("train_data"))
            group = (
                _text(paper["paper"]),
                _text(paper["table"]),
                _text(paper["method"]),
                _text(paper.get("backbone")),
                td,
                tq,
            )
            entry = entries.setdefault(group, _PaperEntry(*group, values={}))
            entry.values.setdefault((column, metric), value)
    return list(entries.values())


def _merge_identical(entries: list[_PaperEntry]) -> list[tuple[list[str], _PaperEntry]]:
    """Tables that reprint the same row (two_gen_bat I and IV) become one row citing both."""
    merged: list[tuple[list[str], _PaperEntry]] = []
    for entry in entries:
        for tables, kept in merged:
            same_row = (kept.paper, kept.method, kept.backbone, kept.train_data, kept.train_quality) == (
                entry.paper,
                entry.method,
                entry.backbone,
                entry.train_data,
                entry.train_quality,
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
    mapping = PROTOCOL_TABLES.get(protocol)
    columns = _column_order(frame)
    metrics = [m for m in DISPLAY_METRICS if (frame["metric"] == m).any()]
    multi_training = frame["training"].nunique() > 1
    labels = {c: _column_label(c, multi_training) for c in columns}
    records = frame.to_dict("records")
    specs: dict[tuple[Any, ...], CellSpec] = {}
    values: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        column = _col_key(record)
        specs.setdefault(column, column_spec(record, mapping))
        values.setdefault((*(record[k] for k in ROW_KEY), *column, record["metric"]), record)

    notes = [DATA_KIND_NOTES.get(data_kind, f"Data: {data_kind or 'unknown'} (data kind not recognised).")]
    notes.append(
        f"{level.capitalize()}-level metrics"
        + (" (video score = mean of its frame scores)" if level == "video" else "")
        + "; values in %, mean ± std over seeds, [mean of the per-seed 95% bootstrap interval bounds]"
        + ("; a test video that yielded no frames scores 0.5 and is counted (shown as 'N failed videos')."
           if level == "video" else ".")
    )
    if mapping is not None:
        cited = ", ".join(f"{p} {_table_label(p, t)}" for p, t in mapping.tables)
        notes.append(
            f"Paper rows: numbers as printed in {cited} (converted to %), with the paper's own backbone,"
            " data and schedule; a paper that states no level is shown in the video-level table."
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
        methods = DETECTOR_METHODS.get(str(detector), ())
        entries = _paper_entries(reference, mapping, methods, specs, metrics, level)
        for tables, entry in _merge_identical(entries):
            # paper rows sit right under the detector they belong to: "beside ours"
            source = f"paper: {entry.paper} {', '.join(tables)}"
            train = " ".join(t for t in (entry.train_data, entry.train_quality) if t)
            cells = [
                _pct(entry.values[(c, m)]) if (c, m) in entry.values else "" for c in columns for m in metrics
            ]
            table.rows.append(
                TableRow(
                    "paper",
                    [source, entry.method, f"trained on {train}" if train else "", entry.backbone, "", ""],
                    cells,
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
    mapping = PROTOCOL_TABLES.get(protocol)
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
            specs = {
                _col_key(r): column_spec(r, mapping)
                for r in part[part["detector"] == detector].to_dict("records")
            }
            for _, entry in _merge_identical(
                _paper_entries(
                    reference, mapping, DETECTOR_METHODS.get(str(detector), ()), specs, ("auc",), level
                )
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


def _render_markdown(sections: list[Section]) -> str:
    lines = ["# dfbench leaderboard", ""]
    if not sections:
        lines += ["No results stored yet.", ""]
    for section in sections:
        lines += [f"## {_md_escape(section.protocol)} (v{_md_escape(section.version)})", ""]
        lines += [f"> {_md_escape(n)}" for n in section.notes]
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


# --------------------------------------------------------------------------- entry point
def build_sections(results: pd.DataFrame, reference: pd.DataFrame) -> tuple[list[Section], pd.DataFrame]:
    """The leaderboard's content: sections per protocol and the long-form CSV table."""
    # An empty store (no columns at all) is a normal first state, not a schema error.
    rows = empty_results() if results.empty else normalize_rows(results)
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
    html = _environment().get_template("leaderboard.html").render(sections=sections)
    paths = {
        "html": out_dir / "leaderboard.html",
        "csv": out_dir / "leaderboard.csv",
        "md": out_dir / "leaderboard.md",
    }
    atomic_write_bytes(paths["html"], html.encode("utf-8"))
    atomic_write_bytes(paths["csv"], long_table.to_csv(index=False).encode("utf-8"))
    atomic_write_bytes(paths["md"], _render_markdown(sections).encode("utf-8"))
    return paths
