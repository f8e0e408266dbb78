"""Issue #18 item 2: a full disk during training, and read-only --results / --out /
DFBENCH_HOME, each end in one ``error:`` line naming the folder (exit 2), with no temp file left.

The full and read-only file systems are real: a small tmpfs (``mount -t tmpfs``, size 64 KiB)
and a read-only tmpfs (``-o ro``), because the tests run as root and ``chmod`` does not stop
root's writes. Where mounting is not permitted, the same errors are simulated by making the
atomic writer's fsync raise ``OSError(ENOSPC)`` / the folder probe raise ``OSError(EROFS)``;
each test reports which (``mode`` in its id)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest

from dfbench.benchmark.cli import main


def _mount(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture
def limited(tmp_path, monkeypatch, request):
    """``limited(kind)`` → a folder that is full ("full") or read-only ("readonly")."""
    mounted: list[Path] = []
    modes: list[str] = []

    def make(kind: str) -> Path:
        folder = tmp_path / f"{kind}-{len(mounted) + len(modes)}"
        if _mount(folder, "size=64k" if kind == "full" else "ro,size=64k"):
            mounted.append(folder)
            modes.append("tmpfs")
            return folder
        modes.append("simulated")
        folder.mkdir(parents=True, exist_ok=True)
        import dfbench.benchmark.results as results

        code = errno.ENOSPC if kind == "full" else errno.EROFS
        real_fsync, real_mkstemp = os.fsync, results.tempfile.mkstemp

        def fsync(fd):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                raise OSError(code, os.strerror(code))
            return real_fsync(fd)

        def mkstemp(*args, dir=None, **kwargs):
            if kind == "readonly" and str(dir).startswith(str(folder)):
                raise OSError(code, os.strerror(code))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(results.os, "fsync", fsync)
        monkeypatch.setattr(results.tempfile, "mkstemp", mkstemp)
        return folder

    make.modes = modes  # type: ignore[attr-defined]
    yield make
    for folder in mounted:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["umount", str(folder)], capture_output=True, timeout=10)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_full_disk_during_training_is_one_error_and_leaves_no_temp_file(limited, capsys):
    from dfbench.benchmark.results import ResultsError
    from dfbench.detectors import create_detector
    from dfbench.testing import TINY, tiny_frameset

    folder = limited("full")
    frames = tiny_frameset()
    detector = create_detector("erm", **{**TINY, "epochs": 1})
    with pytest.raises(ResultsError) as caught:
        detector.fit(frames, frames, seed=0, checkpoint_dir=folder / "models")
    message = str(caught.value)
    assert message == f"Cannot write to {folder / 'models'}: no space is left on its file system; free disk space and re-run (finished work is kept)."
    assert not [f for f in _files(folder) if f.endswith(".tmp")], _files(folder)
    assert "train_state.pt" not in " ".join(_files(folder))
    print(f"mode={limited.modes[0]}")


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    monkeypatch.delenv("DFBENCH_DATA", raising=False)
    monkeypatch.delenv("DFBENCH_CACHE", raising=False)
    return tmp_path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


def test_read_only_results_folder(limited, cli_env, capsys):
    ro = limited("readonly")
    rc = main(["run", "--protocol", "cross_quality", "--detector", "erm", "--results", str(ro / "runs"), "--no-progress"])
    assert rc == 2
    line = _one_error_line(capsys)
    assert f"The results (--results or DFBENCH_RESULTS) folder {ro / 'runs'} cannot be written" in line, line
    assert _files(ro) == []


def test_read_only_home(limited, cli_env, capsys, monkeypatch):
    ro = limited("readonly")
    monkeypatch.setenv("DFBENCH_HOME", str(ro))
    rc = main(["run", "--protocol", "cross_quality", "--detector", "erm", "--no-progress"])
    assert rc == 2
    line = _one_error_line(capsys)
    assert f"The crop-cache (DFBENCH_CACHE, default $DFBENCH_HOME/cache) folder {ro / 'cache'} cannot be written" in line


def test_read_only_leaderboard_out(limited, cli_env, capsys):
    ro = limited("readonly")
    assert main(["leaderboard", "--out", str(ro / "board")]) == 2
    assert f"The leaderboard (--out) folder {ro / 'board'} cannot be written" in _one_error_line(capsys)


def test_a_write_error_outside_the_atomic_helper_is_one_line(cli_env, capsys, monkeypatch):
    import dfbench.benchmark.cli as cli

    def boom(args):
        raise OSError(errno.EROFS, "Read-only file system", str(cli_env / "somewhere" / "file.json"))

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["list"].set_defaults(func=boom)
    assert main(["list", "detectors"]) == 2
    assert _one_error_line(capsys) == f"error: Cannot write to {cli_env / 'somewhere'}: it is on a read-only file system; choose a writable folder."
