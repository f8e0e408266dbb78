"""The runner around a procedure: optional tests skipped when their data is absent, several
seeds and the matrix table, --fresh, the device choice, Ctrl-C (issue #18 item 8)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.benchmark.procedures import PROCEDURES, train_test
from dfbench.benchmark.runner import DataResolver, RunRequest, matrix_table, resolve_device, run
from dfbench.testing import tiny_frameset

SPEC = {
    "name": "toy", "version": 1, "metrics": ["auc"],
    "trainings": [{"name": "c23", "data": [{"dataset": "ffpp", "qualities": ["c23"]}]}],
    "tests": [
        {"name": "NT/c40", "data": [{"dataset": "ffpp", "qualities": ["c40"]}]},
        {"name": "CDF", "data": [{"dataset": "celebdf"}], "optional": True},
    ],
}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A spec file, a data root holding only an (empty) FF++ folder, and a stub procedure that
    scores the test frames with seed-dependent noise instead of training."""
    spec = tmp_path / "toy.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    (tmp_path / "data" / "FaceForensics++").mkdir(parents=True)
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    calls: list[tuple[int, frozenset]] = []

    def procedure(ctx):
        calls.append((ctx.seed, ctx.skip_tests))
        frames = tiny_frameset(seed=5)
        rng = np.random.default_rng(ctx.seed)
        for test in ctx.spec.tests:
            if test.name in ctx.skip_tests or ctx.cell_done(test.name, "c23"):
                continue
            scores = np.clip(frames.labels * 0.3 + rng.uniform(0, 0.7, len(frames)), 0, 1)
            ctx.score(test.name, "c23", frames, scores)

    monkeypatch.setitem(PROCEDURES._entries, "train_test", procedure)
    # the FF++ folder is empty: say every dataset present is usable, and celebdf is not present
    monkeypatch.setattr(DataResolver, "_has_test_videos", lambda self, data: all(self.available(d.dataset) for d in data))
    request = RunRequest(protocol=str(spec), detector="erm", data_root=tmp_path / "data",
                         results_root=tmp_path / "runs", progress=False, quiet=True)
    return request, calls


def video_auc(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[(rows.metric == "auc") & (rows.level == "video")]


def test_optional_test_without_data_is_skipped_and_required_data_is_not(toy, tmp_path) -> None:
    request, calls = toy
    rows = run(request)
    assert calls == [(0, frozenset({"CDF"}))]
    assert set(rows["test"]) == {"NT/c40"}
    # a required dataset that is missing is an error naming it, before any procedure runs
    spec = yaml.safe_load(Path(request.protocol).read_text())
    spec["tests"][1]["optional"] = False
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(DatasetError, match="needs dataset 'celebdf'"):
        run(RunRequest(**{**request.__dict__, "protocol": str(tmp_path / "strict.yaml")}))
    assert len(calls) == 1


def test_several_seeds_and_the_matrix_table(toy) -> None:
    request, calls = toy
    rows = run(RunRequest(**{**request.__dict__, "seeds": (0, 1)}))
    assert [seed for seed, _ in calls] == [0, 1]
    auc = video_auc(rows)
    per_seed = auc.set_index("seed")["value"]
    assert sorted(per_seed.index) == [0, 1] and per_seed.loc[0] != per_seed.loc[1]
    table = matrix_table(rows)
    assert list(table.index) == ["c23"] and list(table.columns) == ["NT/c40"]
    assert table.loc["c23", "NT/c40"] == pytest.approx((per_seed.loc[0] + per_seed.loc[1]) / 2)
    for seed in (0, 1):
        folder = request.results_root / "toy" / "erm" / "resnet10t" / "mini" / f"seed{seed}"
        assert (folder / "run.json").is_file()
        # quiet keeps the runner's lines out of the terminal, not out of the run's own log
        lines = (folder / "run.log").read_text().splitlines()
        assert len(lines) == 2 and lines[0].endswith(f"DEBUG dfbench.benchmark.runner: run toy × erm (resnet10t, mini), seed {seed}: {folder}")
        assert re.search(rf"seed {seed}: \d+ result rows in {re.escape(str(folder))} \(\d+\.\d s\)$", lines[1])


def test_matrix_table_by_hand() -> None:
    rows = pd.DataFrame({
        "metric": ["auc"] * 5 + ["acc"], "level": ["video"] * 4 + ["frame", "video"],
        "training": ["raw", "raw", "raw", "c40", "raw", "raw"], "test": ["A", "A", "B", "A", "A", "A"],
        "value": [0.6, 0.8, 0.5, 0.9, 0.1, 0.2],
    })
    table = matrix_table(rows)
    assert table.loc["raw", "A"] == pytest.approx(0.7) and table.loc["raw", "B"] == 0.5
    assert table.loc["c40", "A"] == 0.9 and np.isnan(table.loc["c40", "B"])
    assert matrix_table(rows, level="frame").loc["raw", "A"] == pytest.approx(0.1)
    assert matrix_table(rows, metric="eer").empty


def test_fresh_discards_the_earlier_run(toy) -> None:
    request, calls = toy
    run(request)
    run_dir = request.results_root / "toy" / "erm" / "resnet10t" / "mini" / "seed0"
    first = (run_dir / "run.json").read_text()
    (run_dir / "leftover.txt").write_text("from the first run")
    run(request)  # resume: every cell is done, the folder is kept
    assert (run_dir / "leftover.txt").exists() and len(calls) == 2
    run(RunRequest(**{**request.__dict__, "fresh": True}))
    assert not (run_dir / "leftover.txt").exists()
    assert (run_dir / "run.json").read_text() != first
    # a changed config is refused without --fresh, accepted with it
    with pytest.raises(ConfigError, match="--fresh"):
        run(RunRequest(**{**request.__dict__, "overrides": {"epochs": 2}}))
    assert len(run(RunRequest(**{**request.__dict__, "overrides": {"epochs": 2}, "fresh": True}))) > 0


def test_resolve_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="--device cuda:1 was asked for but CUDA is not available"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"


def test_ctrl_c_exits_130_with_a_resume_hint(monkeypatch, capsys) -> None:
    from dfbench.benchmark import cli, runner

    def interrupted(request, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert cli.main(["run", "--protocol", "cross_quality", "--detector", "erm", "--no-progress"]) == 130
    assert capsys.readouterr().err == "interrupted: re-run the same command to resume where it stopped\n"


def test_train_test_skips_the_optional_tests_it_is_told_to(tmp_path) -> None:
    """The procedure side of optional tests: nothing is loaded or scored for a skipped test."""
    from dfbench.benchmark.procedures import RunContext
    from dfbench.benchmark.protocol import parse_protocol
    from dfbench.benchmark.results import ResultsStore
    from dfbench.testing import TINY

    loads = []

    def loader(data, split, per_video, requires):
        loads.append((data[0].dataset, split))
        return tiny_frameset(seed={"train": 0, "val": 1, "test": 2}[split])

    ctx = RunContext(spec=parse_protocol(SPEC, "toy"), detector_name="erm", preset="mini", seed=0, device="cpu",
                     run_dir=tmp_path / "run", frame_loader=loader, store=ResultsStore(tmp_path),
                     detector_overrides=dict(TINY), run_meta={"protocol": "toy", "detector": "erm", "seed": 0},
                     log=lambda msg: None, skip_tests=frozenset({"CDF"}))
    train_test(ctx)
    assert loads == [("ffpp", "train"), ("ffpp", "val"), ("ffpp", "test")]
    assert set(ctx.store.read_run(ctx.run_dir)["test"]) == {"NT/c40"}
