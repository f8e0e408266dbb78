"""Leaderboard: the three files, our numbers beside the papers', escaping, curves, a real browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from dfbench.benchmark.leaderboard import (
    build_leaderboard,
    load_reference,
)

EVIL = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")


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


def test_writes_html_csv_and_markdown(board: dict[str, Path]) -> None:
    assert set(board) == {"html", "csv", "md"}
    for path in board.values():
        assert path.is_file() and path.stat().st_size > 0
    assert not list(board["html"].parent.glob("*.tmp"))


def _table_lines(md: str, title: str) -> list[str]:
    """The Markdown lines of the table whose heading starts with ``title``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line.startswith("|")]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def test_tables_hold_our_numbers_beside_the_papers(board: dict[str, Path]) -> None:
    md = board["md"].read_text()
    video = _table_lines(md, "cross_quality (v1) — video-level")
    # ours: raw->c40 AUC mean of 0.7212 and 0.7412 over two seeds, sample std 0.01414
    ours = next(line for line in video if line.startswith("| dfbench | two_gen_bat"))
    assert "73.12 ± 1.41 [68.12, 78.12]" in ours
    # two_gen_bat scores single frames: its numbers sit in the frame-level table only
    assert not any("Two-Gen-BAT" in line for line in video)
    frame = _table_lines(md, "cross_quality (v1) — frame-level")
    headers = _cells(frame[0])
    # two_gen_bat Table II/V print Two-Gen-BAT (EfficientNet) raw->c40 AUC 72.18, ACC 61.87
    paper = next(line for line in frame if "Two-Gen-BAT" in line and "EfficientNet" in line)
    assert "Table II, Table V" in paper  # reprinted rows are merged, both tables cited
    cells = _cells(paper)
    assert cells[headers.index("raw → NT/c40 AUC")] == "72.18"
    assert cells[headers.index("raw → NT/c40 ACC")] == "61.87"

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
    # a detector whose registration names no paper method gets no paper row
    assert csv.loc[csv["source"] == "paper", "detector"].eq(EVIL).sum() == 0


def test_every_table_names_its_data(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    # cross_quality video + frame (synthetic), laundering video (real), paper coverage
    assert html.count("<table") == 4
    frame_table = html[html.index("cross_quality (v1) — frame-level") :].split("</table>")[0]
    assert "50.00 ± 0.00" in frame_table
    assert "Two-Gen-BAT" in frame_table
    assert "synthetic mini benchmark — pipeline check, not a claim about real deepfakes" in html
    assert "Data: real datasets" in html


def test_leaderboard_has_the_paper_coverage_section(board: dict[str, Path]) -> None:
    md = board["md"].read_text()
    assert "## paper coverage" in md
    line = next(line for line in _table_lines(md, "Printed numbers") if "| two_gen_bat | Table III |" in line)
    assert "| 14 / 14 |" in line and "all_qualities (paper)" in line


def test_laundering_curve_is_an_embedded_png(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1
    assert base64.b64decode(images[0]).startswith(b"\x89PNG")
    # the paper's CRF row (big_arts Table 8) sits beside ours: CRF 20 -> 99.29
    md = board["md"].read_text()
    assert "CDF/h264 · h264=20" in md and "99.29" in md


def test_user_names_are_escaped_in_html_and_markdown(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert EVIL not in board["md"].read_text()


def test_reference_loads_with_its_columns() -> None:
    ref = load_reference()
    assert len(ref) > 2000
    assert {"paper", "table", "method", "test_data", "metric", "value", "level", "notes"} <= set(ref.columns)


def test_empty_results_still_write_a_page(tmp_path: Path) -> None:
    out = build_leaderboard(pd.DataFrame(), tmp_path, reference=pd.DataFrame())
    assert "No results stored yet" in out["html"].read_text()


class _DomText(HTMLParser):
    """Collects text and the content of any <script> element in a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")
        self.tables += tag == "table"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


@pytest.mark.chromium
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"
)
def test_headless_chromium_renders_tables_and_shows_names_as_text(
    board: dict[str, Path], tmp_path: Path
) -> None:
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
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        board["html"].resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _DomText()
    dom.feed(done.stdout)
    assert dom.tables == 4
    text = "".join(dom.text)
    assert EVIL in text  # the browser shows the name as text ...
    assert not any("alert" in s for s in dom.scripts)  # ... and built no script from it
    assert "73.12 ± 1.41" in text and "72.18" in text
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


