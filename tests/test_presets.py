"""Paper presets as the papers state them: ImageNet initialisation that never falls back to a
random one, weights provenance in the result rows, per-protocol baseline settings, frames."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import timm
import torch
import yaml

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.protocol import load_protocol, parse_protocol
from dfbench.detectors import create_detector, list_detectors
from dfbench.detectors.backbones import cached_pretrained_file, create_backbone


@pytest.fixture
def empty_weight_caches(tmp_path, monkeypatch) -> Path:
    """timm's two local caches (Hugging Face hub, torch hub) pointed at empty folders."""
    from huggingface_hub import constants

    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch-hub"))
    yield hub
    torch.hub.set_dir(before)


def fake_hub_entry(hub: Path, repo: str, state: dict[str, torch.Tensor]) -> Path:
    """A Hugging Face hub cache entry laid out as huggingface_hub writes one."""
    from safetensors.torch import save_file

    folder = hub / ("models--" + repo.replace("/", "--"))
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


# --------------------------------------------------------------------------- initialisation
def test_mini_presets_train_from_scratch_and_paper_presets_pretrain_where_the_paper_does() -> None:
    for name in list_detectors():
        assert create_detector(name).config.pretrained is False, name
        paper = create_detector(name, preset="paper").config
        # BiG-Arts names no ImageNet initialisation; every other seed paper does
        assert paper.pretrained is (not name.startswith("big_arts")), name


def test_paper_preset_without_weights_is_a_one_line_error_naming_weights(empty_weight_caches) -> None:
    detector = create_detector("erm", preset="paper", backbone="resnet10t")
    with pytest.raises(ConfigError) as info:
        detector.init_provenance()
    message = str(info.value)
    assert "\n" not in message
    assert "--weights PATH" in message and "resnet10t" in message and "HF_HOME" in message
    with pytest.raises(ConfigError, match="--weights PATH"):  # building never falls back to random
        detector.ensure_built()


def test_cli_paper_run_without_weights_stops_before_any_data_work(empty_weight_caches, tmp_path, monkeypatch, capsys) -> None:
    from dfbench.benchmark.cli import main

    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_CACHE", str(tmp_path / "cache"))
    rc = main(["run", "--protocol", "cross_quality", "--detector", "erm", "--preset", "paper",
               "--backbone", "resnet10t", "--results", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "--weights PATH" in err[0]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "no-data").exists() and not (tmp_path / "runs").exists()


def test_pretrained_reads_timm_cache_and_never_the_network(empty_weight_caches) -> None:
    source = timm.create_model("resnet10t", num_classes=1000)
    repo = timm.models.get_pretrained_cfg("resnet10t").hf_hub_id
    path = fake_hub_entry(empty_weight_caches, repo, source.state_dict())
    assert cached_pretrained_file("resnet10t") == path
    model = create_backbone("resnet10t", num_classes=2, pretrained=True)
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)
    assert model.fc.weight.shape == (2, 512)  # ImageNet head replaced by a new two-class head
    assert "state_dict" not in model.pretrained_cfg  # timm does not keep a second copy
    features = create_backbone("resnet10t", pretrained=True, features_only=True)  # BiG-Arts' path
    assert torch.equal(features.conv1[0].weight, source.conv1[0].weight)
    detector = create_detector("erm", preset="paper", backbone="resnet10t")
    info = detector.init_provenance()
    assert info["pretrained"] is True and info["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_file_wins_and_is_hashed(tmp_path, empty_weight_caches) -> None:
    source = timm.create_model("resnet10t", num_classes=1000)
    path = tmp_path / "resnet10t.pth"
    torch.save(source.state_dict(), path)
    detector = create_detector("erm", preset="paper", backbone="resnet10t", input_size=32, weights=str(path))
    info = detector.init_provenance()  # the empty timm cache is not consulted
    assert info == {"pretrained": True, "weights_file": str(path), "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    model = detector.ensure_built()
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)
    missing = create_detector("erm", backbone="resnet10t", weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError, match="does not exist"):
        missing.init_provenance()


def test_a_saved_detector_reloads_without_its_initial_weights(tmp_path, empty_weight_caches) -> None:
    """The checkpoint holds every tensor: loading it needs neither timm's cache nor --weights."""
    source = timm.create_model("resnet10t", num_classes=1000)
    weights = tmp_path / "w.pth"
    torch.save(source.state_dict(), weights)
    detector = create_detector("erm", preset="paper", backbone="resnet10t", input_size=32, weights=str(weights))
    detector.ensure_built()
    detector.save(tmp_path / "model.pt")
    weights.unlink()
    again = create_detector("erm", preset="paper", backbone="resnet10t", input_size=32, weights=str(weights)).load(tmp_path / "model.pt")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again.model.eval()(x), detector.model.eval()(x))


