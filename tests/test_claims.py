"""benchmarks/claims.py: seed-paired differences, t-intervals and verdicts against hand values."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "claims.py"
_spec = importlib.util.spec_from_file_location("claims", _SCRIPT)
claims = importlib.util.module_from_spec(_spec)
sys.modules["claims"] = claims
_spec.loader.exec_module(claims)


def _row(protocol: str, detector: str, seed: int, training: str, test: str, value: float, **extra) -> dict:
    return {
        "protocol": protocol, "detector": detector, "variant": extra.get("variant", ""), "seed": seed,
        "training": training, "test": test, "metric": extra.get("metric", "auc"), "level": extra.get("level", "video"),
        "perturbation": "", "value": value, "fp": extra.get("fp", 0), "fn": extra.get("fn", 0),
    }


def test_paired_difference_interval_and_verdict_match_hand_computation() -> None:
    claim = claims.Claim("c", "p", "t", "cross_quality", "b", "a", (("raw", "NT/c40"), ("c23", "NT/c40")))
    rows = []
    # per seed: mean over the two cells of (b - a) = 0.10, 0.20, 0.30
    for seed, gain in enumerate((0.10, 0.20, 0.30)):
        for training in ("raw", "c23"):
            rows.append(_row("cross_quality", "a", seed, training, "NT/c40", 0.5))
            rows.append(_row("cross_quality", "b", seed, training, "NT/c40", 0.5 + gain))
    # a cell outside the claim and another protocol are ignored
    rows.append(_row("cross_quality", "b", 0, "raw", "NT/raw", 0.0))
    rows.append(_row("all_qualities", "b", 0, "raw", "NT/c40", 0.0))
    out = claims.evaluate(pd.DataFrame(rows), claim)
    # mean 0.2, sd 0.1, n 3: half-width t(0.975, 2) * 0.1 / sqrt(3) = 4.3027 * 0.057735 = 0.24841
    assert out["n"] == 3 and out["mean"] == pytest.approx(0.2)
    assert out["low"] == pytest.approx(0.2 - 0.248414, abs=1e-5) and out["high"] == pytest.approx(0.448414, abs=1e-5)
    assert out["verdict"] == "not shown"  # the interval reaches below 0
    # a seed missing one of the claim's cells is left out, not averaged over fewer cells
    partial = pd.DataFrame([r for r in rows if not (r["seed"] == 2 and r["training"] == "c23" and r["detector"] == "b")])
    assert claims.evaluate(partial, claim)["n"] == 2


def test_verdicts_errors_and_contrast() -> None:
    # errors (fp + fn): the claim is "fewer"; b has 10 and 12 fewer errors than a -> holds
    err = claims.Claim("e", "p", "t", "compression_remedy", "pb [bleach]", "pb [det]", (("DF/c23", "DF/c40"),),
                       metric="acc", level="frame", errors=True, sign=-1)
    rows = []
    for seed, (fa, fb) in enumerate(((30, 20), (40, 28), (35, 24))):
        rows.append(_row("compression_remedy", "pb", seed, "DF/c23", "DF/c40", 0.7, variant="det", metric="acc", level="frame", fp=fa, fn=0))
        rows.append(_row("compression_remedy", "pb", seed, "DF/c23", "DF/c40", 0.8, variant="bleach", metric="acc", level="frame", fp=fb, fn=0))
    out = claims.evaluate(pd.DataFrame(rows), err)
    assert out["mean"] == pytest.approx(-11.0) and out["verdict"] == "holds"
    # the same numbers read as "more" are reversed
    assert claims.evaluate(pd.DataFrame(rows), claims.Claim(**{**err.__dict__, "sign": 1}))["verdict"] == "reversed"
    # contrast: gain on cross_quality minus gain on cross_manipulation, per seed
    con = claims.Claim("k", "p", "t", "cross_quality", "b", "a", (("raw", "NT/c40"),),
                       contrast_protocol="cross_manipulation", contrast_cells=(("NT/c23", "DF/c23"),))
    rows = []
    for seed, (gq, gm) in enumerate(((0.3, 0.1), (0.25, 0.05), (0.35, 0.1))):
        rows += [_row("cross_quality", "a", seed, "raw", "NT/c40", 0.5), _row("cross_quality", "b", seed, "raw", "NT/c40", 0.5 + gq),
                 _row("cross_manipulation", "a", seed, "NT/c23", "DF/c23", 0.5), _row("cross_manipulation", "b", seed, "NT/c23", "DF/c23", 0.5 + gm)]
    out = claims.evaluate(pd.DataFrame(rows), con)
    assert out["mean"] == pytest.approx((0.2 + 0.2 + 0.25) / 3) and out["verdict"] == "holds"
    # nothing run: no verdict
    assert claims.evaluate(pd.DataFrame(rows), claims.CLAIMS[0])["verdict"].startswith("not run")


def test_every_claim_names_a_shipped_protocol_detector_and_its_cells() -> None:
    """A typo in a claim's cells would make it silently "not run": each name must exist."""
    from dfbench.benchmark.protocol import load_protocol
    from dfbench.detectors.catalog import list_detectors

    detectors = set(list_detectors())
    for claim in claims.CLAIMS:
        for protocol, cells in ((claim.protocol, claim.cells), (claim.contrast_protocol, claim.contrast_cells),
                                (claim.baseline_protocol, claim.baseline_cells)):
            if protocol is None:
                continue
            spec = load_protocol(protocol)
            trainings = {t.name for t in spec.trainings}
            tests = {t.name: t for t in spec.tests}
            for training, test in cells:
                assert training in trainings, (claim.name, training)
                assert test in tests, (claim.name, test)
                # a perturbed test's rows carry its op: the claim must filter on it
                op = tests[test].perturbation.op if tests[test].perturbation else ""
                assert op == claim.perturbation, (claim.name, test, op)
        for who in (claim.detector, claim.baseline):
            assert who.split(" [")[0] in detectors, (claim.name, who)


