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
    DETECTOR_METHODS,
    PROTOCOL_TABLES,
    _paper_entries,
    build_leaderboard,
    column_spec,
    load_reference,
    paper_row_matches,
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
        "train_data": "FF++/NT",
        "test_data": "FF++/NT",
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
                            test=f"{train}->{test}",
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
                    test="CDF",
                    test_data="CDF",
                    train_data="CDF",
                    perturbation="h264_crf",
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


def test_tables_hold_our_numbers_beside_the_papers(board: dict[str, Path]) -> None:
    md = board["md"].read_text()
    # ours: raw->c40 AUC mean of 0.7212 and 0.7412 over two seeds, sample std 0.01414
    ours = next(line for line in md.splitlines() if line.startswith("| dfbench | two_gen_bat"))
    assert "73.12 ± 1.41 [68.12, 78.12]" in ours
    # two_gen_bat Table II/V print Two-Gen-BAT (EfficientNet) raw->c40 AUC 72.18, ACC 61.87
    paper = next(line for line in md.splitlines() if "Two-Gen-BAT" in line and "EfficientNet" in line)
    assert "Table II, Table V" in paper  # reprinted rows are merged, both tables cited
    cells = [c.strip() for c in paper.strip("|").split("|")]
    headers = [c.strip() for c in md.splitlines()[md.splitlines().index(ours) - 2].strip("|").split("|")]
    assert cells[headers.index("raw → c40 AUC")] == "72.18"
    assert cells[headers.index("raw → c40 ACC")] == "61.87"

    csv = pd.read_csv(board["csv"])
    mapped = csv[
        (csv["source"] == "paper") & (csv["paper_method"] == "Two-Gen-BAT") & (csv["test"] == "raw->c40")
    ]
    assert set(mapped["paper_backbone"]) == {"EfficientNet", "Xception"}
    eff = mapped[(mapped["paper_backbone"] == "EfficientNet") & (mapped["metric"] == "auc")]
    assert eff["mean"].item() == pytest.approx(0.7218)
    ours_csv = csv[
        (csv["source"] == "dfbench")
        & (csv["detector"] == "two_gen_bat")
        & (csv["test"] == "raw->c40")
        & (csv["level"] == "video")
    ]
    assert ours_csv.loc[ours_csv["metric"] == "auc", "mean"].item() == pytest.approx(0.7312)
    # a detector the mapping does not know gets no paper row
    assert csv.loc[csv["source"] == "paper", "detector"].eq(EVIL).sum() == 0