# --------------------------------------------------------------------------- protocols
def test_protocol_paper_presets_set_the_compared_papers_baseline() -> None:
    pim = load_protocol("cross_dataset", "paper").detector_settings("erm")
    assert pim["backbone"] == "convnext_base" and pim["optimizer"] == "sgd" and pim["pretrained"] is True
    assert pim["lr_step_epochs"] == 0  # not two_gen_bat's step decay
    assert load_protocol("cross_dataset", "mini").detector_settings("erm") == {}
    qad = load_protocol("quality_agnostic", "paper").detector_settings("erm")
    assert (qad["backbone"], qad["input_size"], qad["lr"], qad["epochs"], qad["batch_size"]) == ("resnet50", 224, 0.002, 32, 64)
    xception = load_protocol("compression_remedy", "paper").detector_settings("erm")
    assert xception["backbone"] == "legacy_xception" and xception["mean"] == [0.5, 0.5, 0.5]
    # the declared settings build a valid config of that detector
    config = create_detector("erm", preset="paper", **pim).config
    assert (config.backbone, config.optimizer, config.batch_size, config.epochs) == ("convnext_base", "sgd", 64, 100)


def test_paper_frames_per_video() -> None:
    for name in ("cross_manipulation", "cross_quality", "all_qualities"):
        spec = load_protocol(name, "paper")
        assert (spec.frames_train, spec.frames_test, spec.version) == (270, 270, 2), name
    dfd = next(t for t in load_protocol("cross_manipulation", "paper").tests if t.name == "DFD")
    assert dfd.frames == 10  # "randomly selected 10 frames from each of them for testing"
    spec = load_protocol("cross_dataset", "paper")
    assert (spec.frames_train, spec.frames_test) == (8, 32)
    assert (load_protocol("compression_remedy", "paper").frames_train, load_protocol("cross_dataset").frames_test) == (300, 8)


MINIMAL = {
    "name": "p", "version": 1,
    "trainings": [{"name": "a", "data": [{"dataset": "ffpp", "qualities": ["c23"]}]}],
    "tests": [{"name": "t", "data": [{"dataset": "ffpp", "qualities": ["c23"]}]}],
}


@pytest.mark.parametrize(
    ("detectors", "message"),
    [
        ({"erm": {"learning_rate": 0.1}}, r"detectors\.erm has unknown config key\(s\) \['learning_rate'\]"),
        ({"ermm": {"lr": 0.1}}, "Did you mean erm"),
        ({"erm": 3}, r"detectors\.erm: Input should be a valid dictionary"),
        ([1], "detectors: Input should be a valid dictionary"),
    ],
)
def test_protocol_detector_settings_are_validated(detectors, message) -> None:
    raw = {**MINIMAL, "presets": {"paper": {"detectors": detectors}}}
    if "Input should" not in message:  # a preset's shape is checked whatever the preset asked for;
        parse_protocol(raw, "inline", "mini")  # its detector names and keys only when it is applied
    with pytest.raises(ConfigError, match=message):
        parse_protocol(raw, "inline", "paper")


@pytest.mark.parametrize("frames", [0, "ten", True])
def test_a_tests_own_frames_must_be_a_positive_count(frames) -> None:
    raw = {**MINIMAL, "tests": [{**MINIMAL["tests"][0], "frames": frames}]}
    with pytest.raises(ConfigError, match=r"tests\[0\]\.frames: Input should be"):
        parse_protocol(raw, "inline")