def test_baseline_from_another_protocol_is_its_own_cells_mean() -> None:
    """QAD Table 3: one model's cells against three single-quality models' cells elsewhere."""
    claim = claims.Claim("q", "p", "t", "quality_agnostic", "qad", "erm", (("DF", "DF/raw"), ("DF", "DF/c40")),
                         baseline_protocol="quality_aware", baseline_cells=(("DF@raw", "DF/raw"), ("DF@c40", "DF/c40")))
    rows = []
    for seed, (q_raw, q_c40, e_raw, e_c40) in enumerate(((0.9, 0.7, 0.95, 0.55), (0.8, 0.8, 0.9, 0.6), (0.85, 0.75, 0.9, 0.5))):
        rows += [_row("quality_agnostic", "qad", seed, "DF", "DF/raw", q_raw), _row("quality_agnostic", "qad", seed, "DF", "DF/c40", q_c40),
                 _row("quality_aware", "erm", seed, "DF@raw", "DF/raw", e_raw), _row("quality_aware", "erm", seed, "DF@c40", "DF/c40", e_c40),
                 # the blind erm model of quality_agnostic is not the baseline here
                 _row("quality_agnostic", "erm", seed, "DF", "DF/raw", 0.0), _row("quality_agnostic", "erm", seed, "DF", "DF/c40", 0.0)]
    out = claims.evaluate(pd.DataFrame(rows), claim)
    # per seed: (0.8 - 0.75, 0.8 - 0.75, 0.8 - 0.7) = (0.05, 0.05, 0.10)
    assert out["n"] == 3 and out["mean"] == pytest.approx(0.2 / 3)
    # no quality_aware runs: not run, never a comparison with the wrong baseline
    no_aware = pd.DataFrame([r for r in rows if r["protocol"] != "quality_aware"])
    assert claims.evaluate(no_aware, claim)["verdict"].startswith("not run")


