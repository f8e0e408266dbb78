"""Leaderboard: the three files, the papers' layouts (train × test matrix, test-set columns,
curves) with the papers' numbers in our cells, protocol order, escaping, the one allowed script,
30 detectors, CSV formulas, file modes, and a real browser (cell positions, sorting, screenshots)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from dfbench.benchmark.leaderboard import (
    CHART_MARGIN,
    CHART_SIZE,
    build_leaderboard,
    build_sections,
    load_reference,
)

EVIL = "<script>alert(1)</script>"
CHROMIUM = next((Path(p) for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
QUALITIES = ("raw", "c23", "c40")


def row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "protocol": "cross_quality",
        "protocol_version": "1",
        "variant": "",
        "backbone": "resnet18",
        "preset": "mini",
        "level": "video",
        "data_kind": "synthetic-mini",
        "train_data": "ffpp:NeuralTextures@raw",
        "test_data": "ffpp:NeuralTextures@raw",
    }
    base.update(fields)
    return base


def cross_quality_rows(detector: str, offset: float = 0.0) -> list[dict[str, object]]:
    rows = []
    for seed, jitter in ((0, -0.01), (1, 0.01)):
        for train in ("raw", "c23", "c40"):
            for test in ("raw", "c23", "c40"):
                for metric in ("auc", "acc"):
                    value = 0.7312 + offset + jitter if (train, test) == ("raw", "c40") else 0.9 + jitter
                    rows.append(
                        row(
                            detector=detector,
                            seed=seed,
                            training=train,
                            train_quality=train,
                            test=f"NT/{test}",
                            test_quality=test,
                            metric=metric,
                            value=value,
                            ci_low=value - 0.05,
                            ci_high=value + 0.05,
                        )
                    )
    return rows


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    rows = cross_quality_rows("two_gen_bat") + cross_quality_rows(EVIL, offset=-0.1)
    rows += [{**r, "level": "frame", "value": 0.5} for r in cross_quality_rows("two_gen_bat")]
    for seed in (0, 1):
        for strength in (5, 20, 30):
            rows.append(
                row(
                    protocol="laundering",
                    detector="big_arts",
                    seed=seed,
                    training="CDF",
                    test="CDF/h264",
                    test_data="celebdf:all@all",
                    train_data="celebdf:all@all",
                    perturbation="h264",
                    strength=strength,
                    metric="auc",
                    value=0.95 - strength / 100 + seed * 0.01,
                    data_kind="real",
                )
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def board(results: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_leaderboard(results, tmp_path_factory.mktemp("board"))


def matrix_rows(detector: str, base: float) -> list[dict[str, object]]:
    """cross_quality rows whose every train × test cell has its own value, stored in the
    reverse of protocol order: AUC = base + 0.1 · train index + 0.01 · test index (means over
    seeds ±0.005), ACC = AUC - 0.05. E.g. base 0.6: c40 → NT/raw AUC 80.00, raw → NT/c40 62.00."""
    rows = []
    for seed, jitter in ((0, -0.005), (1, 0.005)):
        for i, train in enumerate(QUALITIES):
            for j, test in enumerate(QUALITIES):
                auc = base + 0.1 * i + 0.01 * j + jitter
                for metric, value in (("auc", auc), ("acc", auc - 0.05)):
                    rows.append(
                        row(detector=detector, seed=seed, training=train, train_quality=train, test=f"NT/{test}",
                            test_quality=test, metric=metric, value=value, ci_low=value - 0.02, ci_high=value + 0.02)
                    )
    return rows[::-1]


def cross_dataset_rows(detector: str, base: float) -> list[dict[str, object]]:
    """cross_dataset rows (one training); AUC = base + 0.02 · test index, failed videos on DFDCP."""
    rows = []
    for seed, jitter in ((0, -0.01), (1, 0.01)):
        for j, test in enumerate(("FF++", "CDF", "DFDCP", "DFDC", "WDF")):
            value = base + 0.02 * j + jitter
            rows.append(
                row(protocol="cross_dataset", detector=detector, seed=seed, training="FF++/c23", test=test,
                    metric="auc", value=value, ci_low=value - 0.03, ci_high=value + 0.03,
                    n_failed=2 if test == "DFDCP" else 0, data_kind="synthetic-mini")
            )
    return rows[::-1]


def laundering_rows(detector: str) -> list[dict[str, object]]:
    rows = []
    for seed in (0, 1):
        for strength in (5, 20, 30):
            rows.append(
                row(protocol="laundering", detector=detector, seed=seed, training="CDF", test="CDF/h264",
                    test_data="celebdf:all@all", train_data="celebdf:all@all", perturbation="h264",
                    strength=strength, metric="auc", value=0.95 - strength / 100 + seed * 0.01, data_kind="real")
            )
    return rows


def test_writes_html_csv_and_markdown(board: dict[str, Path]) -> None:
    assert set(board) == {"html", "csv", "md"}
    for path in board.values():
        assert path.is_file() and path.stat().st_size > 0
    assert not list(board["html"].parent.glob("*.tmp"))


def test_outputs_are_readable_by_others_as_the_umask_allows(results: pd.DataFrame, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        paths = build_leaderboard(results, tmp_path / "shared", reference=pd.DataFrame())
        assert {stat.S_IMODE(p.stat().st_mode) for p in paths.values()} == {0o644}
        os.umask(0o077)
        paths = build_leaderboard(results, tmp_path / "private", reference=pd.DataFrame())
        assert {stat.S_IMODE(p.stat().st_mode) for p in paths.values()} == {0o600}
    finally:
        os.umask(old)


def _table_lines(md: str, title: str) -> list[str]:
    """The Markdown lines of the table whose heading starts with ``title``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line.startswith("|")]


