"""Regression check against stored reference AUCs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dfbench.benchmark.check import (
    DEFAULT_TOLERANCE,
    ReferenceFileError,
    check_against_reference,
    write_reference,
)
from dfbench.benchmark.errors import DfbenchError


def results(values: dict[tuple[str, int], float], *, protocol: str = "cross_quality") -> pd.DataFrame:
    """AUC rows keyed by (test cell, seed), plus an ACC row that the reference must ignore."""
    rows = []
    for (test, seed), value in values.items():
        for metric, v in (("auc", value), ("acc", 0.5)):
            rows.append(
                {
                    "protocol": protocol,
                    "detector": "erm",
                    "backbone": "resnet18",
                    "preset": "mini",
                    "seed": seed,
                    "training": "c23",
                    "test": test,
                    "metric": metric,
                    "level": "video",
                    "value": v,
                }
            )
    return pd.DataFrame(rows)


BASE = {("NT/raw", 0): 0.91, ("NT/c23", 0): 0.88, ("NT/c40", 0): 0.64}


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    path = tmp_path / "mini.json"
    write_reference(results(BASE), path, tolerance=0.02, only={"protocol": ["cross_quality"]})
    return path


def test_reference_file_shape(reference: Path) -> None:
    data = json.loads(reference.read_text())
    assert data["tolerance"] == 0.02
    assert len(data["cells"]) == 3  # AUC only
    cell = data["cells"][0]
    assert set(cell) == {
        "protocol", "detector", "backbone", "preset", "seed", "training", "test",
        "variant", "perturbation", "strength", "level", "metric", "value",
    }  # fmt: skip
    assert cell["metric"] == "auc" and cell["variant"] is None and cell["strength"] is None


def test_passes_within_tolerance(reference: Path) -> None:
    nudged = {k: v + 0.015 for k, v in BASE.items()}
    outcome = check_against_reference(results(nudged), reference)
    assert outcome.passed and outcome.ok and outcome.checked == 3
    assert outcome.report().splitlines()[-1].startswith("check passed")


def test_fails_naming_the_drifted_cell(reference: Path) -> None:
    drifted = {**BASE, ("NT/c40", 0): 0.70}
    outcome = check_against_reference(results(drifted), reference)
    assert not outcome.passed and len(outcome.drifted) == 1
    bad = outcome.drifted[0]
    assert bad.cell["test"] == "NT/c40"
    assert bad.expected == pytest.approx(0.64) and bad.got == pytest.approx(0.70)
    line = outcome.lines()[0]
    assert "test=NT/c40" in line and "expected 0.6400, got 0.7000" in line
    # a tolerance passed by the caller overrides the file's
    assert check_against_reference(results(drifted), reference, tolerance=0.1).passed


def test_nan_result_counts_as_drift(reference: Path) -> None:
    outcome = check_against_reference(results({**BASE, ("NT/raw", 0): float("nan")}), reference)
    assert [d.cell["test"] for d in outcome.drifted] == ["NT/raw"]


def test_reports_a_missing_cell(reference: Path) -> None:
    partial = {k: v for k, v in BASE.items() if k[0] != "NT/c23"}
    outcome = check_against_reference(results(partial), reference)
    assert not outcome.passed and not outcome.drifted
    assert [c["test"] for c in outcome.missing] == ["NT/c23"]
    assert any(line.startswith("MISSING") and "test=NT/c23" in line for line in outcome.lines())


def test_mean_over_repeated_rows_and_default_tolerance(tmp_path: Path) -> None:
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"cells": [{**results(BASE).iloc[0].to_dict(), "value": 0.91}]}))
    # the same cell stored twice (a repeated run): 0.90 and 0.94 average to 0.92, inside 0.02
    twice = pd.concat([results({("NT/raw", 0): 0.90}), results({("NT/raw", 0): 0.94})])
    outcome = check_against_reference(twice, path)
    assert outcome.tolerance == DEFAULT_TOLERANCE and outcome.passed


def test_bad_reference_files_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceFileError, match="does not exist"):
        check_against_reference(results(BASE), tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DfbenchError, match="broken.json"):
        check_against_reference(results(BASE), broken)
    with pytest.raises(ReferenceFileError, match="No AUC results for protocol=laundering"):
        write_reference(results(BASE), tmp_path / "x.json", tolerance=0.02, only={"protocol": ["laundering"]})


def test_only_checks_the_selected_cells(reference: Path) -> None:
    other = results({("DF/c23", 0): 0.7, ("DF/c23", 1): 0.6}, protocol="cross_manipulation")
    write_reference(other, reference, only={"protocol": ["cross_manipulation"]})
    # the cross_quality cells are missing from these results, but the filter leaves them out
    outcome = check_against_reference(other, reference, only={"protocol": ["cross_manipulation"], "seed": [1]})
    assert outcome.passed and outcome.checked == 1
    # unfiltered, the same results miss the three cross_quality cells
    assert len(check_against_reference(other, reference).missing) == 3
    with pytest.raises(ReferenceFileError, match="no cells for protocol=laundering"):
        check_against_reference(other, reference, only={"protocol": ["laundering"]})
    # several seeds at once (``dfbench check --seeds 3``): both cells, and a message naming them all
    both = check_against_reference(other, reference, only={"protocol": ["cross_manipulation"], "seed": [0, 1]})
    assert both.passed and both.checked == 2
    with pytest.raises(ReferenceFileError, match="no cells for protocol=laundering seed=0,1,2"):
        check_against_reference(other, reference, only={"seed": [0, 1, 2], "protocol": ["laundering"]})


def test_write_replaces_only_the_selected_cells_and_keeps_the_tolerance(reference: Path) -> None:
    write_reference(results({("NT/raw", 0): 0.5}), reference, only={"protocol": ["cross_quality"], "test": ["NT/raw"]})
    data = json.loads(reference.read_text())
    assert data["tolerance"] == 0.02
    values = {c["test"]: c["value"] for c in data["cells"]}
    assert values == {"NT/raw": 0.5, "NT/c23": 0.88, "NT/c40": 0.64}
    with pytest.raises(ValueError, match="unknown cell field"):
        write_reference(results(BASE), reference, only={"dataset": ["ffpp"]})


def test_runs_in_results_limits_the_check_to_the_runs_present(reference: Path) -> None:
    other = results({("DF/c23", 0): 0.7, ("DF/c23", 1): 0.6}, protocol="cross_manipulation")
    write_reference(other, reference, only={"protocol": ["cross_manipulation"]})
    seed1 = results({("DF/c23", 1): 0.61}, protocol="cross_manipulation")
    # only run (cross_manipulation, erm, seed 1) is present: its one cell is compared
    outcome = check_against_reference(seed1, reference, runs_in_results=True)
    assert outcome.passed and outcome.checked == 1
    # a cell missing inside a present run is still reported
    cq = results({("NT/raw", 0): 0.91, ("NT/c23", 0): 0.88})
    outcome = check_against_reference(cq, reference, runs_in_results=True)
    assert [c["test"] for c in outcome.missing] == ["NT/c40"]
    with pytest.raises(ReferenceFileError, match="the runs in these results"):
        check_against_reference(results({("NT/raw", 5): 0.9}), reference, runs_in_results=True)
