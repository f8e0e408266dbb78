"""Issue #18 item 4: every run and every preprocess ends with one summary naming each rejected
entry and failed video (dependants included) and why, and exits 1 when any input failed
unless --allow-failures is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from dfbench.benchmark.cli import main

NT = "manipulated_sequences/NeuralTextures"


def plant(root: Path, outside: Path) -> dict[str, str]:
    """Plant four faults in an FF++ tree; returns the name each must appear under → why."""
    outside.write_bytes(b"not yours")
    link = root / NT / "c40/videos/004_005.mp4"
    link.unlink()
    link.symlink_to(outside)  # 1. a link out of the root
    raw_001 = root / "original_sequences/youtube/raw/videos/001.mp4"
    raw_001.write_bytes(raw_001.read_bytes()[:200])  # 2. a truncated reference video
    (root / NT / "c23/videos/001_000.mp4").write_bytes(b"")  # 3. an empty fake (its reference is 2.)
    (root / NT / "c40/videos/005_004.mp4").write_bytes(os.urandom(4096))  # 4. garbage
    return {
        f"REJECTED ffpp:{NT}/c40/videos/004_005.mp4": "resolves outside the dataset root",
        "FAILED ffpp/youtube/c23/001": "reference video ffpp/youtube/raw/001 is unusable",
        "FAILED ffpp/NeuralTextures/c23/001_000": "is empty (0 bytes)",
        "FAILED ffpp/NeuralTextures/c40/005_004": "cannot be opened",
    }


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    monkeypatch.delenv("DFBENCH_DATA", raising=False)
    monkeypatch.delenv("DFBENCH_CACHE", raising=False)
    return tmp_path


def summary_lines(out: str) -> list[str]:
    block = out[out.index("input(s) failed"):]
    return [line.strip() for line in block.splitlines()[1:] if line.startswith("  ")]


def test_run_summary_names_every_planted_fault_and_exits_1(ffpp_copy, env, capsys):
    expected = plant(ffpp_copy, env / "outside.mp4")
    spec = env / "spec.yaml"
    select = {"dataset": "ffpp", "methods": ["NeuralTextures"], "reals": ["youtube"]}
    spec.write_text(yaml.safe_dump({
        "name": "faults", "version": 1, "frames": {"train": 2, "test": 2},
        "trainings": [{"name": "c23", "data": [{**select, "qualities": ["c23"]}]}],
        "tests": [{"name": "NT/c40", "data": [{**select, "qualities": ["c40"]}]}],
    }))
    args = ["run", "--protocol", str(spec), "--detector", "erm", "--data-root", str(ffpp_copy.parent),
            "--set", "epochs=1", "--set", "batch_size=8", "--no-progress"]
    assert main(args) == 1
    captured = capsys.readouterr()
    lines = summary_lines(captured.out)
    assert len(lines) == len(expected), lines
    for name, why in expected.items():
        assert any(line.startswith(name) and why in line for line in lines), (name, lines)
    assert "4 input(s) were rejected or failed" in captured.err and "--allow-failures" in captured.err
    # the same run again, accepted: every cell is reused, the summary is printed again, exit 0
    assert main([*args, "--allow-failures"]) == 0
    assert len(summary_lines(capsys.readouterr().out)) == len(expected)


def test_preprocess_summary_and_exit_code(ffpp_copy, env, capsys):
    expected = plant(ffpp_copy, env / "outside.mp4")
    args = ["preprocess", "--dataset", "ffpp", "--root", str(ffpp_copy), "--frames", "2", "--size", "32",
            "--cache", str(env / "cache"), "--no-progress"]
    assert main(args) == 1
    lines = summary_lines(capsys.readouterr().out)
    for name, why in expected.items():
        assert any(line.startswith(name) and why in line for line in lines), (name, lines)
    # every video that reuses the truncated reference fails too, each named
    for vid in ("youtube/raw/001", "youtube/c40/001", "NeuralTextures/raw/001_000", "Deepfakes/c23/001_000"):
        assert any(line.startswith(f"FAILED ffpp/{vid}:") for line in lines), (vid, lines)
    assert main([*args, "--allow-failures"]) == 0


def test_dependants_of_a_failed_paired_real_are_named(ffpp_copy, env):
    from dfbench.benchmark.data import clear_index_memo, load_frames
    from dfbench.benchmark.preprocess.cache import CropCache, CropParams
    from dfbench.datasets.base import Selection

    c23_000 = ffpp_copy / "original_sequences/youtube/c23/videos/000.mp4"
    c23_000.write_bytes(c23_000.read_bytes()[:300])
    clear_index_memo()
    failures: dict[str, str] = {}
    with pytest.warns(UserWarning):
        load_frames([Selection("ffpp", "train", ("NeuralTextures",), ("youtube",), ("c23",))],
                    roots={"ffpp": ffpp_copy}, cache=CropCache(env / "cache"), crop=CropParams(frames=2, size=32),
                    requires=("paired_real",), progress=False, failures=failures)
    clear_index_memo()
    assert set(failures) == {"ffpp/youtube/c23/000", "ffpp/NeuralTextures/c23/000_001"}
    assert failures["ffpp/NeuralTextures/c23/000_001"].startswith("its target's real video ffpp/youtube/c23/000 failed:")


def test_preprocess_cli_on_a_clean_tree(ffpp_fixture, env, capsys):
    """`dfbench preprocess` fills the cache for every indexed video, exits 0, and a second
    pass reads everything from the cache."""
    args = ["preprocess", "--dataset", "ffpp", "--root", str(ffpp_fixture.root), "--frames", "2", "--size", "32",
            "--cache", str(env / "cache"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Preprocessed 63 videos") and "0 from the cache, 63 built" in out and "0 failed" in out
    assert out.rstrip().endswith("All inputs were used: no rejected entries, no failed videos.")
    assert len(list((env / "cache").rglob("crops/*/*.npz"))) == 63
    assert main(args) == 0
    assert "63 from the cache, 0 built" in capsys.readouterr().out
