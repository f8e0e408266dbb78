"""Results store: round trip, damaged files, cell markers for resume, seed summaries."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfbench.benchmark.environment import environment_info, package_versions
from dfbench.benchmark.results import (
    CELLS_DIR,
    RESULT_COLUMNS,
    ResultsError,
    ResultsStore,
    ResultsWarning,
    cell_id,
    summarize,
)


def make_rows(
    seed: int = 0, *, detector: str = "erm", test: str = "NT/c23", values=(0.8, 0.7)
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "protocol": "cross_quality",
            "protocol_version": "1",
            "detector": detector,
            "backbone": "resnet18",
            "preset": "mini",
            "seed": seed,
            "training": "c23",
            "test": test,
            "metric": ["auc", "acc"],
            "level": "video",
            "value": list(values),
            "n_real": 10,
            "n_fake": 12,
            "data_kind": "synthetic-mini",
            "run_id": f"run-{seed}",
        }
    )


def make_predictions(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "test": "NT/c23",
            "training": "c23",
            "variant": "",
            "video_id": [f"ffpp/NT/c23/{i:03d}" for i in range(n)],
            "frame": np.arange(n),
            "label": [0, 1] * (n // 2),
            "score": np.linspace(0.1, 0.9, n),
        }
    )


def test_rows_round_trip_with_fixed_schema(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    run_dir = store.run_dir("cross_quality", "erm", "resnet18", "mini", 0)
    assert run_dir == tmp_path / "cross_quality" / "erm" / "resnet18" / "mini" / "seed0"
    store.write_rows(run_dir, make_rows(0))
    store.write_rows(run_dir, make_rows(0, test="NT/c40", values=(0.6, 0.55)))  # append, not replace
    store.write_run_meta(
        run_dir, {"run_id": "run-0", "status": "complete", "path": tmp_path, "n": np.int64(3)}
    )
    store.write_predictions(run_dir, make_predictions())

    back = store.read_all()
    assert list(back.columns) == list(RESULT_COLUMNS)
    assert len(back) == 4
    assert sorted(back["test"].unique()) == ["NT/c23", "NT/c40"]
    assert back.loc[(back["test"] == "NT/c40") & (back["metric"] == "auc"), "value"].item() == 0.6
    assert back["seed"].dtype.name == "Int64" and back["n_fake"].iloc[0] == 12
    assert back["variant"].iloc[0] == ""  # a missing optional column is filled, not dropped
    assert list(store.read_run(run_dir).columns) == list(RESULT_COLUMNS)
    meta = store.read_run_meta(run_dir)
    assert (
        meta is not None and meta["status"] == "complete" and meta["n"] == 3 and meta["path"] == str(tmp_path)
    )
    assert len(store.read_predictions(run_dir)) == 4
    # nothing but the final files is left in the run directory (temp files were renamed away)
    assert sorted(p.name for p in run_dir.iterdir()) == ["predictions.parquet", "rows.parquet", "run.json"]


def test_extra_columns_from_a_procedure_are_kept(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    run_dir = store.run_dir("cross_quality", "erm", "resnet18", "mini", 0)
    store.mark_cell_done(run_dir, "c", make_rows().assign(n_failed=2, protocol_hash="h"), make_predictions())
    back = store.read_all()
    assert list(back.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert back["n_failed"].tolist() == [2, 2] and back["protocol_hash"].iloc[0] == "h"


def test_missing_column_and_bad_status_are_rejected(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    run_dir = store.run_dir("p", "d", "b", "mini", 0)
    with pytest.raises(ValueError, match="required columns"):
        store.write_rows(run_dir, make_rows().drop(columns=["metric"]))
    with pytest.raises(ValueError, match="status"):
        store.write_run_meta(run_dir, {"status": "finished"})


def test_run_dir_names_cannot_escape_root(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    run_dir = store.run_dir("..", "../../etc", "hf-hub:timm/x", "mini", 1)
    assert tmp_path in run_dir.parents
    assert ".." not in run_dir.relative_to(tmp_path).parts


def test_corrupt_and_partial_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    good = store.run_dir("cross_quality", "erm", "resnet18", "mini", 0)
    store.write_rows(good, make_rows(0))
    bad = store.run_dir("cross_quality", "erm", "resnet18", "mini", 1)
    bad.mkdir(parents=True)
    (bad / "rows.parquet").write_bytes(b"PAR1 this is not a parquet file")
    # a finished cell whose rows file was truncated after the marker (disk trouble)
    cells = store.run_dir("cross_quality", "erm", "resnet18", "mini", 2)
    store.mark_cell_done(cells, "cellA", make_rows(2), make_predictions())
    rows_file = cells / CELLS_DIR / f"{cell_id('cellA')}.parquet"
    rows_file.write_bytes(rows_file.read_bytes()[:40])

    with pytest.warns(ResultsWarning) as caught:
        back = store.read_all()
    messages = " ".join(str(w.message) for w in caught)
    assert str(bad / "rows.parquet") in messages
    assert str(rows_file) in messages
    assert set(back["seed"]) == {0}  # the good run survives
    # appending to a damaged rows file refuses with a clear, user-facing error
    with pytest.raises(ResultsError, match="rows.parquet"):
        store.write_rows(bad, make_rows(1))


def test_cell_markers_for_resume(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    run_dir = store.run_dir("cross_quality", "erm", "resnet18", "mini", 0)
    key = {"training": "c23", "test": "NT/c40", "config_hash": "abc"}
    assert not store.cell_done(run_dir, key)
    store.mark_cell_done(run_dir, key, make_rows(0, test="NT/c40"), make_predictions())
    assert store.cell_done(run_dir, key)
    assert not store.cell_done(run_dir, {**key, "config_hash": "other"})  # a changed config is not done

    # re-marking replaces the cell: a re-run never duplicates rows
    store.mark_cell_done(run_dir, key, make_rows(0, test="NT/c40", values=(0.9, 0.85)), make_predictions())
    back = store.read_all()
    assert len(back) == 2 and back.loc[back["metric"] == "auc", "value"].item() == 0.9
    assert len(store.read_predictions(run_dir)) == 4


def test_leftover_temp_file_does_not_count_as_done(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    run_dir = store.run_dir("cross_quality", "erm", "resnet18", "mini", 0)
    cells = run_dir / CELLS_DIR
    cells.mkdir(parents=True)
    h = cell_id("cellB")
    # what an interrupted mark_cell_done leaves: temp files of the data and of the marker
    (cells / f".{h}.parquet.x1.tmp").write_bytes(b"half")
    (cells / f".{h}.done.json.x2.tmp").write_text(json.dumps({"key": "cellB"}))
    assert not store.cell_done(run_dir, "cellB")
    # rows renamed into place but the marker never written: still not done, and not read
    store.mark_cell_done(run_dir, "cellB", make_rows(), make_predictions())
    (cells / f"{h}.done.json").unlink()
    assert not store.cell_done(run_dir, "cellB")
    with pytest.warns(ResultsWarning, match="incomplete cell"):
        assert store.read_all().empty


def test_summarize_mean_std_over_seeds() -> None:
    rows = pd.concat(
        [
            make_rows(0, values=(0.80, 0.70)),
            make_rows(1, values=(0.90, 0.60)),
            make_rows(2, values=(0.70, 0.50)),
        ]
    )
    rows = pd.concat([rows, make_rows(0, detector="pim", values=(0.75, float("nan")))])
    summary = summarize(rows)
    erm_auc = summary[(summary["detector"] == "erm") & (summary["metric"] == "auc")].iloc[0]
    assert erm_auc["mean"] == pytest.approx(0.8)
    assert erm_auc["std"] == pytest.approx(0.1)  # sample std of 0.8, 0.9, 0.7
    assert erm_auc["n"] == 3 and erm_auc["seeds"] == "0,1,2"
    erm_acc = summary[(summary["detector"] == "erm") & (summary["metric"] == "acc")].iloc[0]
    assert erm_acc["mean"] == pytest.approx(0.6) and erm_acc["std"] == pytest.approx(0.1)
    pim_auc = summary[(summary["detector"] == "pim") & (summary["metric"] == "auc")].iloc[0]
    assert pim_auc["n"] == 1 and math.isnan(pim_auc["std"])  # one seed: no spread, not zero
    pim_acc = summary[(summary["detector"] == "pim") & (summary["metric"] == "acc")].iloc[0]
    assert pim_acc["n"] == 0 and math.isnan(pim_acc["mean"])  # an undefined metric stays undefined


def test_summarize_keeps_presets_and_data_kinds_apart() -> None:
    rows = pd.concat([make_rows(0), make_rows(0).assign(data_kind="real", value=[0.5, 0.5])])
    summary = summarize(rows)
    assert len(summary[summary["metric"] == "auc"]) == 2


def test_environment_info_has_versions_and_no_hostname() -> None:
    info = environment_info("cpu")
    assert info["device"] == "cpu"
    assert info["versions"]["python"] and info["versions"]["pandas"] == pd.__version__
    assert set(package_versions()) >= {
        "torch",
        "timm",
        "numpy",
        "scikit-learn",
        "av",
        "facenet-pytorch",
        "dfbench",
    }
    assert platform.node() not in json.dumps(info)  # no hostname: results files get shared
    assert info["git_hash"] is None or len(info["git_hash"]) == 40


def test_the_runner_names_run_and_model_folders_through_the_store(tmp_path: Path, monkeypatch) -> None:
    """Issue #18 item 6: a protocol (or training) named ``..`` stays inside the results folder,
    and run.json is written by the store's atomic writer (no temp file left)."""
    from dfbench.benchmark.procedures import PROCEDURES
    from dfbench.benchmark.runner import RunRequest, run

    spec = tmp_path / "evil.yaml"
    spec.write_text(
        "name: '..'\nversion: 1\ntrainings:\n  - {name: '..', data: [{dataset: ffpp}]}\n"
        "tests:\n  - {name: t, data: [{dataset: ffpp}]}\n"
    )
    (tmp_path / "data" / "FaceForensics++").mkdir(parents=True)
    seen = {}

    def procedure(ctx):  # records where the run would put its model; trains nothing
        seen["model_dir"] = ctx.model_dir("..")
        seen["run_dir"] = ctx.run_dir

    monkeypatch.setitem(PROCEDURES._entries, "train_test", procedure)
    monkeypatch.setattr("dfbench.benchmark.runner.DataResolver.require", lambda self, spec: [])
    results = tmp_path / "res" / "runs"
    run(RunRequest(protocol=str(spec), detector="erm", data_root=tmp_path / "data", results_root=results,
                   progress=False, quiet=True))
    assert seen["run_dir"] == results / "_.." / "erm" / "resnet10t" / "mini" / "seed0"
    assert seen["model_dir"] == seen["run_dir"] / "models" / "_.."
    meta = json.loads((seen["run_dir"] / "run.json").read_text())
    assert meta["status"] == "complete" and meta["protocol"] == ".."
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["runs"]
    assert not list(results.rglob("*.tmp"))