def test_every_table_names_its_data(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    # cross_quality video + frame (synthetic), laundering video (real)
    assert html.count("<table") == 3
    frame_table = html[html.index("cross_quality (v1) — frame-level") :].split("</table>")[0]
    assert "50.00 ± 0.00" in frame_table
    assert "Two-Gen-BAT" not in frame_table  # the paper states no level: its rows go to the video table
    assert "synthetic mini benchmark — pipeline check, not a claim about real deepfakes" in html
    assert "Data: real datasets" in html


def test_laundering_curve_is_an_embedded_png(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1
    assert base64.b64decode(images[0]).startswith(b"\x89PNG")
    # the paper's CRF row (big_arts Table 8) sits beside ours: CRF 20 -> 99.29
    md = board["md"].read_text()
    assert "CDF · h264_crf=20" in md and "99.29" in md


def test_user_names_are_escaped_in_html_and_markdown(board: dict[str, Path]) -> None:
    html = board["html"].read_text()
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert EVIL not in board["md"].read_text()


def test_cell_vocabulary_maps_to_the_reference_csv() -> None:
    cq = PROTOCOL_TABLES["cross_quality"]
    spec = column_spec({"training": "raw", "test": "raw->c40", "perturbation": "", "strength": None}, cq)
    assert (spec.train_quality, spec.test_data, spec.test_quality) == ("raw", "FF++/NT", "c40")
    spec = column_spec({"training": "NT/c23", "test": "DF/c23"}, PROTOCOL_TABLES["cross_manipulation"])
    assert (spec.train_quality, spec.test_data, spec.test_quality) == ("c23", "FF++/DF", "c23")
    cdf = column_spec({"training": "FF++", "test": "CDF"}, PROTOCOL_TABLES["cross_dataset"])
    pim_cdf = {"test_data": "CDFv2", "test_quality": None, "train_quality": None, "perturbation": None}
    assert paper_row_matches(pim_cdf, cdf)  # Celeb-DF v2 is our Celeb-DF cell
    assert not paper_row_matches({**pim_cdf, "test_data": "DFDC"}, cdf)
    assert not paper_row_matches({**pim_cdf, "perturbation": "crf=5"}, cdf)  # perturbed ≠ clean
    eye = column_spec({"training": "CDF", "test": "CDF", "perturbation": "eye"}, None)
    assert paper_row_matches({"test_data": "CDF", "perturbation": "partial:eye"}, eye)
    assert not paper_row_matches({"test_data": "CDF", "perturbation": "partial:nose"}, eye)


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
    assert dom.tables == 3
    text = "".join(dom.text)
    assert EVIL in text  # the browser shows the name as text ...
    assert not any("alert" in s for s in dom.scripts)  # ... and built no script from it
    assert "73.12 ± 1.41" in text and "72.18" in text
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_runner_row_vocabulary_finds_the_right_paper_rows() -> None:
    """Rows as the runner writes them (DataSpec.describe() in train_/test_data) match the CSV."""
    ref = load_reference()

    def matches(
        column: dict[str, object], protocol: str, paper: str, table: str, method: str
    ) -> pd.DataFrame:
        mapping = PROTOCOL_TABLES[protocol]
        spec = column_spec(column, mapping)
        part = ref[(ref["paper"] == paper) & (ref["table"] == table) & (ref["method"] == method)]
        return part[[paper_row_matches(mapping.complete(r), spec) for r in part.to_dict("records")]]

    nt = {"training": "raw", "train_data": "ffpp:NeuralTextures@raw", "train_quality": "raw"}
    got = matches(
        {**nt, "test": "NT/c40", "test_data": "ffpp:NeuralTextures@c40"},
        "cross_quality",
        "two_gen_bat",
        "II",
        "ERM",
    )
    assert sorted(got["value"]) == [50.60, 56.03]  # raw -> c40: ACC and AUC

    ffpp = {"training": "FF++/c23", "train_data": "ffpp:Deepfakes+Face2Face+FaceSwap+NeuralTextures@c23"}
    cdf = {**ffpp, "test": "CDF", "test_data": "celebdf:all@all"}
    assert matches(cdf, "cross_dataset", "pim", "V", "PIM")["value"].tolist() == [87.34]
    # big_arts Table 4 trained on FF++ Deepfakes only: a different experiment, no match
    assert matches(cdf, "cross_dataset", "big_arts", "Table 4", "BiG-Arts").empty

    df = {"training": "Deepfakes", "train_data": "ffpp:Deepfakes@raw+c23+c40", "train_quality": "raw+c23+c40"}
    jpeg = {**df, "test": "Deepfakes/raw+random_jpeg", "test_data": "ffpp:Deepfakes@raw"}
    got = matches(
        {**jpeg, "perturbation": "random_jpeg", "strength": 60.0}, "quality_agnostic", "qad", "Table 2", "QAD"
    )
    assert got["test_data"].unique().tolist() == ["FF++/DF"] and len(got) >= 1
    assert matches(jpeg, "quality_agnostic", "qad", "Table 2", "QAD").empty  # unperturbed column: no match

    # QAD Table 4 prints no dataset: the mapping reads it as FF++/NT, quality-agnostic (mixed)
    nt_mixed = {"training": "NeuralTextures", "train_data": "ffpp:NeuralTextures@raw+c23+c40"}
    mixed = {**nt_mixed, "test": "NeuralTextures/mixed", "test_data": "ffpp:NeuralTextures@raw+c23+c40"}
    assert sorted(matches(mixed, "qad_ablation", "qad", "Table 4", "QAD")["value"]) == [82.2, 91.3]
    assert sorted(matches(mixed, "qad_ablation", "qad", "Table 4", "Coll. loss: HSIC")["value"]) == [80.3, 90.1]
    raw = {**nt_mixed, "test": "NeuralTextures/raw", "test_data": "ffpp:NeuralTextures@raw"}
    assert matches(raw, "qad_ablation", "qad", "Table 4", "QAD").empty  # a per-quality cell: no match

    # laundering trains and tests on Celeb-DF as the paper's Table 8 does: CRF cells match
    h264 = {"training": "CDF", "train_data": "celebdf:all@all", "test": "CDF/h264", "test_data": "celebdf:all@all"}
    got = matches({**h264, "perturbation": "h264", "strength": 10.0}, "laundering", "big_arts", "Table 8", "BiG-Arts")
    assert got["value"].tolist() == [0.9974]


def test_compression_remedy_shows_the_frozen_detector_and_the_bleach_rows_per_backbone() -> None:
    """Columns from four trainings merge the paper's rows to one per backbone; ERM = RECG ×."""
    mapping = PROTOCOL_TABLES["compression_remedy"]
    specs = {}
    for short, method in (("DF", "Deepfakes"), ("FS", "FaceSwap")):
        column = {
            "training": f"{short}/c23",
            "train_data": f"ffpp:{method}@c23",
            "test": f"{short}/c40",
            "test_data": f"ffpp:{method}@c40",
        }
        specs[(f"{short}/c23", f"{short}/c40", None, None)] = column_spec(column, mapping)
    entries = _paper_entries(load_reference(), mapping, DETECTOR_METHODS["pbnet"], specs, ("auc",), "video")
    xception = {e.method: e for e in entries if e.backbone == "Xception" and e.table == "III"}
    assert set(xception) == {"ERM", "PBNet"}
    assert all(e.train_data == "" for e in xception.values())  # merged across the trainings
    fs = ("FS/c23", "FS/c40", None, None)
    assert xception["ERM"].values[(fs, "auc")] == pytest.approx(0.8414)
    assert xception["PBNet"].values[(fs, "auc")] == pytest.approx(0.8724)
    assert xception["PBNet"].values[(("DF/c23", "DF/c40", None, None), "auc")] == pytest.approx(0.9428)
