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
        for protocol, cells in ((claim.protocol, claim.cells), (claim.contrast_protocol, claim.contrast_cells)):
            if protocol is None:
                continue
            spec = load_protocol(protocol)
            trainings = {t.name for t in spec.trainings}
            tests = {t.name for t in spec.tests}
            for training, test in cells:
                assert training in trainings, (claim.name, training)
                assert test in tests, (claim.name, test)
        for who in (claim.detector, claim.baseline):
            assert who.split(" [")[0] in detectors, (claim.name, who)