def test_atomic_writes_give_the_mode_open_would(tmp_path: Path) -> None:
    """Issue #16 item 5: mkstemp's 0600 no longer leaks into results, leaderboards, checkpoints."""
    import os
    import stat

    from dfbench.benchmark.results import atomic_write_bytes, atomic_write_json, new_file_mode

    old = os.umask(0o022)
    try:
        assert new_file_mode() == 0o644
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        atomic_write_json(tmp_path / "b.json", {"k": 1})
        store = ResultsStore(tmp_path / "store")
        run_dir = store.run_dir("cross_quality", "erm", "resnet18", "mini", 0)
        store.mark_cell_done(run_dir, "c", make_rows(), make_predictions())
        written = [tmp_path / "a.bin", tmp_path / "b.json", *run_dir.rglob("*.*")]
        assert len(written) == 5 and {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o644}
        os.umask(0o027)
        assert new_file_mode() == 0o640
        atomic_write_bytes(tmp_path / "a.bin", b"y")  # replacing a file applies today's umask
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_csv_text_cells_are_neutralised_and_numbers_are_not() -> None:
    from dfbench.benchmark.results import csv_bytes, neutralize_csv_cell

    assert neutralize_csv_cell("=1+2") == "'=1+2" and neutralize_csv_cell("@A1") == "'@A1"
    assert neutralize_csv_cell("+x") == "'+x" and neutralize_csv_cell("-x") == "'-x"
    assert neutralize_csv_cell("\tx") == "'\tx" and neutralize_csv_cell("erm") == "erm"
    assert neutralize_csv_cell(-0.5) == -0.5 and neutralize_csv_cell(None) is None
    frame = pd.DataFrame({"name": ["=cmd", "-0.5", "ok"], "value": [-0.5, 0.25, float("nan")], "n": [-1, 2, 3]})
    text = csv_bytes(frame).decode("utf-8")
    # a negative number in a numeric column is data and stays a number; the same text in a
    # text column is neutralised (a spreadsheet would evaluate -0.5+cmd just as well)
    assert text.splitlines() == ["name,value,n", "'=cmd,-0.5,-1", "'-0.5,0.25,2", "ok,,3"]


