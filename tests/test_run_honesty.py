"""Run-level honesty through the public run path: a video that yields no frames is counted
at video level (score 0.5) and reported, a fit that runs no epoch is an error, and a resumed
run's rows carry the same data fingerprints as an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dfbench.benchmark.cli import main
from dfbench.benchmark.procedures import RunContext
from dfbench.benchmark.results import ResultsStore
from dfbench.benchmark.runner import RunRequest, run


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from dfbench.datasets.synth import generate_ffpp_like

    return generate_ffpp_like(tmp_path_factory.mktemp("synth") / "FaceForensics++", scale="tiny", seed=0, progress=False)


def test_failed_test_videos_are_counted_at_video_level(ffpp_copy, results, one_torch_thread) -> None:
    from dfbench.benchmark.leaderboard import build_leaderboard
    from dfbench.benchmark.preprocess.fixture import add_bad_videos

    add_bad_videos(ffpp_copy)  # youtube c23 006 (no face) and 007 (truncated) join the test split
    with pytest.warns(UserWarning, match="yield no frames"):
        rows = run(RunRequest(protocol="cross_quality", detector="erm", data_root=ffpp_copy, results_root=results,
                              overrides={"epochs": 1}, progress=False, quiet=True))
    video = rows[(rows["level"] == "video") & (rows["metric"] == "auc")]
    c23 = video[video["test"] == "NT/c23"]
    assert len(c23) == 3 and set(c23["n_failed"]) == {2}  # every training's NT/c23 cell counts both
    assert set(video[video["test"] != "NT/c23"]["n_failed"]) == {0}  # 006/007 exist at c23 only
    assert set(c23["n_real"]) == {4} and set(c23["n_fake"]) == {2}  # 2 scored reals + 2 failed reals

    # the stored AUC is the one with the two failed reals at 0.5 (hand computation from predictions)
    run_dir = next(results.rglob("run.json")).parent
    pred = ResultsStore(results).read_predictions(run_dir)
    cell = pred[(pred["test"] == "NT/c23") & (pred["training"] == "c23")]
    per_video = cell.groupby("video_id").agg(label=("label", "first"), score=("score", "mean"))
    labels = np.r_[per_video["label"].to_numpy(), [0, 0]]
    scores = np.r_[per_video["score"].to_numpy(), [0.5, 0.5]]
    expected = roc_auc_score(labels, scores)
    got = c23[c23["training"] == "c23"]["value"].item()
    assert got == pytest.approx(expected, abs=1e-12)
    assert len(per_video) == 4  # the failed videos have no frame predictions: nothing was invented

    board = build_leaderboard(ResultsStore(results).read_all(), results.parent / "board", reference=pd.DataFrame())
    assert "2 failed videos at 0.5" in board["md"].read_text()


def test_a_fit_that_runs_no_epoch_is_an_error(tiny_root, results, capsys) -> None:
    rc = main(["run", "--protocol", "cross_quality", "--detector", "erm", "--data-root", str(tiny_root),
               "--set", "epochs=0", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "epochs" in err and "Traceback" not in err  # refused before any work
    assert ResultsStore(results).read_all().empty


def test_fit_refuses_a_config_that_runs_no_epoch() -> None:
    from dfbench.benchmark.errors import ConfigError
    from dfbench.detectors.base import Detector, DetectorConfig
    from dfbench.testing import TINY, tiny_frameset

    config = DetectorConfig(**{**DetectorConfig.preset("mini", **TINY).to_dict(), "epochs": 0})  # bypasses from_dict
    frames = tiny_frameset()
    with pytest.raises(ConfigError, match="ran no training epoch"):
        Detector(config).fit(frames, frames)


TOY = {
    "name": "toy", "version": 1, "metrics": ["auc"],
    "trainings": [{"name": q, "data": [{"dataset": "tiny", "qualities": [q]}]} for q in ("raw", "c40")],
    "tests": [{"name": f"T/{q}", "data": [{"dataset": "tiny", "qualities": [q]}]} for q in ("raw", "c40")],
}


def toy_ctx(run_dir):
    from dfbench.benchmark.protocol import parse_protocol
    from dfbench.testing import TINY, tiny_frameset

    def loader(data, split, per_video, requires):  # other videos per quality and split
        quality = data[0].qualities[0]
        frames = tiny_frameset(seed=10 * ("raw", "c40").index(quality) + ("train", "val", "test").index(split))
        frames.meta["video_id"] = f"{quality}/{split}/" + frames.meta["video_id"].astype(str)
        return frames

    return RunContext(
        spec=parse_protocol(TOY, "toy"), detector_name="erm", preset="mini", seed=0, device="cpu",
        run_dir=run_dir / "run", frame_loader=loader, store=ResultsStore(run_dir), detector_overrides=dict(TINY),
        run_meta={"protocol": "toy", "detector": "erm", "seed": 0}, log=lambda msg: None,
    )


def test_resumed_run_keeps_the_uninterrupted_fingerprints(tmp_path, monkeypatch) -> None:
    from dfbench.benchmark.procedures import train_test

    whole = toy_ctx(tmp_path / "whole")
    train_test(whole)
    calls = {"n": 0}
    real_score = RunContext.score

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the raw model's two cells are stored; c40 is trained, not yet scored
            raise KeyboardInterrupt
        return real_score(self, *args, **kwargs)

    monkeypatch.setattr(RunContext, "score", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_test(toy_ctx(tmp_path / "resumed"))
    monkeypatch.setattr(RunContext, "score", real_score)
    resumed = toy_ctx(tmp_path / "resumed")  # a new process: it reloads both models, loads only test sets
    train_test(resumed)

    key = ["training", "test", "level", "metric"]
    a = whole.store.read_run(whole.run_dir).set_index(key).sort_index()
    b = resumed.store.read_run(resumed.run_dir).set_index(key).sort_index()
    assert len(a) == len(b) == 8
    assert (a["data_fingerprint"] == b["data_fingerprint"]).all()
    assert np.allclose(a["value"].to_numpy(dtype=float), b["value"].to_numpy(dtype=float))
    # the fingerprint names the cell's data: another model or another test set gives another value
    assert a["data_fingerprint"].groupby(level=["training", "test"]).nunique().eq(1).all()
    assert a.reset_index().drop_duplicates(["training", "test"])["data_fingerprint"].nunique() == 4
