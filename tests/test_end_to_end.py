"""The CLI end to end on a tiny synthetic FF++-layout set: run, resume, leaderboard,
regression check (passing, then failing on a planted drift), dataset check, listings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfbench.benchmark.cli import main


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from dfbench.datasets.synth import generate_ffpp_like

    return generate_ffpp_like(tmp_path_factory.mktemp("synth") / "FaceForensics++", scale="tiny", seed=0, progress=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_root):
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("DFBENCH_HOME", str(home))
    mp.setenv("DFBENCH_RESULTS", str(home / "runs"))
    yield home
    mp.undo()


def run_cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture(scope="module")
def first_run(env, tiny_root):
    rc = run_cli("run", "--protocol", "cross_quality", "--detector", "erm", "--data-root", str(tiny_root),
                 "--set", "epochs=1", "--no-progress")
    return rc


def test_run_writes_the_3x3_matrix(env, first_run, capsys) -> None:
    assert first_run == 0
    from dfbench.benchmark.results import ResultsStore

    rows = ResultsStore(env / "runs").read_all()
    auc = rows[(rows.metric == "auc") & (rows.level == "video")]
    assert len(auc) == 9 and set(auc.training) == {"raw", "c23", "c40"} and set(auc.test) == {"NT/raw", "NT/c23", "NT/c40"}
    meta = json.loads(next((env / "runs").rglob("run.json")).read_text())
    assert meta["status"] == "complete" and meta["data_kind"] == "real"  # --data-root given: not the embedded set
    for key in ("config_hash", "protocol_hash", "versions", "device", "data_fingerprints"):
        assert meta.get(key), key
    # a cell's fingerprint = what its model trained and validated on + the test frames it scored
    from dfbench.benchmark.procedures import combined_fingerprint

    models = meta["model_data_fingerprints"]
    assert set(models) == {"raw", "c23", "c40"} and all(set(m) == {"train", "val"} for m in models.values())
    test_c40 = [v for k, v in meta["data_fingerprints"].items() if k.startswith("test:test:") and "c40" in k]
    assert len(test_c40) == 1
    want = combined_fingerprint({**{f"model:{k}": v for k, v in models["c40"].items()}, "test": test_c40[0]})
    cell = rows[(rows.training == "c40") & (rows.test == "NT/c40")]["data_fingerprint"]
    assert set(cell) == {want} and len(want) == 16
    assert set(rows["config_hash"]) == {meta["config_hash"]}


def test_rerun_recomputes_nothing(env, first_run, tiny_root, capsys, monkeypatch) -> None:
    from dfbench.detectors.base import Detector

    monkeypatch.setattr(Detector, "fit", lambda *a, **k: pytest.fail("retrained"))
    monkeypatch.setattr(Detector, "predict", lambda *a, **k: pytest.fail("rescored"))
    assert run_cli("run", "--protocol", "cross_quality", "--detector", "erm", "--data-root", str(tiny_root),
                   "--set", "epochs=1", "--no-progress") == 0
    assert "already scored" in capsys.readouterr().err  # log lines go to stderr


def test_changed_config_is_refused_without_fresh(env, first_run, tiny_root, capsys) -> None:
    rc = run_cli("run", "--protocol", "cross_quality", "--detector", "erm", "--data-root", str(tiny_root),
                 "--set", "epochs=2", "--no-progress")
    assert rc == 2 and "--fresh" in capsys.readouterr().err


def test_leaderboard_files(env, first_run) -> None:
    out = env / "board"
    assert run_cli("leaderboard", "--out", str(out)) == 0
    html = (out / "leaderboard.html").read_text()
    assert "cross_quality" in html and "<table" in html
    assert (out / "leaderboard.csv").stat().st_size > 0 and (out / "leaderboard.md").exists()


def test_check_passes_then_fails_on_planted_drift(env, first_run, capsys) -> None:
    ref = env / "ref.json"
    assert run_cli("check", "--reference", str(ref), "--write") == 0
    assert run_cli("check", "--reference", str(ref)) == 0
    data = json.loads(ref.read_text())
    cell = next(c for c in data["cells"] if c["test"] == "NT/c40" and c["training"] == "raw" and c["level"] == "video")
    cell["value"] = min(1.0, cell["value"] + 0.3) if cell["value"] < 0.7 else cell["value"] - 0.3
    ref.write_text(json.dumps(data))
    capsys.readouterr()
    assert run_cli("check", "--reference", str(ref)) == 1
    out = capsys.readouterr().out
    assert "NT/c40" in out and "raw" in out


def test_datasets_check_and_listings(tiny_root, capsys) -> None:
    assert run_cli("datasets", "check", str(tiny_root)) == 0
    out = capsys.readouterr().out
    assert "NeuralTextures" in out and "layout OK" in out
    assert run_cli("list", "protocols") == 0 and "cross_quality" in capsys.readouterr().out
    assert run_cli("list", "detectors") == 0 and "aug_combined" in capsys.readouterr().out


def test_user_mistakes_are_one_line_errors(env, capsys) -> None:
    assert run_cli("run", "--protocol", "cross_qualty", "--detector", "erm") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown protocol") and "Traceback" not in err
    assert run_cli("run", "--protocol", "cross_quality", "--detector", "erm", "--set", "lr") == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert run_cli("run", "--protocol", "cross_dataset", "--detector", "erm", "--data-root", str(env / "nowhere")) == 2
    assert "--data-root" in capsys.readouterr().err


def test_wide_auc_matrix_prints_one_line_per_cell() -> None:
    """laundering's 66 perturbed columns or quality_aware's 21 x 21 diagonal would print as lines
    hundreds of characters wide: past MATRIX_MAX_COLUMNS a run lists one measured cell a line."""
    import pandas as pd

    from dfbench.benchmark.cli import MATRIX_MAX_COLUMNS, format_matrix

    narrow = pd.DataFrame({"NT/raw": [0.9, 0.6], "NT/c40": [0.55, 0.8]}, index=pd.Index(["raw", "c40"], name="training"))
    assert format_matrix(narrow).splitlines()[0] == "rows = training, columns = test"
    tests = [f"T{i}/raw" for i in range(MATRIX_MAX_COLUMNS + 1)]
    wide = pd.DataFrame(float("nan"), index=pd.Index([f"T{i}@raw" for i in range(len(tests))], name="training"), columns=tests)
    for i, t in enumerate(tests):
        wide.loc[f"T{i}@raw", t] = 0.5 + i / 100  # diagonal only, like quality_aware
    lines = format_matrix(wide).splitlines()
    assert lines[0] == "one line per cell" and lines[1].split() == ["training", "test", "AUC"]
    assert len(lines) == 2 + len(tests)  # the empty off-diagonal cells are not listed
    assert lines[-1].split() == [f"T{len(tests) - 1}@raw", tests[-1], "0.60"]
    assert max(map(len, lines)) < 60
    # an across-trainings average is labelled by all 21 names joined: cut, so lines stay short
    wide.loc["+".join(wide.index), tests[0]] = 0.7
    lines = format_matrix(wide).splitlines()
    assert len(lines) == 3 + len(tests) and max(map(len, lines)) < 70
    assert lines[-1].split()[0].endswith("…") and lines[-1].split()[-1] == "0.70"