def test_matrix_table_rows_and_columns_follow_the_protocol() -> None:
    """The runner's printed matrix: raw, c23, c40 as the YAML lists them, whatever the file order."""
    from dfbench.benchmark.runner import matrix_table

    rows = []
    for i, train in enumerate(("c40", "raw", "c23")):  # the store's order is the files' (sha1) order
        for j, test in enumerate(("NT/c23", "NT/c40", "NT/raw")):
            rows.append({"protocol": "cross_quality", "detector": "erm", "training": train, "test": test,
                         "metric": "auc", "level": "video", "value": 0.5 + 0.1 * i + 0.01 * j, "seed": 0})
    table = matrix_table(pd.DataFrame(rows))
    assert list(table.index) == ["raw", "c23", "c40"]
    assert list(table.columns) == ["NT/raw", "NT/c23", "NT/c40"]
    assert table.loc["c40", "NT/raw"] == pytest.approx(0.52)  # stored as (c40 first, NT/raw third)
    assert table.loc["raw", "NT/c23"] == pytest.approx(0.60)
    # a protocol dfbench cannot load keeps the order the rows came in
    other = matrix_table(pd.DataFrame(rows).assign(protocol="gone"))
    assert list(other.index) == ["c40", "raw", "c23"] and list(other.columns) == ["NT/c23", "NT/c40", "NT/raw"]