def test_reference_cells_read_as_rows_and_results_win(tmp_path: Path) -> None:
    import json

    cell = {"backbone": "resnet10t", "detector": "b", "level": "video", "metric": "auc", "perturbation": None,
            "preset": "mini", "protocol": "cross_quality", "strength": None, "test": "NT/c40", "training": "raw", "variant": None}
    cells = [{**cell, "seed": s, "value": v} for s, v in ((0, 0.6), (1, 0.7), (2, 0.8))]
    cells += [{**cell, "detector": "a", "seed": s, "value": 0.5} for s in range(3)]
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"tolerance": 0.02, "cells": cells}))
    ref = claims.reference_rows(path)
    claim = claims.Claim("c", "p", "t", "cross_quality", "b", "a", (("raw", "NT/c40"),))
    out = claims.evaluate(ref, claim)
    assert out["n"] == 3 and out["mean"] == pytest.approx(0.2)
    # a results row of the same key (b, seed 2) replaces the reference cell: gains 0.1, 0.2, 0.0
    same = {**_row("cross_quality", "b", 2, "raw", "NT/c40", 0.5), "backbone": "resnet10t", "preset": "mini", "strength": float("nan")}
    out = claims.evaluate(claims.combined_rows(pd.DataFrame([same]), ref), claim)
    assert out["mean"] == pytest.approx(0.1)
    # another backbone's row is another cell (check.cell_key): the reference cell is kept beside it
    other = pd.DataFrame([{**same, "backbone": "resnet50"}])
    assert len(claims.combined_rows(other, ref)) == len(ref) + 1
    # the reference keeps no fp/fn: an errors claim finds nothing to compare
    err = claims.Claim(**{**claim.__dict__, "errors": True})
    assert claims.evaluate(ref, err)["verdict"].startswith("not run")


def test_paper_directions_runs_every_claims_pair_and_only_shipped_names() -> None:
    """benchmarks/paper_directions.sh is how the claims' runs are made: it must cover them."""
    import re

    from dfbench.benchmark.protocol import list_protocols
    from dfbench.detectors.catalog import list_detectors

    text = (_SCRIPT.parent / "paper_directions.sh").read_text()
    pairs = {tuple(p.split(":")) for body in re.findall(r'\[\w+\]="([^"]*)"', text) for p in body.split()}
    assert pairs and all(d in set(list_detectors()) and p in set(list_protocols()) for p, d in pairs), pairs
    for claim in claims.CLAIMS:
        for protocol, who in ((claim.protocol, claim.detector), (claim.protocol, claim.baseline),
                              (claim.baseline_protocol or claim.protocol, claim.baseline),
                              (claim.contrast_protocol or claim.protocol, claim.detector),
                              (claim.contrast_protocol or claim.protocol, claim.baseline)):
            assert (protocol, who.split(" [")[0]) in pairs, (claim.name, protocol, who)


def test_bad_reference_file_is_one_line_error(tmp_path: Path, capsys) -> None:
    """--reference: a missing or malformed file exits 2 with one line naming the option and the path."""
    missing = tmp_path / "missing.json"
    assert claims.main(["--reference", str(missing)]) == 2
    err = capsys.readouterr()
    assert err.out == "" and len(err.err.strip().splitlines()) == 1
    assert err.err.startswith("error: --reference:") and str(missing) in err.err
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": 3}')
    assert claims.main(["--reference", str(bad)]) == 2
    assert "list under 'cells'" in capsys.readouterr().err


def test_unknown_claim_or_results_dir_is_one_line_error(tmp_path: Path, capsys) -> None:
    """A typo in --claim or --results would print a table of "not run": it exits 2 instead."""
    assert claims.main(["--results", str(tmp_path / "nope"), "--claim", "two_gen_bat_raw_c40"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --results:") and len(err.strip().splitlines()) == 1
    assert claims.main(["--results", str(tmp_path), "--claim", "no_such_claim"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --claim:") and "no_such_claim" in err
