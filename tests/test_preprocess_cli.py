"""`dfbench preprocess`: --protocol fills exactly the crops a run reads; --device / --workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfbench.benchmark.cli import main
from dfbench.benchmark.preprocess import cache as cache_module
from dfbench.benchmark.preprocess import faces


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from dfbench.datasets.synth import generate_ffpp_like

    return generate_ffpp_like(tmp_path_factory.mktemp("synth") / "FaceForensics++", scale="tiny", seed=0, progress=False)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "home" / "runs"))
    monkeypatch.setenv("DFBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def crop_files(cache_root: Path) -> set[str]:
    return {p.stem for p in (cache_root / f"v{cache_module.CACHE_FORMAT_VERSION}" / "crops").rglob("*.npz")}


@pytest.mark.slow  # trains three one-epoch models on the tiny set
def test_preprocess_protocol_warms_exactly_what_the_run_reads(env, tiny_root, monkeypatch, capsys) -> None:
    assert main(["preprocess", "--protocol", "cross_quality", "--data-root", str(tiny_root), "--no-progress",
                 "--workers", "0", "--device", "cpu"]) == 0
    written = crop_files(env)
    # tiny: 4/1/1 train/val/test pairs, each 2 youtube reals + 2 NT fakes, at 3 qualities;
    # cross_quality loads 8 frames for every set, so each video has one entry
    assert len(written) == (4 + 1 + 1) * 4 * 3, len(written)
    assert "Preprocessed" in capsys.readouterr().out

    # the run must neither detect faces nor write a crop entry; record what it reads
    def no_detection(self, frames):
        raise AssertionError("the run ran face detection after dfbench preprocess --protocol")

    read: set[str] = set()
    get = cache_module.CropCache.get

    def spy_get(self, kind, key, names=None):
        if kind == "crops":
            read.add(key)
        return get(self, kind, key, names)

    def no_put(self, kind, key, arrays):
        raise AssertionError(f"the run wrote a {kind} cache entry after dfbench preprocess --protocol")

    monkeypatch.setattr(faces.FaceDetector, "detect", no_detection)
    monkeypatch.setattr(cache_module.CropCache, "get", spy_get)
    monkeypatch.setattr(cache_module.CropCache, "put", no_put)
    assert main(["run", "--protocol", "cross_quality", "--detector", "erm", "--data-root", str(tiny_root),
                 "--set", "epochs=1", "--no-progress"]) == 0
    assert read == written  # exactly: nothing missing, nothing extra


def test_preprocess_device_and_mode_errors(env, tiny_root, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["preprocess", "--dataset", "ffpp", "--root", str(tiny_root), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "CUDA is not available" in err and len(err.strip().splitlines()) == 1
    assert main(["preprocess", "--protocol", "cross_quality", "--frames", "4"]) == 2
    assert "--protocol takes" in capsys.readouterr().err
    assert main(["preprocess", "--root", str(tiny_root)]) == 2
    assert "needs --protocol P, or --dataset NAME and --root DIR" in capsys.readouterr().err
    assert main(["preprocess", "--dataset", "ffpp", "--root", str(tiny_root), "--workers", "-1"]) == 2
    assert main(["preprocess", "--dataset", "ffpp", "--root", str(tiny_root), "--detect-size", "10"]) == 2
    assert "detect_size" in capsys.readouterr().err


@pytest.mark.slow  # two spawned processes each import torch
def test_preprocess_dataset_with_workers(env, tiny_root, capsys) -> None:
    """Two worker processes fill the same entries one process would (re-run: all cached)."""
    args = ["preprocess", "--dataset", "ffpp", "--root", str(tiny_root), "--frames", "2", "--size", "32",
            "--no-progress", "--device", "cpu"]
    assert main([*args, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    n = len(crop_files(env))
    assert n > 0 and "0 from the cache" in out and "0 failed" in out
    assert main([*args, "--workers", "0"]) == 0
    assert f"{n} from the cache, 0 built" in capsys.readouterr().out
