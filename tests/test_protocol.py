from pathlib import Path

import pytest
import yaml

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.protocol import list_protocols, load_protocol, parse_protocol, protocol_files

MINIMAL = {
    "name": "p", "version": 1,
    "trainings": [{"name": "a", "data": [{"dataset": "ffpp", "methods": ["NeuralTextures"], "qualities": ["raw"]}]}],
    "tests": [
        {"name": "t1", "data": [{"dataset": "ffpp", "qualities": ["c40"]}]},
        {"name": "t2", "data": [{"dataset": "ffpp"}], "trainings": ["a"], "perturbation": {"op": "jpeg", "values": [60, 100]}},
    ],
}


def test_every_shipped_protocol_validates_in_both_presets() -> None:
    names = list_protocols()
    assert {"cross_quality", "cross_manipulation", "all_qualities", "cross_dataset"} <= set(names)
    for name in names:
        for preset in ("mini", "paper"):
            spec = load_protocol(name, preset)
            assert spec.name == name and spec.version >= 1 and spec.trainings and spec.tests


def test_shipped_specs_hold_no_absolute_paths() -> None:
    for path in protocol_files().values():
        text = Path(path).read_text()
        for line in text.splitlines():
            value = line.split(":", 1)[-1].strip()
            assert not value.startswith("/"), f"{path}: {line}"


def test_cross_quality_is_the_3x3_matrix() -> None:
    spec = load_protocol("cross_quality")
    assert [t.name for t in spec.trainings] == ["raw", "c23", "c40"]
    assert all(len(spec.tests_for(t.name)) == 3 for t in spec.trainings)
    assert spec.trainings[0].data[0].selection("val").split == "val"


def test_presets_override_frames() -> None:
    assert load_protocol("cross_quality", "mini").frames_test == 8
    assert load_protocol("cross_quality", "paper").frames_test == 270  # two_gen_bat Sec. IV


def test_parse_fields_and_restrictions() -> None:
    spec = parse_protocol(MINIMAL, "inline")
    assert spec.procedure == "train_test"
    assert spec.tests[1].perturbation.values == (60.0, 100.0)
    assert spec.tests[0].data[0].methods is None
    assert spec.datasets() == ["ffpp"]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": 1}, "unknown key"),
        ({"metrics": ["auc", "f2"]}, "unknown metric"),
        ({"tests": [{"name": "x", "data": [{"dataset": "ffpp", "quality": ["c23"]}]}]}, "unknown key"),
        ({"tests": [{"name": "x", "data": [{"dataset": "ffpp"}], "trainings": ["nope"]}]}, "unknown training"),
        ({"tests": [{"name": "x", "data": []}]}, r"tests\[0\]\.data: List should have at least 1 item"),
    ],
)
def test_wrong_keys_give_clear_errors(patch, message) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_protocol({**MINIMAL, **patch}, "inline")


def test_user_yaml_file_and_unknown_name(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    assert load_protocol(path).name == "p"
    with pytest.raises(ConfigError, match="Did you mean cross_quality"):
        load_protocol("cross_qualty")


def test_the_fast_protocol_listing_states_what_the_validated_specs_say() -> None:
    """`dfbench list protocols` reads the files' headers without validating them (fast start);
    each header must be what the validated spec says."""
    from dfbench.benchmark.protocol_index import protocol_headers

    headers = protocol_headers()
    assert set(headers) == set(list_protocols())
    for name, path in protocol_files().items():
        spec = load_protocol(path)
        assert headers[name] == (str(spec.version), spec.description)
