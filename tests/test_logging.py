"""Readable runs: one log line per epoch that reads the same in a file as in a terminal, a
run.log per run folder, notices for a resumed fit and embedded-data generation,
``--no-progress`` everywhere, ``dfbench --version`` and help on every option."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import pytest
import yaml

from dfbench.benchmark.cli import build_parser, main
from dfbench.detectors import create_detector
from dfbench.detectors.base import epoch_line
from dfbench.testing import TINY, tiny_frameset

EPOCH = re.compile(
    r"epoch (\d+)/(\d+): train loss (\d+\.\d{4}), val video AUC (\d\.\d{4}|nan), lr (\d\.\d{2}e[-+]\d{2}), (\d+\.\d) s"
)


def test_epoch_line_format() -> None:
    logs = {"loss": 0.69314, "val_video_auc": 0.75, "epoch": 1, "loss_adv": 1.25}
    assert epoch_line(1, 6, logs, 1e-3, 3.21) == (
        "epoch 2/6: train loss 0.6931, val video AUC 0.7500, lr 1.00e-03, 3.2 s (loss_adv 1.25)"
    )
    assert epoch_line(0, 3, {"loss": 0.5, "val_video_auc": 0.5}, 2e-4, 0.04, label="bleach epoch") == (
        "bleach epoch 1/3: train loss 0.5000, val video AUC 0.5000, lr 2.00e-04, 0.0 s"
    )


def test_fit_logs_one_line_per_epoch_and_a_resume_notice(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dfbench")
    frames = tiny_frameset()
    det = create_detector("erm", **{**TINY, "epochs": 3, "lr_step_epochs": 1, "lr_gamma": 0.5})

    class Interrupt(Exception):
        pass

    def stop_in_epoch_three(desc: str, done: int, total: int) -> None:
        if desc.startswith("epoch 3"):
            raise Interrupt

    with pytest.raises(Interrupt):
        det.fit(frames, frames, seed=0, checkpoint_dir=tmp_path, progress=stop_in_epoch_three)
    lines = [r.getMessage() for r in caplog.records if r.name == "dfbench.detectors.base"]
    matches = [EPOCH.fullmatch(line) for line in lines]
    assert len(lines) == 2 and all(matches)
    assert [m.group(1, 2) for m in matches] == [("1", "3"), ("2", "3")]
    # StepLR(step 1, gamma 0.5): the lr the epoch trained with, halved after each epoch
    assert [float(m.group(5)) for m in matches] == [1e-3, 5e-4]
    history_loss = [f"{h['loss']:.4f}" for h in det_history(tmp_path)]
    assert [m.group(3) for m in matches] == history_loss
    caplog.clear()
    resumed = create_detector("erm", **{**TINY, "epochs": 3, "lr_step_epochs": 1, "lr_gamma": 0.5})
    resumed.fit(frames, frames, seed=0, checkpoint_dir=tmp_path)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("resuming erm from ") and "2 of 3 epochs done" in m for m in messages)
    assert [EPOCH.fullmatch(m).group(1, 5) for m in messages if EPOCH.fullmatch(m)] == [("3", "2.50e-04")]


def det_history(folder: Path) -> list[dict[str, float]]:
    from dfbench.detectors.base import read_checkpoint

    return read_checkpoint(folder / "train_state.pt")["report"]["history"]


def test_a_run_logs_epochs_to_stderr_and_run_log(ffpp_fixture, tmp_path, monkeypatch, capsys) -> None:
    """Output captured (not a terminal): the epoch lines are in stderr as plain lines, and
    the run folder's run.log holds the same lines with timestamps. Data: the real-photo
    FF++-layout fixture (NeuralTextures c23, its train/val/test splits)."""
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    spec = tmp_path / "one.yaml"
    nt = {"dataset": "ffpp", "methods": ["NeuralTextures"], "reals": ["youtube"], "qualities": ["c23"]}
    spec.write_text(yaml.safe_dump({
        "name": "one", "version": 1, "metrics": ["auc"], "frames": {"train": 2, "test": 2},
        "trainings": [{"name": "c23", "data": [nt]}], "tests": [{"name": "NT/c23", "data": [nt]}],
    }))
    args = ["run", "--protocol", str(spec), "--detector", "erm", "--data-root", str(ffpp_fixture.root.parent), "--results",
            str(tmp_path / "runs"), "--no-progress", "--set", "epochs=2", "--set", "input_size=32",
            "--set", "max_steps_per_epoch=2", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    epochs = [line for line in err.splitlines() if EPOCH.fullmatch(line)]
    assert [EPOCH.fullmatch(line).group(1) for line in epochs] == ["1", "2"]
    assert "[c23] training erm" in err and "[c23] scoring NT/c23" in err
    log = next((tmp_path / "runs").rglob("run.log"))
    assert log.parent.name == "seed0" and log.parent.parent.name == "mini"
    text = log.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO dfbench\.detectors\.base: "
    assert [line.split(": ", 1)[1] for line in text if re.fullmatch(stamp + EPOCH.pattern, line)] == epochs
    # a re-run appends to the same file and says nothing is left to do
    assert main(args) == 0
    assert "already scored" in capsys.readouterr().err
    assert log.read_text().splitlines()[: len(text)] == text and "already scored" in log.read_text()
    # the handler is gone after the run: later records do not reach the file
    logging.getLogger("dfbench.test").warning("after the run")
    assert "after the run" not in log.read_text()


def test_no_progress_reaches_embedded_data_generation(monkeypatch, tmp_path) -> None:
    import dfbench.datasets.synth as synth
    from dfbench.benchmark.data import default_roots

    calls = []
    monkeypatch.setattr(synth, "ensure_embedded_data", lambda scale, **kw: calls.append((scale, kw)) or tmp_path)
    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path))
    default_roots(None, ["ffpp"], progress=False)
    assert main(["data", "synth", "--no-progress"]) == 0
    assert calls == [("mini", {"progress": False}), ("mini", {"progress": False})]


def test_embedded_generation_is_announced(monkeypatch, tmp_path, caplog) -> None:
    from dfbench.datasets.synth import embedded

    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path))
    made = []
    monkeypatch.setattr(embedded, "generate_ffpp_like", lambda out, **kw: made.append(kw["progress"]))
    monkeypatch.setattr(embedded, "_complete", lambda ffpp, scale: bool(made))
    import dfbench.datasets.synth.cross_dataset as cross

    monkeypatch.setattr(cross, "cross_dataset_complete", lambda *a: True)
    caplog.set_level(logging.INFO, logger="dfbench")
    embedded.ensure_embedded_data("mini", progress=False)
    assert made == [False]
    notices = [r.getMessage() for r in caplog.records if "generating the embedded benchmark" in r.getMessage()]
    assert len(notices) == 1 and str(tmp_path / "mini") in notices[0]
    caplog.clear()
    embedded.ensure_embedded_data("mini", progress=False)  # complete now: no notice
    assert not [r for r in caplog.records if "generating" in r.getMessage()]


def _actions(parser: argparse.ArgumentParser, path: str = "dfbench"):
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")


def test_every_option_of_every_subcommand_has_help() -> None:
    missing = [
        f"{path}: {'/'.join(a.option_strings) or a.dest}"
        for path, a in _actions(build_parser())
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert missing == []
    commands = {path for path, _ in _actions(build_parser())}
    assert {"dfbench run", "dfbench score", "dfbench data synth", "dfbench datasets check"} <= commands


def test_version(capsys) -> None:
    from dfbench import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"dfbench {__version__}"
    from importlib.metadata import version

    assert __version__ == version("dfbench")  # the package and its metadata (pyproject.toml) agree
