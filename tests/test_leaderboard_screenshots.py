"""benchmarks/leaderboard_screenshots.py: one table per paper, its paper numbers beside ours."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from dfbench.benchmark.results import ROWS_FILE, normalize_rows

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
BASE = {"protocol": "cross_dataset", "protocol_version": "2", "data_kind": "synthetic-mini", "detector": "erm",
        "variant": "", "backbone": "resnet10t", "preset": "mini", "metric": "auc", "level": "video",
        "training": "FF++/c23", "train_data": "ffpp:Deepfakes+Face2Face+FaceSwap+NeuralTextures@c23"}


@pytest.fixture(scope="module")
def shots() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "leaderboard_screenshots.py"
    spec = importlib.util.spec_from_file_location("leaderboard_screenshots", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def _store(root: Path, values: dict[str, float], seed: int = 0, run_id: str = "r") -> None:
    rows = normalize_rows(pd.DataFrame([{**BASE, "seed": seed, "run_id": run_id, "test": t, "value": v}
                                        for t, v in values.items()]))
    run = root / "cross_dataset" / "erm" / "resnet10t" / "mini" / f"seed{seed}"
    run.mkdir(parents=True)
    rows.to_parquet(run / ROWS_FILE)


def test_a_run_in_two_roots_is_read_once_from_the_first(shots: ModuleType, tmp_path: Path) -> None:
    _store(tmp_path / "a", {"CDF": 0.80, "WDF": 0.70}, run_id="first")
    _store(tmp_path / "b", {"CDF": 0.10, "WDF": 0.10}, run_id="second")
    _store(tmp_path / "b", {"CDF": 0.60, "WDF": 0.50}, seed=1, run_id="third")
    rows, dropped = shots.read_results([tmp_path / "a", tmp_path / "b"])
    got = {(r["seed"], r["test"]): r["value"] for r in rows.to_dict("records")}
    assert got == {(0, "CDF"): 0.80, (0, "WDF"): 0.70, (1, "CDF"): 0.60, (1, "WDF"): 0.50}
    assert dropped == [f"cross_dataset/erm/resnet10t/mini/0 under {tmp_path / 'b'} (taken from {tmp_path / 'a'})"]


def test_one_table_page_and_its_cell_report(shots: ModuleType, tmp_path: Path) -> None:
    from dfbench.benchmark.leaderboard import build_leaderboard

    _store(tmp_path / "res", {"FF++": 0.99, "CDF": 0.86, "DFDCP": 0.80, "WDF": 0.74})
    rows, _ = shots.read_results([tmp_path / "res"])
    board = build_leaderboard(rows, tmp_path / "board")["html"].read_text(encoding="utf-8")
    blocks = {b.table_id: b for b in shots.table_blocks(board)}
    video = blocks["cross_dataset-synthetic-mini-video"]
    # pim Table IV's four ERM rows (ResNet-50, Xception, EfficientNet-B4, ConvNeXt-base) x
    # CDF, DFDCP, WDF (no DFDC test, so no Avg): 12 pim numbers, no other paper's
    assert video.paper_counts == {"pim": 12}
    page = shots.page_for(board, video, "pim: cross_dataset")
    assert page.count("<table") == 1 and "<script" not in page and "</ol>" in page
    report = shots.cell_report(video)
    # ours beside the paper's: pim Table IV, ERM ResNet-50 -> CDFv2 75.00 (its Avg, 69.64, spans DFDC)
    line = next(x for x in report.splitlines() if ":: CDF AUC:" in x)
    assert "ours 86.00" in line and "75.00 (pim Table IV: ERM, ResNet-50, trained on FF++)" in line
    assert ":: FF++ AUC: ours 99.00; no paper number" in report


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH")
def test_main_draws_one_png_per_paper_with_numbers(shots: ModuleType, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    _store(tmp_path / "res", {"FF++": 0.99, "CDF": 0.86, "DFDCP": 0.80, "WDF": 0.74})
    assert shots.main(["--results", str(tmp_path / "res"), "--out", str(tmp_path / "out"), "--height", "1200"]) == 0
    out = capsys.readouterr().out
    assert "qad: no table of these results shows a qad number; nothing drawn" in out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["pim.png"]
    with Image.open(tmp_path / "out" / "pim.png") as image:
        width, height = image.size
    assert 300 < width <= 1700 and 150 < height < 1200  # trimmed to the drawn table
