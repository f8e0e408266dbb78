"""``dfbench score``: per-frame and per-video P(fake) of a dfbench checkpoint for loose videos
(the real-photo fixture's videos, a video without a face and a truncated file)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfbench.benchmark.cli import main
from dfbench.benchmark.errors import ConfigError
from dfbench.detectors import create_detector
from dfbench.testing import TINY

FRAMES = 4  # of the fixture's 8 per video: 0, 2, 5, 7 (linspace, rounded)


@pytest.fixture
def videos(ffpp_fixture, tmp_path: Path) -> Path:
    """youtube 000 and 001 (faces), 006 (no face) and 007 (truncated) at c23, in one folder."""
    from dfbench.benchmark.preprocess.fixture import add_bad_videos

    root = tmp_path / "ffpp"
    folder = root / "original_sequences" / "youtube" / "c23" / "videos"
    folder.mkdir(parents=True)
    (root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos").mkdir(parents=True)  # add_bad_videos writes a fake there
    for name in ("000", "001"):
        shutil.copy(ffpp_fixture.root / "original_sequences" / "youtube" / "c23" / "videos" / f"{name}.mp4", folder)
    add_bad_videos(root)
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    return tmp_path


def _checkpoint(path: Path, p_fake: float | None = None) -> Path:
    """An untrained tiny ERM model; with ``p_fake``, its head is set to output exactly that
    P(fake) for any input (zero weights, logit bias log(p / (1 - p)))."""
    det = create_detector("erm", **TINY)
    model = det.ensure_built()
    if p_fake is not None:
        head = model.get_classifier()
        with torch.no_grad():
            head.weight.zero_()
            head.bias.copy_(torch.tensor([0.0, math.log(p_fake / (1 - p_fake))]))
    det.save(path)
    return path


def test_score_prints_per_video_scores_and_names_failed_videos(videos, env, capsys) -> None:
    ckpt = _checkpoint(env / "model.pt")
    out = env / "scores.json"
    rc = main(["score", str(videos), "--checkpoint", str(ckpt), "--frames", str(FRAMES), "--device", "cpu",
               "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1  # two videos got no score
    assert "2 video(s) got no score" in captured.err
    lines = captured.out.splitlines()
    assert any(line.startswith("NO FACE: ") and "006.mp4" in line for line in lines)
    assert any(line.startswith("UNREADABLE: ") and "007.mp4" in line and "truncated" in line for line in lines)
    assert "2 of 4 video(s) scored; 2 without a score." in lines

    blob = json.loads(out.read_text())
    assert blob["detector"] == "erm" and blob["input_size"] == TINY["input_size"] and blob["n_failed"] == 2
    by_name = {Path(v["video"]).name: v for v in blob["videos"]}
    assert [by_name[n]["status"] for n in ("000.mp4", "001.mp4", "006.mp4", "007.mp4")] == [
        "ok", "ok", "no face", "unreadable"]
    assert by_name["006.mp4"]["p_fake"] is None and by_name["006.mp4"]["frames"] == []

    # the same crops as preprocessing makes (the driver's cache entries), scored by the checkpoint
    from dfbench.benchmark.preprocess.cache import CropCache, CropParams
    from dfbench.benchmark.preprocess.pipeline import ensure_crops
    from dfbench.benchmark.score import _index, load_checkpoint_detector

    detector = load_checkpoint_detector(ckpt)
    index = _index([(videos / "000.mp4", "000.mp4"), (videos / "001.mp4", "001.mp4")])
    report, entries = ensure_crops(index, cache=CropCache(env / "home" / "cache"), real_methods=(), qualities=(),
                                   params=CropParams(frames=FRAMES, size=TINY["input_size"], detect_on_fake=True),
                                   keep=True, progress=False)
    assert report.processed == 0 and report.cached == 2  # `score` filled the cache: nothing rebuilt
    for vid, name in zip(index["video_id"], ("000.mp4", "001.mp4")):
        item = by_name[name]
        assert [f["frame"] for f in item["frames"]] == [0, 2, 5, 7]
        assert all(f["face_found"] for f in item["frames"])
        expected = detector.predict(entries[vid]["crops"])
        np.testing.assert_allclose([f["p_fake"] for f in item["frames"]], expected, rtol=0, atol=1e-6)
        assert item["p_fake"] == pytest.approx(float(np.mean(expected)), abs=1e-9)  # video = mean of its frames
        # the terminal table shows the same video score
        assert any(name in line and f"{item['p_fake']:.4f}" in line for line in lines)


def test_score_csv_and_the_loaded_weights(videos, env, capsys) -> None:
    """A checkpoint whose head outputs P(fake) = 0.8 for any face: every frame and video reads
    0.8 (so the weights come from the file, not a fresh network); the CSV is long form."""
    ckpt = _checkpoint(env / "model.pt", p_fake=0.8)
    out = env / "scores.csv"
    rc = main(["score", str(videos), "--checkpoint", str(ckpt), "--frames", str(FRAMES), "--device", "cpu",
               "--no-progress", "--out", str(out), "--allow-failures"])
    assert rc == 0
    rows = pd.read_csv(out)
    video_rows = rows[rows.level == "video"]
    assert len(video_rows) == 4 and len(rows[rows.level == "frame"]) == 2 * FRAMES
    ok = rows[rows.status == "ok"]
    np.testing.assert_allclose(ok["p_fake"], 0.8, atol=1e-6)
    failed = video_rows[video_rows.status != "ok"]
    assert failed["p_fake"].isna().all() and failed["reason"].str.len().min() > 10


def test_score_one_file_and_checkpoint_errors(videos, env, capsys) -> None:
    ckpt = _checkpoint(env / "model.pt", p_fake=0.25)
    assert main(["score", str(videos / "000.mp4"), "--checkpoint", str(ckpt), "--frames", "2", "--device", "cpu",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "000.mp4" in out and "0.2500" in out and "1 of 1 video(s) scored; 0 without a score." in out

    # a checkpoint that does not say which detector and config built it
    torch.save({"format": 1, "state": {"model": {}}}, env / "bare.pt")
    assert main(["score", str(videos), "--checkpoint", str(env / "bare.pt"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not say which detector and config built it" in err and err.count("\n") == 1
    # an unfinished fit's training state
    torch.save({"format": 1, "detector": "erm", "next_epoch": 1, "config_hash": "x"}, env / "train_state.pt")
    assert main(["score", str(videos), "--checkpoint", str(env / "train_state.pt"), "--no-progress"]) == 2
    assert "training state" in capsys.readouterr().err
    # a registered-name mismatch, an unknown output type, an empty folder
    blob = torch.load(ckpt, weights_only=True)
    blob["detector"] = "no_such_detector"
    torch.save(blob, env / "renamed.pt")
    with pytest.raises(ConfigError, match="no_such_detector"):
        from dfbench.benchmark.score import load_checkpoint_detector

        load_checkpoint_detector(env / "renamed.pt")
    assert main(["score", str(videos), "--checkpoint", str(ckpt), "--out", str(env / "s.xlsx")]) == 2
    assert ".csv or .json" in capsys.readouterr().err
    (env / "empty").mkdir()
    assert main(["score", str(env / "empty"), "--checkpoint", str(ckpt)]) == 2
    assert "holds no video files" in capsys.readouterr().err


def test_score_csv_neutralises_formula_cells(videos, env, monkeypatch) -> None:
    """A video named like a spreadsheet formula, given by a relative path: its CSV cells start
    with a quote (results.csv_bytes), numbers stay numbers."""
    monkeypatch.chdir(env)
    shutil.copy(videos / "000.mp4", env / "=HYPERLINK(1).mp4")
    ckpt = _checkpoint(env / "model.pt", p_fake=0.5)
    assert main(["score", "=HYPERLINK(1).mp4", "--checkpoint", str(ckpt), "--frames", "2", "--device", "cpu",
                 "--no-progress", "--out", "s.csv"]) == 0
    text = (env / "s.csv").read_text().splitlines()
    assert text[0] == "video,level,frame,p_fake,face_found,n_frames,status,reason"
    assert text[1] == "'=HYPERLINK(1).mp4,video,,0.5,,2,ok,"
    assert text[2:] == ["'=HYPERLINK(1).mp4,frame,0,0.5,True,,ok,", "'=HYPERLINK(1).mp4,frame,7,0.5,True,,ok,"]


def test_readme_names_the_demo_checkpoint_where_the_first_command_leaves_it() -> None:
    """The README's score example points at the c23 model of `dfbench run --protocol
    cross_quality --detector erm` (default results root, mini preset, seed 0)."""
    from dfbench.benchmark.protocol import load_protocol
    from dfbench.benchmark.results import ResultsStore

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    backbone = create_detector("erm").get_config().backbone
    run_dir = ResultsStore(Path("results") / "runs").run_dir("cross_quality", "erm", backbone, "mini", 0)
    assert {t.name for t in load_protocol("cross_quality").trainings} == {"raw", "c23", "c40"}
    demo = f"--checkpoint {(run_dir / 'models' / 'c23' / 'model.pt').as_posix()}"
    assert demo in readme and demo in (root / "docs" / "score.md").read_text()
    # after the two set-up commands, which stay the first block
    assert readme.index("dfbench score my_video.mp4") > readme.index("python -m pytest")