def _legend(md: str, title: str) -> dict[str, str]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return dict(m.groups() for line in lines[start:end] if (m := re.match(r"\[(\d+)\] (.*?)\s*$", line)))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_tables_hold_our_numbers_with_the_papers_in_the_same_cell(board: dict[str, Path]) -> None:
    md = board["md"].read_text()
    video = _table_lines(md, "cross_quality (v1) — video-level")
    headers = _cells(video[0])
    assert headers[:6] == ["detector", "variant", "backbone", "preset", "seeds", "training"]
    # ours: raw->c40 AUC mean of 0.7212 and 0.7412 over two seeds, sample std 0.01414
    ours = next(_cells(line) for line in video if line.startswith("| two_gen_bat |") and "| raw |" in line)
    assert ours[headers.index("seeds")] == "0,1"
    assert ours[headers.index("NT/c40 AUC")] == "73.12 ± 1.41 [68.12, 78.12]"
    # two_gen_bat scores single frames: its numbers sit in the frame-level table only
    assert "paper[" not in "".join(video) and not _legend(md, "cross_quality (v1) — video-level")
    frame = _table_lines(md, "cross_quality (v1) — frame-level")
    headers = _cells(frame[0])
    raw = next(_cells(line) for line in frame if "| raw |" in line)
    # two_gen_bat Table II/V print Two-Gen-BAT (EfficientNet) raw->c40 AUC 72.18, ACC 61.87,
    # reprinted rows merged into one legend entry citing both tables
    legend = _legend(md, "cross_quality (v1) — frame-level")
    mark = next(k for k, v in legend.items() if v == "two_gen_bat Table II, Table V: Two-Gen-BAT, EfficientNet")
    assert raw[headers.index("NT/c40 AUC")].startswith("50.00 ± 0.00 [68.12, 78.12] · ")
    assert f"paper[{mark}] 72.18" in raw[headers.index("NT/c40 AUC")]
    assert f"paper[{mark}] 61.87" in raw[headers.index("NT/c40 ACC")]
    c40 = next(_cells(line) for line in frame if "| c40 |" in line)
    assert f"paper[{mark}] 90.58" in c40[headers.index("NT/raw AUC")]  # Table II, C40 -> Raw

    csv = pd.read_csv(board["csv"])
    mapped = csv[
        (csv["source"] == "paper")
        & (csv["paper_method"] == "Two-Gen-BAT")
        & (csv["test"] == "NT/c40")
        & (csv["training"] == "raw")
    ]
    assert set(mapped["paper_backbone"]) == {"EfficientNet", "Xception"}
    assert set(mapped["level"]) == {"frame"}
    eff = mapped[(mapped["paper_backbone"] == "EfficientNet") & (mapped["metric"] == "auc")]
    assert eff["mean"].item() == pytest.approx(0.7218)
    ours_csv = csv[
        (csv["source"] == "dfbench")
        & (csv["detector"] == "two_gen_bat")
        & (csv["test"] == "NT/c40")
        & (csv["training"] == "raw")
        & (csv["level"] == "video")
    ]
    assert ours_csv.loc[ours_csv["metric"] == "auc", "mean"].item() == pytest.approx(0.7312)
    # a detector whose registration names no paper method gets no paper number
    assert csv.loc[csv["source"] == "paper", "detector"].eq(EVIL).sum() == 0


