"""Plug-in detectors (issue #16 item 1): the detector of docs/your_detector.md, run from a file
outside the package on a short protocol; check-detector; one-line errors; entry points; and
``dfbench list`` / ``--help`` starting without torch."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dfbench.benchmark import plugins
from dfbench.benchmark.cli import main
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.results import ResultsStore
from dfbench.detectors import DETECTORS, create_detector, list_detectors
from dfbench.testing import DETECTOR_CHECKS, serve_tiny_frames

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "your_detector.md"
# one FF++ NT model at c23, scored on c23 and c40 (tiny frames are 32 px)
SHORT = {
    "name": "short", "version": 1, "description": "one NT c23 model tested on NT c23 and c40",
    "procedure": "train_test", "metrics": ["auc", "acc"], "frames": {"train": 2, "test": 2},
    "trainings": [{"name": "c23", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": ["c23"]}]}],
    "tests": [{"name": f"NT/{q}", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": [q]}]}
              for q in ("c23", "c40")],
}
TINY_SET = ["--set", "input_size=32", "--set", "epochs=1", "--set", "batch_size=8", "--set", "max_steps_per_epoch=2"]


def doc_code() -> str:
    """The one Python block of docs/your_detector.md, exactly as printed."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture(autouse=True)
def restore_registry():
    """Plug-ins register themselves on first use: leave the registry as it was."""
    entries, meta = dict(DETECTORS._entries), dict(DETECTORS._meta)
    yield
    DETECTORS._entries.clear(), DETECTORS._entries.update(entries)
    DETECTORS._meta.clear(), DETECTORS._meta.update(meta)


@pytest.fixture
def doc_detector(tmp_path) -> Path:
    path = tmp_path / "outside" / "my_detector.py"
    path.parent.mkdir()
    path.write_text(doc_code())
    return path


@pytest.fixture
def short_env(tmp_path, monkeypatch) -> tuple[Path, Path]:
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    spec = tmp_path / "short.yaml"
    spec.write_text(yaml.safe_dump(SHORT))
    return spec, serve_tiny_frames(monkeypatch, tmp_path / "data")


def test_doc_detector_is_about_thirty_lines() -> None:
    lines = [line for line in doc_code().splitlines() if line.strip()]
    assert 20 <= len(lines) <= 35, len(lines)


def test_doc_detector_runs_a_short_protocol_from_a_file_outside_the_package(doc_detector, short_env, tmp_path, capsys) -> None:
    protocol, data = short_env
    spec = f"{doc_detector}:TinyCNN"
    assert not str(doc_detector.resolve()).startswith(str(ROOT))
    assert main(["run", "--protocol", str(protocol), "--detector", spec, "--data-root", str(data),
                 "--no-progress", *TINY_SET]) == 0
    rows = ResultsStore(tmp_path / "runs").read_all()
    auc = rows[(rows.metric == "auc") & (rows.level == "video")]
    assert sorted(auc["test"]) == ["NT/c23", "NT/c40"] and auc["value"].between(0, 1).all()
    # the rows say which code produced them
    sha = hashlib.sha256(doc_detector.read_bytes()).hexdigest()
    assert set(rows["detector"]) == {spec}
    assert set(rows["detector_source"]) == {f"{doc_detector.resolve()}:TinyCNN"}
    assert set(rows["detector_sha256"]) == {sha}
    assert rows["trained_here"].all()
    # the model is the doc's network, with the config values given on the command line
    run_dir = next((tmp_path / "runs").rglob("run.json")).parent
    assert (run_dir / "models" / "c23" / "model.pt").is_file()
    detector = create_detector(spec, input_size=32)
    assert type(detector).__name__ == "TinyCNN" and detector.config.width == 16 and detector.config.input_size == 32
    # a changed file (same config) is other code: its earlier model is not resumed
    doc_detector.write_text(doc_code() + "# edited\n")
    DETECTORS._entries.pop(spec), DETECTORS._meta.pop(spec)  # as a new process would see it
    capsys.readouterr()
    assert main(["run", "--protocol", str(protocol), "--detector", spec, "--data-root", str(data),
                 "--no-progress", *TINY_SET]) == 2
    assert "holds a run with another detector sha256" in capsys.readouterr().err