def test_unknown_key_inside_a_preset_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"with preset 'paper'\): top level: unknown key\(s\) \['detector'\]"):
        parse_protocol({**MINIMAL, "presets": {"paper": {"detector": {"erm": {}}}}}, "inline")


class FramesWithoutVideos:
    """Stands in for the runner's DataResolver: random crops, no decoding or face detection
    (the loaders have their own tests); records the frames per video it was asked for."""

    embedded = True
    asked: list[tuple[str, int]] = []

    def __init__(self, request, spec, input_size) -> None:
        from dfbench.benchmark.failures import FailureLog

        self.roots: dict[str, Path] = {}
        self.failures = FailureLog()

    def available(self, dataset: str) -> bool:
        return True

    def require(self, spec) -> list[str]:
        return []

    def load(self, data, split, per_video, requires):
        import numpy as np
        import pandas as pd

        from dfbench.benchmark.frames import FrameSet

        type(self).asked.append((split, per_video))
        videos = 4
        rng = np.random.default_rng(per_video)
        meta = pd.DataFrame({
            "video_id": [f"{split}/{v}" for v in range(videos) for _ in range(per_video)],
            "frame": [f for _ in range(videos) for f in range(per_video)],
            "label": [v % 2 for v in range(videos) for _ in range(per_video)],
        })
        return FrameSet(rng.integers(0, 256, (len(meta), 16, 16, 3), dtype=np.uint8), meta)


def test_protocol_settings_reach_the_detector_and_the_rows(tmp_path, monkeypatch) -> None:
    """A user protocol declares erm's setting for its paper preset; --weights supplies the
    ImageNet-style initialisation; rows and run.json record pretrained and the file's sha256."""
    import json

    from dfbench.benchmark import runner

    monkeypatch.setattr(runner, "DataResolver", FramesWithoutVideos)
    FramesWithoutVideos.asked = []
    spec = {
        **MINIMAL,
        "tests": [*MINIMAL["tests"], {"name": "t1", "data": [{"dataset": "ffpp"}], "frames": 1}],
        "metrics": ["auc"],
        "presets": {"paper": {"frames": {"train": 2, "test": 3}, "detectors": {
            "erm": {"backbone": "resnet10t", "input_size": 32, "epochs": 1, "batch_size": 8, "lr": 0.01}}}},
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    weights = tmp_path / "resnet10t.pth"
    torch.save(timm.create_model("resnet10t", num_classes=1000).state_dict(), weights)
    request = runner.RunRequest(protocol=str(path), detector="erm", preset="paper", results_root=tmp_path / "runs",
                                overrides={"weights": str(weights), "lr": 0.02}, progress=False, quiet=True, device="cpu")
    rows = runner.run(request)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(rows) and rows["pretrained"].tolist() == [True] * len(rows) and set(rows["weights_sha256"]) == {sha}
    assert sorted(set(FramesWithoutVideos.asked)) == [("test", 1), ("test", 3), ("train", 2), ("val", 3)]
    meta = json.loads(next((tmp_path / "runs").rglob("run.json")).read_text())
    assert meta["weights_sha256"] == sha and meta["pretrained"] is True and meta["weights_file"] == str(weights)
    config = meta["detector_config"]
    # the protocol's setting, then the user's override (lr) on top; the rest from erm's paper preset
    assert (config["backbone"], config["input_size"], config["epochs"], config["lr"], config["optimizer"]) == (
        "resnet10t", 32, 1, 0.02, "radam")
    assert meta["protocol_detector_settings"]["lr"] == 0.01
    # another weights file under the same config is not resumed into this run
    torch.save(timm.create_model("resnet10t", num_classes=1000).state_dict(), weights)
    with pytest.raises(ConfigError, match="another weights sha256"):
        runner.run(request)
    # a mini run is recorded as not pretrained, with no hash
    mini = runner.run(runner.RunRequest(protocol=str(path), detector="erm", results_root=tmp_path / "runs",
                                        overrides={"input_size": 32, "epochs": 1}, progress=False, quiet=True, device="cpu"))
    assert mini["pretrained"].tolist() == [False] * len(mini) and set(mini["weights_sha256"]) == {""}