def test_matrices_follow_protocol_order_not_storage_order(tmp_path: Path) -> None:
    rows = matrix_rows("erm", 0.6)  # stored c40 first, NT/c40 first
    md = build_leaderboard(pd.DataFrame(rows), tmp_path, reference=pd.DataFrame())["md"].read_text()
    lines = _table_lines(md, "cross_quality (v1) — video-level")
    headers = _cells(lines[0])
    assert headers[6:] == ["NT/raw AUC", "NT/raw ACC", "NT/c23 AUC", "NT/c23 ACC", "NT/c40 AUC", "NT/c40 ACC"]
    body = [_cells(line) for line in lines[2:]]
    assert [r[5] for r in body] == ["raw", "c23", "c40"]
    # c40 -> NT/raw: 0.6 + 0.2 + 0.00; raw -> NT/c40: 0.6 + 0.00 + 0.02 (hand values)
    assert body[2][6].startswith("80.00 ± 0.71 [78.00, 82.00]")
    assert body[0][10].startswith("62.00 ± 0.71")
    assert body[1][8].startswith("71.00")


def test_one_row_per_detector_for_test_set_columns(tmp_path: Path) -> None:
    rows = cross_dataset_rows("erm", 0.7)
    md = build_leaderboard(pd.DataFrame(rows), tmp_path)["md"].read_text()
    lines = _table_lines(md, "cross_dataset (v1) — video-level")
    headers = _cells(lines[0])
    # the YAML's order; the derived Avg column (averages:) after the tests
    assert headers[5:] == ["FF++ AUC", "CDF AUC", "DFDCP AUC", "DFDC AUC", "WDF AUC", "Avg AUC"]
    assert len(lines) == 3  # header, rule, one row
    ours = _cells(lines[2])
    legend = _legend(md, "cross_dataset (v1) — video-level")
    # pim Table IV (without augmentation) prints ERM, ResNet-50: CDFv2 75.00, DFDCP 69.18
    mark = next(k for k, v in legend.items() if v.startswith("pim Table IV") and "ERM, ResNet-50" in v)
    assert ours[headers.index("CDF AUC")].startswith("72.00 ± 1.41 [69.00, 75.00]")
    assert f"paper[{mark}] 75.00" in ours[headers.index("CDF AUC")]
    assert ours[headers.index("DFDCP AUC")].startswith("74.00 ± 1.41 [71.00, 77.00] (2 failed videos at 0.5)")
    assert f"paper[{mark}] 69.18" in ours[headers.index("DFDCP AUC")]
    assert "paper[" not in ours[headers.index("FF++ AUC")] or "Table V" in "".join(legend.values())
    # Avg = mean of CDF, DFDCP, DFDC, WDF per seed: seed 0 (71 + 73 + 75 + 77) / 4 = 74, seed 1 76;
    # no bootstrap interval (a mean of four AUCs has none); DFDCP's failed videos carried over;
    # beside it pim Table IV's ERM ResNet-50 Avg, 69.64
    assert ours[headers.index("Avg AUC")].startswith("75.00 ± 1.41 (2 failed videos at 0.5)")
    assert f"paper[{mark}] 69.64" in ours[headers.index("Avg AUC")]


