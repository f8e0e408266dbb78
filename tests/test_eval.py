"""Scoring without training (issue #16 item 2): ``dfbench eval --checkpoint`` reproduces the rows
of the run that trained the model; ``export-testlist`` + ``eval --predictions`` give the same
rows as dfbench's own scoring when fed dfbench's own scores, and refuse missing, extra and
malformed input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dfbench.benchmark.cli import main
from dfbench.benchmark.evaluate import TESTLIST_COLUMNS
from dfbench.benchmark.results import ResultsStore
from dfbench.testing import serve_tiny_frames

SHORT = {
    "name": "short", "version": 1, "description": "one NT c23 model tested on NT c23 and c40",
    "procedure": "train_test", "metrics": ["auc", "acc", "eer", "ap", "logloss"], "frames": {"train": 2, "test": 2},
    "trainings": [{"name": "c23", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": ["c23"]}]}],
    "tests": [{"name": f"NT/{q}", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": [q]}]}
              for q in ("c23", "c40")],
}
TINY_SET = ["--set", "input_size=32", "--set", "epochs=1", "--set", "batch_size=8", "--set", "max_steps_per_epoch=2"]
CELL = ["training", "test", "metric", "level"]
COMPARED = ["value", "ci_low", "ci_high", "n_real", "n_fake", "fp", "fn", "n_failed"]


@pytest.fixture
def env(tmp_path, monkeypatch) -> list[str]:
    """The short protocol over tiny frames; the options every command here takes."""
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    protocol = tmp_path / "short.yaml"
    protocol.write_text(yaml.safe_dump(SHORT))
    data = serve_tiny_frames(monkeypatch, tmp_path / "data")
    return ["--protocol", str(protocol), "--data-root", str(data), "--no-progress"]


@pytest.fixture
def trained(env, tmp_path):
    """A finished `dfbench run` of erm on the short protocol (tiny frames); its rows and folder."""
    common = env
    assert main(["run", "--detector", "erm", "--seed", "3", *common, *TINY_SET]) == 0
    store = ResultsStore(tmp_path / "runs")
    run_dir = store.root / "short" / "erm" / "resnet10t" / "mini" / "seed3"
    return common, store, run_dir, store.read_run(run_dir)


def by_cell(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.set_index(CELL).sort_index()[COMPARED]


def eval_rows(store: ResultsStore, name: str) -> pd.DataFrame:
    rows = store.read_all()
    return rows[rows["detector"] == name]


def test_checkpoint_reproduces_the_rows_of_the_run_that_trained_it(trained) -> None:
    common, store, run_dir, run_rows = trained
    model = run_dir / "models" / "c23" / "model.pt"
    assert main(["eval", *common, "--checkpoint", str(model), "--seed", "3"]) == 0
    rows = eval_rows(store, "erm@checkpoint")
    assert len(rows) == len(run_rows) == 2 * 5 * 2  # 2 tests × 5 metrics × 2 levels
    pd.testing.assert_frame_equal(by_cell(rows), by_cell(run_rows))
    # the same model and test frames: the same data fingerprint; but marked as not trained here
    assert set(rows["data_fingerprint"]) == set(run_rows["data_fingerprint"])
    assert not rows["trained_here"].any() and run_rows["trained_here"].all()
    assert set(rows["checkpoint_sha256"]) == {hashlib.sha256(model.read_bytes()).hexdigest()}
    assert set(rows["config_hash"]) == set(run_rows["config_hash"])
    # a second eval of another checkpoint under the same name is refused; --name files it apart
    other = model.parent / "copy.pt"
    other.write_bytes(model.read_bytes() + b"")
    torch = pytest.importorskip("torch")
    blob = torch.load(model, weights_only=True)
    blob["state"]["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in blob["state"]["model"].items()}
    torch.save(blob, other)
    assert main(["eval", *common, "--checkpoint", str(other), "--seed", "3"]) == 2
    assert main(["eval", *common, "--checkpoint", str(other), "--seed", "3", "--name", "shifted"]) == 0
    assert not by_cell(eval_rows(store, "shifted"))["value"].equals(by_cell(run_rows)["value"])


def test_checkpoint_errors(trained, tmp_path, capsys) -> None:
    common, _, run_dir, _ = trained
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not a checkpoint")
    for argv, message in [
        (["--checkpoint", str(tmp_path / "none.pt")], "does not exist"),
        (["--checkpoint", str(foreign)], "foreign.pt"),
        (["--checkpoint", f"c40={run_dir / 'models' / 'c23' / 'model.pt'}"], "'c40' is not a training of protocol 'short' (its trainings: c23)"),
        ([], "either --checkpoint PATH or --predictions FILE"),
    ]:
        assert main(["eval", *common, *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (argv, err)


def own_scores(store: ResultsStore, run_dir: Path) -> pd.DataFrame:
    pred = store.read_predictions(run_dir)
    return pred[["video_id", "frame", "score"]].drop_duplicates(["video_id", "frame"])


def test_testlist_lists_every_test_frame(trained, tmp_path) -> None:
    common, store, run_dir, _ = trained
    out = tmp_path / "list.csv"
    assert main(["export-testlist", *common, "--out", str(out)]) == 0
    listing = pd.read_csv(out)
    assert tuple(listing.columns) == TESTLIST_COLUMNS
    # tiny_frameset: 8 videos × 2 frames per test set, two test sets, one training
    assert len(listing) == 2 * 16 and set(listing["test"]) == {"NT/c23", "NT/c40"}
    pred = store.read_predictions(run_dir)
    for test, part in listing.groupby("test"):
        scored = pred[pred["test"] == test]
        assert sorted(zip(part.video_id, part.frame)) == sorted(zip(scored.video_id, scored.frame))
    assert "label" not in listing.columns  # the list says what to score, not the answers


def test_predictions_match_dfbench_own_scoring(trained, tmp_path) -> None:
    common, store, run_dir, run_rows = trained
    # both test sets are the same tiny videos here only if their frames agree; score per test set
    frames_csv = tmp_path / "frames.csv"
    pred = store.read_predictions(run_dir)
    assert pred.groupby(["video_id", "frame"])["score"].nunique().max() == 1, "one score per frame"
    own_scores(store, run_dir).to_csv(frames_csv, index=False)
    assert main(["eval", *common, "--predictions", str(frames_csv), "--name", "Mine", "--seed", "3"]) == 0
    rows = eval_rows(store, "Mine")
    pd.testing.assert_frame_equal(by_cell(rows), by_cell(run_rows))
    assert not rows["trained_here"].any()
    assert set(rows["predictions_sha256"]) == {hashlib.sha256(frames_csv.read_bytes()).hexdigest()}
    assert set(rows["backbone"]) == {"external"}
    # one score per video (the mean of its frames): the video-level rows, and no frame-level rows
    videos_csv = tmp_path / "videos.csv"
    own_scores(store, run_dir).groupby("video_id", as_index=False)["score"].mean().to_csv(videos_csv, index=False)
    assert main(["eval", *common, "--predictions", str(videos_csv), "--name", "MineVideo", "--seed", "3"]) == 0
    rows = eval_rows(store, "MineVideo")
    assert set(rows["level"]) == {"video"}
    want = by_cell(run_rows[run_rows.level == "video"])
    pd.testing.assert_frame_equal(by_cell(rows), want, check_exact=False, rtol=1e-12)


def test_predictions_with_a_missing_or_extra_video_are_refused(trained, tmp_path, capsys) -> None:
    common, store, run_dir, _ = trained
    scores = own_scores(store, run_dir).groupby("video_id", as_index=False)["score"].mean()
    dropped = scores["video_id"].iloc[0]
    cases = {
        "missing.csv": (scores.iloc[1:], f"missing 1 video(s) ({dropped}) that the protocol's test sets hold"),
        "extra.csv": (pd.concat([scores, pd.DataFrame({"video_id": ["tiny/fake/c23/999"], "score": [0.5]})]),
                      "extra 1 video(s) (tiny/fake/c23/999) that no test set holds"),
    }
    for name, (table, message) in cases.items():
        path = tmp_path / name
        table.to_csv(path, index=False)
        assert main(["eval", *common, "--predictions", str(path), "--name", name]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert (dropped if name == "missing.csv" else "tiny/fake/c23/999") in err[0]
        assert eval_rows(store, name).empty  # nothing written
    # many missing videos: the first few are named, and the count
    path = tmp_path / "few.csv"
    scores.iloc[:1].to_csv(path, index=False)
    assert main(["eval", *common, "--predictions", str(path), "--name", "few"]) == 2
    assert "missing 15 video(s) (" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    ("video_id,prob\nv,0.5\n", "missing ['score']"),
    ("video_id,score,comment\nv,0.5,x\n", "unknown ['comment']"),
    ("video_id,score\ntiny/fake/c23/000,1.5\n", "line 2 score '1.5' is not a probability in [0, 1]"),
    ("video_id,score\ntiny/fake/raw/000,0.2\ntiny/real/raw/001,nan\n", "line 3 score 'nan'"),
    ("video_id,score\ntiny/fake/raw/000,inf\n", "score 'inf'"),
    ("video_id,score\ntiny/fake/raw/000,=1+1\n", "score '=1+1'"),
    ("video_id,score\n,0.5\n", "line 2 has an empty video_id"),
    ("video_id,frame,score\ntiny/fake/raw/000,-1,0.5\n", "line 2 frame '-1' is not a frame index."),
    ("video_id,frame,score\ntiny/fake/raw/000,,0.5\n", "line 2 frame '' is not a frame index (a video the test list"),
    ("video_id,score\na,0.5\na,0.6\n", "line 3 repeats training, video_id"),
    ("video_id,score,training\na,0.5,c40\n", "unknown training(s) ['c40']"),
    ("video_id,score\n", "holds no rows"),
])
def test_malformed_predictions_are_one_error_line(env, tmp_path, capsys, content, message) -> None:
    common = env
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["eval", *common, "--predictions", str(path), "--name", "Bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_an_empty_score_is_a_failed_video(trained, tmp_path) -> None:
    common, store, run_dir, run_rows = trained
    scores = own_scores(store, run_dir).groupby("video_id", as_index=False)["score"].mean()
    failed_id = scores["video_id"].iloc[0]
    scores["score"] = scores["score"].astype(object)
    scores.loc[0, "score"] = ""
    path = tmp_path / "with_failed.csv"
    scores.to_csv(path, index=False)
    # the method's own failure is counted in the rows (n_failed), not a rejected input: exit 0
    assert main(["eval", *common, "--predictions", str(path), "--name", "Partial"]) == 0
    rows = eval_rows(store, "Partial")
    failed_in = rows.groupby("test")["n_failed"].max().to_dict()
    assert failed_in == {t: int(failed_id.split("/")[2] == t.split("/")[1]) for t in ("NT/c23", "NT/c40")}
    # by hand: the failed video counts at 0.5, as dfbench counts its own failed videos
    from dfbench.benchmark.metrics import compute_metrics

    pred = store.read_predictions(run_dir)
    for test, part in pred.groupby("test"):
        videos = part.groupby("video_id").agg(label=("label", "first"), score=("score", "mean"))
        if failed_id in videos.index:
            videos.loc[failed_id, "score"] = 0.5
        want = compute_metrics(videos["label"].to_numpy(), videos["score"].to_numpy())
        got = rows[rows.test == test].set_index("metric")["value"]
        assert np.isfinite(got).all()
        for metric, value in want.items():
            assert got[metric] == pytest.approx(value), (test, metric)


def test_several_trainings_need_a_training_column(tmp_path, monkeypatch, capsys) -> None:
    two = {**SHORT, "name": "two", "trainings": [
        {"name": q, "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": [q]}]} for q in ("c23", "c40")]}
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(two))
    common = ["--protocol", str(tmp_path / "two.yaml"), "--data-root", str(serve_tiny_frames(monkeypatch, tmp_path / "d")),
              "--no-progress"]
    listing = tmp_path / "list.csv"
    assert main(["export-testlist", *common, "--out", str(listing)]) == 0
    videos = pd.read_csv(listing).drop_duplicates(["training", "video_id"])[["training", "video_id"]]
    assert len(videos) == 2 * 2 * 8  # 2 trainings × 2 test sets × 8 videos
    rng = np.random.default_rng(0)
    scores = videos.assign(score=rng.uniform(0, 1, len(videos)))
    scores[["video_id", "score"]].to_csv(tmp_path / "no_training.csv", index=False)
    assert main(["eval", *common, "--predictions", str(tmp_path / "no_training.csv"), "--name", "M"]) == 2
    assert "trains 2 models (c23, c40); add a training column" in capsys.readouterr().err
    # only the c40 model's scores, one missing: named with its training
    c40 = scores[scores.training == "c40"]
    c40.iloc[1:].to_csv(tmp_path / "c40.csv", index=False)
    assert main(["eval", *common, "--predictions", str(tmp_path / "c40.csv"), "--name", "M"]) == 2
    assert f"missing 1 video(s) ({c40.video_id.iloc[0]} (c40))" in capsys.readouterr().err
    c40.to_csv(tmp_path / "c40.csv", index=False)
    assert main(["eval", *common, "--predictions", str(tmp_path / "c40.csv"), "--name", "M"]) == 0
    rows = ResultsStore(tmp_path / "runs").read_all()
    assert set(rows["training"]) == {"c40"} and set(rows["test"]) == {"NT/c23", "NT/c40"}
    # a video-level AUC by hand
    from dfbench.benchmark.metrics import auc

    part = c40[c40.video_id.str.contains("/c23/")]
    got = rows[(rows.test == "NT/c23") & (rows.metric == "auc")]["value"].iloc[0]
    assert got == pytest.approx(auc(part.video_id.str.contains("/fake/").astype(int).to_numpy(), part.score.to_numpy()))


def test_decision_metrics_and_an_average_through_eval(tmp_path, monkeypatch, capsys) -> None:
    """A protocol listing precision/recall/f1/fn_fp_ratio and an Avg: `dfbench eval --predictions`
    writes the metrics as computed by hand from the scores, and the results layer derives the Avg."""
    from dfbench.benchmark.protocol import load_protocol
    from dfbench.benchmark.results import with_averages

    spec = {**SHORT, "name": "decisions", "metrics": ["auc", "precision", "recall", "f1", "fn_fp_ratio"],
            "averages": [{"name": "Avg", "tests": ["NT/c23", "NT/c40"]}]}
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "decisions.yaml").write_text(yaml.safe_dump(spec))
    common = ["--protocol", str(tmp_path / "decisions.yaml"), "--data-root",
              str(serve_tiny_frames(monkeypatch, tmp_path / "d")), "--no-progress"]
    listing = tmp_path / "list.csv"
    assert main(["export-testlist", *common, "--out", str(listing)]) == 0
    videos = pd.read_csv(listing).drop_duplicates("video_id")[["video_id"]]
    scores = videos.assign(score=np.random.default_rng(1).uniform(0, 1, len(videos)))
    scores.to_csv(tmp_path / "scores.csv", index=False)
    assert main(["eval", *common, "--predictions", str(tmp_path / "scores.csv"), "--name", "M"]) == 0
    printed = capsys.readouterr().out
    assert "Avg" in printed.split("video-level AUC")[1].splitlines()[1]  # the printed matrix's Avg column
    rows = ResultsStore(tmp_path / "runs").read_all()
    video = rows[rows["level"] == "video"]
    assert set(video["metric"]) == {"auc", "precision", "recall", "f1", "fn_fp_ratio"}
    for quality in ("c23", "c40"):
        part = scores[scores.video_id.str.contains(f"/{quality}/")]
        fake = part.video_id.str.contains("/fake/").to_numpy()
        called = part.score.to_numpy() >= 0.5
        tp, fp, fn = int((called & fake).sum()), int((called & ~fake).sum()), int((~called & fake).sum())
        got = video[video.test == f"NT/{quality}"].set_index("metric")["value"]
        assert got["precision"] == pytest.approx(tp / (tp + fp))
        assert got["recall"] == pytest.approx(tp / (tp + fn))
        assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert got["fn_fp_ratio"] == pytest.approx(fn / fp)
    # the derived Avg: the mean of the two tests' values, per metric and level, nothing stored
    assert (rows["derived_from"] == "").all()
    both = with_averages(rows, {"decisions": load_protocol(str(tmp_path / "decisions.yaml")).averages})
    assert with_averages(rows).equals(rows)  # a YAML path's averages are not found by the protocol name
    avg = both[(both.test == "Avg") & (both.level == "video")].set_index("metric")["value"]
    want = video.groupby("metric")["value"].mean()
    assert avg.sort_index().tolist() == pytest.approx(want.sort_index().tolist())
    assert set(both.loc[both.test == "Avg", "derived_from"]) == {"NT/c23; NT/c40"}