def test_check_detector_runs_the_common_checks(doc_detector, tmp_path, capsys) -> None:
    assert main(["check-detector", f"{doc_detector}:TinyCNN"]) == 0
    out = capsys.readouterr().out
    n = len(DETECTOR_CHECKS)  # every named check of dfbench.testing, the built-ins' battery
    assert len(re.findall(r"^PASS ", out, re.M)) == n and f"{n}/{n} checks passed" in out
    # a detector whose scores leave [0, 1] fails fit_predict: exit 1, the other checks still run
    bad = tmp_path / "bad.py"
    bad.write_text(doc_code() + "\n\nclass Doubled(TinyCNN):\n    def predict_proba_tensor(self, x):\n"
                   "        return 2 * super().predict_proba_tensor(x) + 1\n")
    assert main(["check-detector", f"{bad}:Doubled"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^FAIL\s+fit_predict", out, re.M) and re.search(r"^PASS\s+save_load", out, re.M)
    assert "failed: fit_predict" in out


@pytest.mark.parametrize(("spec", "message"), [
    ("{tmp}/nowhere.py:TinyCNN", r"file .*nowhere\.py does not exist"),
    ("{doc}:NoSuchClass", r"has no attribute 'NoSuchClass'; Detector subclasses there: TinyCNN"),
    ("{doc}:TinyCNNConfig", r"TinyCNNConfig in .* is a type, not a subclass of dfbench\.detectors\.Detector"),
    ("{doc}:torch", r"torch in .* is a module, not a subclass"),
    ("no_such_pkg.mod:Det", r"no module named 'no_such_pkg\.mod'"),
    ("{tmp}/broken.py:X", r"importing .*broken\.py failed: ZeroDivisionError"),
    ("ermm", r"Unknown detector 'ermm'\. Did you mean erm.*path/to/file\.py:ClassName"),
])
def test_a_wrong_spec_is_one_error_line(spec, message, doc_detector, tmp_path, capsys) -> None:
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    spec = spec.format(tmp=tmp_path, doc=doc_detector)
    with pytest.raises(ConfigError, match=message):
        create_detector(spec)
    assert main(["check-detector", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(message, err[0])


def test_module_spec_and_entry_point(doc_detector, monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(doc_detector.parent))
    det = create_detector("my_detector:TinyCNN")
    assert type(det).__name__ == "TinyCNN" and det.name == "my_detector:TinyCNN"
    meta = DETECTORS.meta("my_detector:TinyCNN")
    assert meta["source"] == "my_detector:TinyCNN" and meta["sha256"] == hashlib.sha256(doc_detector.read_bytes()).hexdigest()
    # an installed package's entry point: listed from metadata (nothing imported), resolved on use
    listing = {"description": "plug-in my_detector:TinyCNN from my-pkg 1.0", "paper": "", "paper_methods": (),
               "overrides": {}, "plugin": True, "source": "my_detector:TinyCNN", "sha256": ""}
    monkeypatch.setattr(plugins, "_entry_points", lambda: {"tiny_cnn": ("my_detector:TinyCNN", listing),
                                                           "erm": ("my_detector:TinyCNN", listing)})
    assert "tiny_cnn" in list_detectors() and "tiny_cnn" in DETECTORS
    assert DETECTORS.meta("tiny_cnn")["description"] == listing["description"]
    assert main(["list", "detectors"]) == 0
    assert re.search(r"^tiny_cnn\s+plug-in my_detector:TinyCNN from my-pkg 1\.0", capsys.readouterr().out, re.M)
    assert type(create_detector("tiny_cnn")).__name__ == "TinyCNN"
    assert DETECTORS.meta("tiny_cnn")["entry_point"] == "tiny_cnn"
    assert type(create_detector("erm")).__name__ == "ERM"  # a built-in name wins


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout


@pytest.mark.parametrize("argv", [["list", "detectors"], ["list", "protocols"], ["list", "datasets"], ["--help"]])
def test_listing_and_help_do_not_import_torch(argv) -> None:
    out = _fresh_python(
        "import contextlib, io, sys\n"
        "from dfbench.benchmark.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        "print(len(buf.getvalue().splitlines()), 'torch' in sys.modules)\n"
    )
    lines, torch_loaded = out.split()
    assert torch_loaded == "False" and int(lines) > 3
