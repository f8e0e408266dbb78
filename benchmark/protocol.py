"""Protocols as declarative specs: YAML files in ``benchmark/protocols/`` validated into
frozen dataclasses. Adding a protocol = adding one YAML file; custom logic is named by a
registered procedure, perturbation or test transform, never written inline.

Any change in a protocol's meaning bumps its ``version`` (results record it).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.metrics import METRICS
from dfbench.datasets.base import Selection

SPEC_KEYS = {
    "name", "version", "description", "paper_tables", "procedure", "metrics", "frames",
    "trainings", "tests", "options", "presets", "detectors",
}
DATA_KEYS = {"dataset", "methods", "reals", "qualities"}


@dataclass(frozen=True)
class DataSpec:
    """A Selection without its split: the split comes from the role (train/val/test)."""

    dataset: str
    methods: tuple[str, ...] | None = None
    reals: tuple[str, ...] | None = None
    qualities: tuple[str, ...] | None = None

    def selection(self, split: str) -> Selection:
        return Selection(self.dataset, split, self.methods, self.reals, self.qualities)

    def describe(self) -> str:
        methods = "all" if self.methods is None else "+".join(self.methods)
        qualities = "all" if self.qualities is None else "+".join(self.qualities)
        return f"{self.dataset}:{methods}@{qualities}"


@dataclass(frozen=True)
class TrainingSpec:
    name: str
    data: tuple[DataSpec, ...]


@dataclass(frozen=True)
class PerturbationSpec:
    op: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class TransformSpec:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class TestSpec:
    name: str
    data: tuple[DataSpec, ...]
    trainings: tuple[str, ...] | None = None  # None = scored by every training
    perturbation: PerturbationSpec | None = None
    transform: TransformSpec | None = None
    # an optional test is skipped, with a notice, when its dataset is not available
    optional: bool = False
    # frames per test video for this test only (a paper that samples one test set differently,
    # e.g. two_gen_bat's 10 frames per DFD video); None = the protocol's frames.test
    frames: int | None = None

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    version: int
    description: str
    paper_tables: tuple[str, ...]
    procedure: str
    metrics: tuple[str, ...]
    frames_train: int
    frames_test: int
    trainings: tuple[TrainingSpec, ...]
    tests: tuple[TestSpec, ...]
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # detector name -> config overrides this protocol (in this preset) runs it with, e.g. the
    # compared paper's own baseline setting for ``erm`` (see docs/protocols.md)
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    def detector_settings(self, detector: str) -> dict[str, Any]:
        """The config overrides this protocol declares for ``detector`` (empty if none)."""
        return dict(self.detectors.get(detector, {}))

    def datasets(self) -> list[str]:
        names = [d.dataset for t in self.trainings for d in t.data] + [d.dataset for t in self.tests for d in t.data]
        return list(dict.fromkeys(names))

    def tests_for(self, training: str) -> list[TestSpec]:
        return [t for t in self.tests if t.trainings is None or training in t.trainings]

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _tuple_or_none(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list, got {value!r}.")
    return tuple(str(v) for v in value)


def _data(items: Any, where: str) -> tuple[DataSpec, ...]:
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}.data must be a non-empty list of selections.")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "dataset" not in item:
            raise ConfigError(f"{where}.data[{i}] needs a 'dataset' key.")
        unknown = set(item) - DATA_KEYS
        if unknown:
            raise ConfigError(f"{where}.data[{i}] has unknown key(s) {sorted(unknown)}; valid: {sorted(DATA_KEYS)}.")
        out.append(
            DataSpec(
                dataset=str(item["dataset"]),
                methods=_tuple_or_none(item.get("methods"), f"{where}.data[{i}].methods"),
                reals=_tuple_or_none(item.get("reals"), f"{where}.data[{i}].reals"),
                qualities=_tuple_or_none(item.get("qualities"), f"{where}.data[{i}].qualities"),
            )
        )
    return tuple(out)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _detector_settings(value: Any, source: str) -> dict[str, dict[str, Any]]:
    """Validate ``detectors: {name: {config key: value}}``: registered names, known keys."""
    if value is None:
        return {}
    where = f"Protocol file {source}: detectors"
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must map detector names to config overrides, got {value!r}.")
    from dfbench.detectors import DETECTORS  # lazy: the detector registry imports torch

    out: dict[str, dict[str, Any]] = {}
    for name, settings in value.items():
        if not isinstance(settings, dict):
            raise ConfigError(f"{where}.{name} must be a mapping of config keys to values, got {settings!r}.")
        config_class = DETECTORS.get(str(name)).config_class  # unknown name: ConfigError with suggestions
        fields = {f.name for f in dataclasses.fields(config_class)}
        unknown = sorted(set(settings) - fields)
        if unknown:
            raise ConfigError(
                f"{where}.{name} has unknown config key(s) {unknown} for {config_class.__name__}; valid: {sorted(fields)}."
            )
        out[str(name)] = dict(settings)
    return out


def parse_protocol(raw: dict[str, Any], source: str, preset: str = "mini") -> ProtocolSpec:
    """Validate a spec mapping into a ProtocolSpec, applying ``presets[preset]`` overrides."""
    if not isinstance(raw, dict):
        raise ConfigError(f"Protocol file {source} must hold a mapping.")
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"Protocol file {source} has unknown key(s) {sorted(unknown)}; valid: {sorted(SPEC_KEYS)}.")
    for key in ("name", "version", "trainings", "tests"):
        if key not in raw:
            raise ConfigError(f"Protocol file {source} lacks the required key {key!r}.")
    presets = raw.get("presets") or {}
    if not isinstance(presets, dict) or not all(isinstance(v, dict) for v in presets.values()):
        raise ConfigError(f"Protocol file {source}: presets must map preset names to overrides.")
    for name, over in presets.items():
        unknown = set(over) - (SPEC_KEYS - {"name", "presets"})
        if unknown:
            raise ConfigError(f"Protocol file {source}: presets.{name} has unknown key(s) {sorted(unknown)}.")
    spec = _merge(raw, presets.get(preset, {}))
    metrics = tuple(spec.get("metrics", list(METRICS)))
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"Protocol file {source}: unknown metric(s) {bad}; valid: {sorted(METRICS)}.")
    frames = spec.get("frames", {})
    trainings = []
    for i, t in enumerate(spec["trainings"]):
        if not isinstance(t, dict) or "name" not in t:
            raise ConfigError(f"Protocol file {source}: trainings[{i}] needs a 'name'.")
        trainings.append(TrainingSpec(str(t["name"]), _data(t.get("data"), f"{source}: trainings[{i}]")))
    names = [t.name for t in trainings]
    if len(set(names)) != len(names):
        raise ConfigError(f"Protocol file {source}: training names must be unique, got {names}.")
    tests = []
    for i, t in enumerate(spec["tests"]):
        where = f"{source}: tests[{i}]"
        if not isinstance(t, dict) or "name" not in t:
            raise ConfigError(f"{where} needs a 'name'.")
        unknown = set(t) - {"name", "data", "trainings", "perturbation", "transform", "optional", "frames"}
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {sorted(unknown)}.")
        restrict = _tuple_or_none(t.get("trainings"), f"{where}.trainings")
        if restrict is not None and set(restrict) - set(names):
            raise ConfigError(f"{where}.trainings names unknown training(s) {sorted(set(restrict) - set(names))}.")
        pert = t.get("perturbation")
        if pert is not None:
            if not isinstance(pert, dict) or "op" not in pert or not isinstance(pert.get("values"), list):
                raise ConfigError(f"{where}.perturbation needs 'op' and a list of 'values'.")
            pert = PerturbationSpec(str(pert["op"]), tuple(float(v) for v in pert["values"]))
        transform = t.get("transform")
        if transform is not None:
            if not isinstance(transform, dict) or "name" not in transform:
                raise ConfigError(f"{where}.transform needs a 'name'.")
            transform = TransformSpec(str(transform["name"]), tuple(sorted((transform.get("params") or {}).items())))
        frames_here = t.get("frames")
        if frames_here is not None and (not isinstance(frames_here, int) or isinstance(frames_here, bool) or frames_here < 1):
            raise ConfigError(f"{where}.frames must be a positive number of frames per video, got {frames_here!r}.")
        tests.append(TestSpec(
            str(t["name"]), _data(t.get("data"), where), restrict, pert, transform, bool(t.get("optional", False)), frames_here,
        ))
    test_names = [t.name for t in tests]
    if len(set(test_names)) != len(test_names):
        raise ConfigError(f"Protocol file {source}: test names must be unique.")
    return ProtocolSpec(
        name=str(spec["name"]),
        version=int(spec["version"]),
        description=str(spec.get("description", "")),
        paper_tables=tuple(spec.get("paper_tables", [])),
        procedure=str(spec.get("procedure", "train_test")),
        metrics=metrics,
        frames_train=int(frames.get("train", 8)),
        frames_test=int(frames.get("test", 8)),
        trainings=tuple(trainings),
        tests=tuple(tests),
        options=dict(spec.get("options") or {}),
        detectors=_detector_settings(spec.get("detectors"), source),
        raw={**spec, "_preset": preset},
    )


def protocol_files() -> dict[str, Path]:
    """Every shipped protocol spec, by name (directory scan, like lm-eval's task index)."""
    folder = resources.files("dfbench.benchmark") / "protocols"
    out: dict[str, Path] = {}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".yaml", ".yml")):
            path = Path(str(entry))
            with open(path) as fh:
                name = str((yaml.safe_load(fh) or {}).get("name", path.stem))
            if name in out:
                raise ConfigError(f"Two protocol files are named {name!r}: {out[name]} and {path}.")
            out[name] = path
    return out


def list_protocols() -> list[str]:
    return sorted(protocol_files())


def load_protocol(name_or_path: str | Path, preset: str = "mini") -> ProtocolSpec:
    """A shipped protocol by name, or a user's YAML file by path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        files = protocol_files()
        if str(name_or_path) not in files:
            import difflib

            close = difflib.get_close_matches(str(name_or_path), files, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"Unknown protocol {str(name_or_path)!r}.{hint} Run `dfbench list protocols` to see all.")
        path = files[str(name_or_path)]
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Protocol file {path} is not valid YAML: {exc}") from exc
    return parse_protocol(raw, str(path), preset)