def test_every_table_names_its_data(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    # cross_quality video + frame (synthetic), laundering video (real), paper coverage
    assert html.count("<table") == 4
    frame_table = html[html.index("cross_quality (v1) — frame-level") :].split("</table>")[0]
    assert '<span class="m">50.00</span><span class="s">± 0.00</span>' in frame_table
    assert 'title="two_gen_bat Table II, Table V: Two-Gen-BAT, EfficientNet">paper<sup>1</sup> 72.18' in frame_table
    assert "synthetic mini benchmark — pipeline check, not a claim about real deepfakes" in html
    assert "Data: real datasets" in html


def test_cells_are_coloured_on_the_scale() -> None:
    from dfbench.benchmark.leaderboard import _colour

    assert _colour(0.5, "auc") == _colour(0.3, "auc") == "hsl(0, 70%, 82%)"
    assert _colour(0.75, "acc") == "hsl(60, 70%, 82%)"
    assert _colour(1.0, "auc") == "hsl(120, 70%, 82%)"
    assert _colour(0.9, "logloss") == "" and _colour(None, "auc") == ""


def test_leaderboard_has_the_paper_coverage_section(board: dict[str, Path]) -> None:
    md = board["md"].read_text()
    assert "## paper coverage" in md
    line = next(line for line in _table_lines(md, "Printed numbers") if "| two_gen_bat | Table III |" in line)
    assert "| 14 / 14 |" in line and "all_qualities (paper)" in line


def test_laundering_curve_is_inline_svg_with_the_papers_points(results: pd.DataFrame, board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    assert "<img" not in html and "data:image/png" not in html
    assert html.count('<figure class="chart">') == 1 and html.count('role="img"') == 1
    sections, _ = build_sections(results, load_reference())
    (chart,) = next(s for s in sections if s.protocol == "laundering").charts
    ours, paper = chart.lines
    assert ours.label == "big_arts / resnet18 / mini" and not ours.paper
    assert paper.paper and paper.label == "paper: BiG-Arts, big_arts Table 8" and paper.colour == ours.colour
    # y axis 50..100 % (lowest point 0.655 - 0.007 floors to 0.6, the axis starts at 0.5 or lower)
    top, bottom = CHART_MARGIN[1], CHART_SIZE[1] - CHART_MARGIN[3]
    assert [p.y for p in paper.points] == pytest.approx(
        [bottom - (v - 0.5) / 0.5 * (bottom - top) for v in (0.9979, 0.9929, 0.8814)]  # CRF 5, 20, 30
    )
    assert [p.x for p in ours.points] == [p.x for p in paper.points]
    assert ours.points[0].x == CHART_MARGIN[0] and ours.points[-1].x == CHART_SIZE[0] - CHART_MARGIN[2]
    # the table under the curve holds the same numbers: CRF 20 -> 99.29 beside ours
    md = board["md"].read_text()
    assert "CDF/h264 · h264=20" in md and "· paper[1] 99.29" in md


def test_each_curve_has_its_own_table_under_it(tmp_path: Path) -> None:
    jpeg = [{**r, "test": "CDF/jpeg", "perturbation": "jpeg", "strength": {5: 60, 20: 80, 30: 100}[r["strength"]]}
            for r in laundering_rows("erm")]
    rows = pd.DataFrame(laundering_rows("erm") + jpeg + cross_dataset_rows("erm", 0.7)[:1])
    sections, _ = build_sections(rows, pd.DataFrame())
    laundering = next(s for s in sections if s.protocol == "laundering")
    # the YAML lists CDF/jpeg before CDF/h264
    assert [c.key for c in laundering.charts] == [("CDF", "CDF/jpeg", "jpeg"), ("CDF", "CDF/h264", "h264")]
    jpeg_table = laundering.charts[0].grids[0]
    assert [label for label, _ in jpeg_table.column_groups] == [f"CDF/jpeg · jpeg={q}" for q in (60, 80, 100)]
    assert jpeg_table.title == "laundering (v1) — CDF/jpeg — video-level — real"
    assert [len(c.grids) for c in laundering.charts] == [1, 1] and not laundering.grids
    (row,) = jpeg_table.blocks[0].rows
    assert [c.text for c in row.cells] == ["90.50", "75.50", "65.50"]  # 0.95 - s/100 + seed/100, mean


def test_user_names_are_escaped_and_only_the_sorter_may_run(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 1 and html.lower().count("<script") == 1
    shipped = Path(__file__).parents[1].joinpath("benchmark", "templates", "sort.js").read_text(encoding="utf-8")
    assert scripts[0] == shipped
    digest = base64.b64encode(hashlib.sha256(shipped.encode("utf-8")).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp and "unsafe-inline'; script" in csp
    assert EVIL not in board["md"].read_text()


def test_csv_cells_that_spreadsheets_run_are_neutralised(tmp_path: Path) -> None:
    hostile = {"detector": '=HYPERLINK("http://x")', "variant": "@SUM(A1)", "backbone": "-cmd", "preset": "+1"}
    rows = [{**r, **hostile} for r in cross_dataset_rows("erm", 0.7)]
    build_leaderboard(pd.DataFrame(rows), tmp_path, reference=pd.DataFrame())
    table = pd.read_csv(tmp_path / "leaderboard.csv", keep_default_na=False)
    ours = table[table["source"] == "dfbench"]
    for column, value in hostile.items():
        assert set(ours[column]) == {"'" + value}
    assert ours["mean"].min() == pytest.approx(0.7)  # numbers stay numbers
    # no text cell of the file starts a formula
    import csv as csv_module

    with (tmp_path / "leaderboard.csv").open(newline="") as handle:
        cells = [cell for line in csv_module.reader(handle) for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]
    assert all(float(c) < 0 for c in cells if c.startswith("-"))  # a '-' may only start a number


def test_reference_loads_with_its_columns() -> None:
    ref = load_reference()
    assert len(ref) > 2000
    assert {"paper", "table", "method", "test_data", "metric", "value", "level", "notes"} <= set(ref.columns)


def test_empty_results_still_write_a_page(tmp_path: Path) -> None:
    out = build_leaderboard(pd.DataFrame(), tmp_path, reference=pd.DataFrame())
    assert "No results stored yet" in out["html"].read_text()


# --------------------------------------------------------------------------- 30 detectors
N_DETECTORS = 30


def _many() -> pd.DataFrame:
    """30 detectors on cross_quality and cross_dataset, det00 weakest: erm is one of them
    (paper numbers), so are two hostile names. EVIL's c40 model is 0.3 worse than the rest
    of its matrix, so it ranks second by the raw row and last by the c40 row."""
    names = [f"det{k:02d}" for k in range(N_DETECTORS - 3)] + ["erm", EVIL, "=cmd|' /C calc'!A0"]
    rows: list[dict[str, object]] = []
    for k, name in enumerate(names):
        matrix = matrix_rows(name, 0.5 + 0.005 * k)
        if name == EVIL:
            matrix = [{**r, "value": r["value"] - 0.3} if r["training"] == "c40" else r for r in matrix]
        rows += matrix
        rows += cross_dataset_rows(name, 0.55 + 0.005 * k)
    rows += laundering_rows("big_arts")
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_leaderboard(_many(), tmp_path_factory.mktemp("many"))


class _Tables(HTMLParser):
    """Tables of an HTML document as rows of cells (tag, attributes, text), and script texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, object]] = []
        self.scripts: list[str] = []
        self._cell: dict[str, object] | None = None
        self._in_script = False
        self._stack: list[dict[str, object]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "table":
            table = {"attrs": dict(attrs), "rows": [], "bodies": [], "row_attrs": []}
            self.tables.append(table)
            self._stack.append(table)
        elif tag == "tbody" and self._stack:
            self._stack[-1]["bodies"].append(len(self._stack[-1]["rows"]))
        elif tag == "tr" and self._stack:
            self._stack[-1]["rows"].append([])
            self._stack[-1]["row_attrs"].append(dict(attrs))
        elif tag in ("td", "th") and self._stack:
            self._cell = {"tag": tag, "attrs": dict(attrs), "text": []}
            self._stack[-1]["rows"][-1].append(self._cell)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag == "table" and self._stack:
            self._stack.pop()
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
            return
        self.text.append(data)
        if self._cell is not None and data.strip():
            self._cell["text"].append(data.strip())


def _layout(table: dict[str, object]) -> dict[tuple[int, int], dict[str, object]]:
    """(row, column) → cell, as a browser places them (rowspan and colspan honoured)."""
    placed: dict[tuple[int, int], dict[str, object]] = {}
    for r, cells in enumerate(table["rows"]):
        c = 0
        for cell in cells:
            while (r, c) in placed:
                c += 1
            for dr in range(int(cell["attrs"].get("rowspan") or 1)):
                for dc in range(int(cell["attrs"].get("colspan") or 1)):
                    placed[(r + dr, c + dc)] = cell
            c += int(cell["attrs"].get("colspan") or 1)
    return placed


def _text_of(cell: dict[str, object] | None) -> str:
    return " ".join(cell["text"]) if cell else ""


def _matrix_cell(table: dict[str, object], detector: str, training: str, test: str, metric: str) -> str:
    """The text a reader finds at (detector's row ``training``, column ``test`` / ``metric``)."""
    grid = _layout(table)
    n_rows = len(table["rows"])
    width = 1 + max(c for _, c in grid)
    column = next(
        c for c in range(width) if _text_of(grid.get((0, c))) == test and _text_of(grid.get((1, c))).startswith(metric)
    )
    train_col = next(c for c in range(width) if _text_of(grid.get((0, c))).startswith("train"))
    row = next(
        r for r in range(2, n_rows)
        if _text_of(grid.get((r, 0))) == detector and _text_of(grid.get((r, train_col))) == training
    )
    return _text_of(grid[(row, column)])


def test_thirty_detectors_stay_one_block_or_row_each(many: dict[str, Path]) -> None:
    html = many["html"].read_text()
    assert len(html.encode()) < 600_000  # measured 195 kB (with the paper-coverage section)
    parsed = _Tables()
    parsed.feed(html)
    by_id = {t["attrs"].get("id"): t for t in parsed.tables}
    matrix = by_id["cross_quality-synthetic-mini-video"]
    assert len(matrix["bodies"]) == N_DETECTORS and len(matrix["rows"]) == 2 + 3 * N_DETECTORS
    columns = by_id["cross_dataset-synthetic-mini-video"]
    assert len(columns["bodies"]) == N_DETECTORS and len(columns["rows"]) == 2 + N_DETECTORS
    # det05: base 0.525; c40 -> NT/raw AUC = 0.525 + 0.2; raw -> NT/c40 = 0.525 + 0.02
    assert _matrix_cell(matrix, "det05", "c40", "NT/raw", "AUC").startswith("72.50 ± 0.71")
    assert _matrix_cell(matrix, "det05", "raw", "NT/c40", "AUC").startswith("54.50 ± 0.71")
    assert _matrix_cell(matrix, EVIL, "c23", "NT/c23", "ACC").startswith("70.00")  # k = 28: 0.64+0.1+0.01-0.05
    assert _matrix_cell(matrix, "det05", "c40", "NT/raw", "AUC") != _matrix_cell(matrix, "det05", "raw", "NT/c40", "AUC")


def _run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; .ci/run installs it)"
)


@pytest.mark.chromium
@needs_chromium
def test_headless_chromium_places_matrix_cells_and_shows_names_as_text(
    many: dict[str, Path], tmp_path: Path
) -> None:
    done = _run_chromium(["--dump-dom", many["html"].resolve().as_uri()], tmp_path / "profile")
    dom = _Tables()
    dom.feed(done.stdout)
    text = "".join(dom.text)
    assert EVIL in text  # the browser shows the name as text ...
    assert len(dom.scripts) == 1 and "alert" not in dom.scripts[0]  # ... and built no script from it
    by_id = {t["attrs"].get("id"): t for t in dom.tables}
    matrix = by_id["cross_quality-synthetic-mini-video"]
    # row = train c40, column = test NT/raw, as the reader's eye finds it in the rendered DOM
    assert _matrix_cell(matrix, "det00", "c40", "NT/raw", "AUC").startswith("70.00 ± 0.71 [68.00, 72.00]")
    assert _matrix_cell(matrix, "det00", "raw", "NT/c40", "AUC").startswith("52.00 ± 0.71")
    assert _matrix_cell(matrix, "det00", "c40", "NT/raw", "ACC").startswith("65.00")
    frame = by_id["cross_dataset-synthetic-mini-video"]
    grid = _layout(frame)
    cdf = next(c for c in range(40) if _text_of(grid.get((0, c))) == "CDF")
    erm = next(r for r in range(2, len(frame["rows"])) if _text_of(grid.get((r, 0))) == "erm")
    # erm = k 27: 0.55 + 0.135 + 0.02 on CDF, and pim Table IV's ERM number below it
    assert re.match(r"70\.50 ± 1\.41 \[67\.50, 73\.50\] paper \d+ 75\.00", _text_of(grid[(erm, cdf)]))
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.mark.chromium
@needs_chromium
def test_headless_chromium_sorts_detectors_from_a_link(many: dict[str, Path], tmp_path: Path) -> None:
    def order(fragment: str, training: str = "raw") -> tuple[str | None, list[str], str]:
        done = _run_chromium(["--dump-dom", many["html"].resolve().as_uri() + fragment], tmp_path / "profile")
        dom = _Tables()
        dom.feed(done.stdout)
        by_id = {t["attrs"].get("id"): t for t in dom.tables}
        matrix = by_id["cross_quality-synthetic-mini-video"]
        columns = by_id["cross_dataset-synthetic-mini-video"]
        firsts = [_text_of(matrix["rows"][i][0]) for i in matrix["bodies"]]
        # the rows that decided are marked: one per detector, the chosen training's
        marked = [a for a in matrix["row_attrs"] if "decides" in (a.get("class") or "").split()]
        assert len(marked) == N_DETECTORS and {a.get("data-training") for a in marked} == {training}
        return matrix["attrs"].get("data-sorted"), firsts, _text_of(columns["rows"][columns["bodies"][0]][0])

    # column 5 = the first value column (NT/raw AUC); by default the matrix sorts by its first
    # training (raw). Detectors were added weakest first: sorted best first, the last added leads.
    sorted_as, firsts, other = order("#sort=cross_quality-synthetic-mini-video:5:desc")
    assert sorted_as == "5:desc" and len(firsts) == N_DETECTORS
    assert firsts[:2] == ["=cmd|' /C calc'!A0", EVIL] and firsts[-1] == "det00"
    assert other == "det00"  # the other tables keep their order
    # by the c40 row, EVIL's weak c40 model (0.64 - 0.3 + 0.2) ranks it last
    sorted_as, firsts, _ = order("#sort=cross_quality-synthetic-mini-video:5:desc:c40", "c40")
    assert firsts[0] == "=cmd|' /C calc'!A0" and firsts[-1] == EVIL and firsts[-2] == "det00"
    # names sort A to Z
    _, firsts, _ = order("#sort=cross_quality-synthetic-mini-video:0:asc")
    assert firsts == sorted(firsts, key=str) and firsts[0] == "<script>alert(1)</script>"
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


@pytest.mark.chromium
@needs_chromium
def test_headless_chromium_screenshot_is_written(tmp_path: Path) -> None:
    rows = matrix_rows("erm", 0.6) + cross_dataset_rows("erm", 0.7) + laundering_rows("big_arts")
    paths = build_leaderboard(pd.DataFrame(rows), tmp_path / "board")
    shot = tmp_path / "board.png"
    _run_chromium(["--window-size=1280,900", f"--screenshot={shot}", paths["html"].resolve().as_uri()], tmp_path / "profile")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)
    assert len(data) > 30_000  # text and coloured cells; the no-results page shoots to 13 kB
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_pbnet_rows_show_only_their_own_variants_paper_rows(tmp_path: Path) -> None:
    # compression_remedy writes the frozen detector ("detector") and the bleached one
    # ("detector+bleach") from one pbnet run: pbnet Table III prints ERM (Xception) DF c23 -> c40
    # AUC 93.94 for the first and PBNet 94.28 for the second; each sits beside its own row only
    def pb(variant: str, auc: float) -> dict[str, object]:
        return row(protocol="compression_remedy", protocol_version="2", detector="pbnet", variant=variant, seed=0, training="DF/c23",
                   test="DF/c40", metric="auc", level="frame", value=auc, train_data="ffpp:Deepfakes@c23",
                   test_data="ffpp:Deepfakes@c40")

    rows = [pb("detector", 0.90), pb("detector+bleach", 0.92), pb("detector+bleach/c23", 0.91)]
    md = build_leaderboard(pd.DataFrame(rows), tmp_path)["md"].read_text()
    title = "compression_remedy (v2) — frame-level"
    lines = _table_lines(md, title)
    headers = _cells(lines[0])
    legend = _legend(md, title)
    erm = next(k for k, v in legend.items() if v.startswith("pbnet Table III: ERM, Xception"))
    pbnet = next(k for k, v in legend.items() if v.startswith("pbnet Table III: PBNet, Xception"))
    cell = {_cells(line)[1]: _cells(line)[headers.index("DF/c40 AUC")] for line in lines[2:]}
    assert f"paper[{erm}] 93.94" in cell["detector"] and f"paper[{pbnet}]" not in cell["detector"]
    assert f"paper[{pbnet}] 94.28" in cell["detector+bleach"] and f"paper[{erm}]" not in cell["detector+bleach"]
    # the bleach trained at c23 (Table X) has no stated setting: no paper number beside it
    assert "paper[" not in cell["detector+bleach/c23"]
