"""Issue #18 item 3: the whole run request is validated before any data is generated,
preprocessed or loaded; every mistake is one ``error:`` line naming the key and what is allowed."""

from __future__ import annotations

import copy
import time

import pytest
import yaml

from dfbench.benchmark.cli import main

SPEC = {
    "name": "mine",
    "version": 1,
    "frames": {"train": 2, "test": 2},
    "trainings": [{"name": "c23", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": ["c23"]}]}],
    "tests": [{"name": "NT/c40", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": ["c40"]}]}],
}


@pytest.fixture
def no_data_work(tmp_path, monkeypatch):
    """Fresh (empty) data, cache and results folders, and every data entry point wired to fail."""
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_DATA", str(tmp_path / "home" / "data"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))

    def forbidden(*args, **kwargs):
        raise AssertionError("data work started before the request was validated")

    import dfbench.benchmark.data as data
    import dfbench.datasets.synth as synth

    monkeypatch.setattr(synth, "ensure_embedded_data", forbidden)
    monkeypatch.setattr(data, "load_frames", forbidden)
    monkeypatch.setattr(data, "ensure_crops", forbidden)
    monkeypatch.setattr(data, "dataset_index", forbidden)
    return tmp_path


def spec_file(tmp_path, **patch) -> str:
    spec = copy.deepcopy(SPEC)
    for dotted, value in patch.items():
        *parents, last = dotted.split("__")
        node = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def run_cli(capsys, *args: str) -> tuple[int, str, float]:
    started = time.perf_counter()
    rc = main(["run", "--detector", "erm", "--no-progress", *args])
    seconds = time.perf_counter() - started
    return rc, capsys.readouterr().err, seconds


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--set", "epochs=abc"], ["epochs='abc'", "valid integer"]),
        (["--set", "lr=abc"], ["lr='abc'", "valid number"]),
        (["--set", "batch_size=0"], ["batch_size=0", "greater than 0"]),
        (["--set", "optimizer=adamx"], ["optimizer='adamx'", "'adam', 'adamw', 'radam' or 'sgd'"]),
        (["--set", "epoch=3"], ["Unknown config key(s) ['epoch']"]),
        (["--weights", "/nonexistent/weights.pt"], ["weights: file /nonexistent/weights.pt does not exist"]),
        (["--backbone", "resnet_18"], ["backbone: 'resnet_18' is not a timm model name", "did you mean"]),
    ],
)
def test_bad_detector_settings_fail_before_data(no_data_work, capsys, args, fragments) -> None:
    rc, err, _ = run_cli(capsys, "--protocol", spec_file(no_data_work), *args)
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    assert not (no_data_work / "home" / "data" / "mini").exists()


@pytest.mark.parametrize(
    ("patch", "fragments"),
    [
        ({"frames": {"trian": 8}}, ["frames: unknown key(s) ['trian']", "allowed here: ['test', 'train']"]),
        ({"frames": {"train": 0}}, ["frames.train", "greater than or equal to 1"]),
        ({"trainings__0__data__0__methods": ["NeuralTexture"]},
         ["training 'c23'.data[0].methods", "'NeuralTexture'", "did you mean 'NeuralTextures'"]),
        ({"trainings__0__data__0__qualities": ["c32"]}, [".data[0].qualities", "'c32' is not one of c23, c40, raw"]),
        ({"trainings__0__data__0__reals": ["youtub"]}, [".data[0].reals", "did you mean 'youtube'"]),
        ({"tests__0__data__0__dataset": "celebdf2"}, ["test 'NT/c40'.data[0].dataset", "did you mean 'celebdf'"]),
        ({"tests__0__data__0__quality": ["c40"]}, ["tests[0].data[0]: unknown key(s) ['quality']"]),
        ({"tests__0__perturbation": {"op": "jpg", "values": [60]}}, ["perturbation.op: 'jpg'", "did you mean 'jpeg'"]),
        ({"tests__0__perturbation": {"op": "jpeg", "value": [60]}}, ["tests[0].perturbation: unknown key(s) ['value']"]),
        ({"tests__0__transform": {"name": "partial_regoin"}}, ["transform.name: 'partial_regoin'"]),
        ({"tests__0__transform": {"name": "partial_region", "params": {"regoin": "eye"}}},
         ["transform.params", "regoin"]),
        ({"tests__0__transform": {"name": "partial_region", "params": {"region": "eyes"}}},
         ["unknown region 'eyes'"]),
        ({"procedure": "train_tset"}, ["procedure: 'train_tset'", "did you mean 'train_test'"]),
        ({"options": {"bleaches": []}}, ["procedure 'train_test' takes no options"]),
        ({"presets": {"paper": {"frames": {"tset": 3}}}}, ["(with preset 'paper')", "unknown key(s) ['tset']"]),
        ({"version": "one"}, ["version", "valid integer"]),
    ],
)
def test_bad_protocol_keys_fail_before_data(no_data_work, capsys, patch, fragments) -> None:
    rc, err, _ = run_cli(capsys, "--protocol", spec_file(no_data_work, **patch))
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_missing_yaml_path_is_named_as_a_missing_file(no_data_work, capsys) -> None:
    rc, err, _ = run_cli(capsys, "--protocol", str(no_data_work / "nope.yaml"))
    assert rc == 2 and f"Protocol file {no_data_work / 'nope.yaml'} does not exist" in err


def test_compression_remedy_bleach_qualities_are_checked(no_data_work, capsys) -> None:
    rc, err, _ = run_cli(capsys, "--protocol", spec_file(
        no_data_work, procedure="compression_remedy", options={"bleaches": [{"variant": "b", "qualities": ["c41"]}]}))
    assert rc == 2 and "options.bleaches 'b'" in err and "'c41' is not one of c23, c40, raw" in err


def test_a_valid_request_passes_validation(no_data_work) -> None:
    from dfbench.benchmark.runner import RunRequest, validate_request

    spec, detector, device = validate_request(RunRequest(protocol=spec_file(no_data_work), detector="erm",
                                                         overrides={"epochs": "2", "lr": "1e-3"}))
    assert spec.name == "mine" and device == "cpu"
    # YAML's "1e-3" is a string; the typed config makes it the number it names
    assert detector.config.epochs == 2 and detector.config.lr == pytest.approx(1e-3)


def test_preprocess_checks_crop_parameters_before_reading_the_dataset(no_data_work, capsys) -> None:
    rc = main(["preprocess", "--dataset", "ffpp", "--root", str(no_data_work / "absent"), "--frames", "0", "--no-progress"])
    assert rc == 2
    assert capsys.readouterr().err == "error: CropParams.frames must be at least 1, got 0.\n"
