"""Protocols as declarative specs: YAML files in ``benchmark/protocols/`` validated into
frozen dataclasses. Adding a protocol = adding one YAML file; custom logic is named by a
registered procedure, perturbation or test transform, never written inline.

Any change in a protocol's meaning bumps its ``version`` (results record it).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.metrics import METRICS
from dfbench.datasets.base import Selection


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
    raw: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    def datasets(self) -> list[str]:
        names = [d.dataset for t in self.trainings for d in t.data] + [d.dataset for t in self.tests for d in t.data]
        return list(dict.fromkeys(names))

    def tests_for(self, training: str) -> list[TestSpec]:
        return [t for t in self.tests if t.trainings is None or training in t.trainings]

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- schema
# The spec's schema, every level closed: an unknown key anywhere (``frames: {trian: 8}``) is
# an error naming the key, its place and the keys allowed there. Registry names (procedure,
# perturbation, transform, dataset, methods, qualities) are checked against the registries by
# ``dfbench.benchmark.validate`` before a run touches any data.
class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown key(s) {unknown}; allowed here: {sorted(cls.model_fields)}")
        return data


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[str], BeforeValidator(_as_list)]


class _DataModel(_Closed):
    dataset: str
    methods: Names | None = None
    reals: Names | None = None
    qualities: Names | None = None


class _TrainingModel(_Closed):
    name: str
    data: list[_DataModel] = Field(min_length=1)


class _PerturbationModel(_Closed):
    op: str
    values: list[float] = Field(min_length=1)


class _TransformModel(_Closed):
    name: str
    params: dict[str, Any] | None = None


class _TestModel(_Closed):
    name: str
    data: list[_DataModel] = Field(min_length=1)
    trainings: Names | None = None
    perturbation: _PerturbationModel | None = None
    transform: _TransformModel | None = None
    optional: bool = False


class _FramesModel(_Closed):
    train: int = Field(default=8, ge=1)
    test: int = Field(default=8, ge=1)


class _SpecModel(_Closed):
    name: str
    version: int = Field(ge=1)
    description: str = ""
    paper_tables: list[str] = []
    procedure: str = "train_test"
    metrics: list[str] = list(METRICS)
    frames: _FramesModel = _FramesModel()
    trainings: list[_TrainingModel] = Field(min_length=1)
    tests: list[_TestModel] = Field(min_length=1)
    options: dict[str, Any] | None = None
    presets: dict[str, dict[str, Any] | None] | None = None


def _where(loc: Sequence[Any]) -> str:
    """A pydantic error location as the YAML path: ``tests[2].perturbation.op``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validated(spec: dict[str, Any], source: str, preset: str | None) -> _SpecModel:
    try:
        return _SpecModel.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = _where(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "this required key is missing"
        shown = "" if err["type"] in ("missing", "value_error") else f" (got {err.get('input')!r})"
        place = f" (with preset {preset!r})" if preset else ""
        more = f" ({len(exc.errors())} problems; the first is shown)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"Protocol file {source}{place}: {where or 'top level'}: {msg}{shown}.{more}") from None


def _names(value: list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _data(items: list[_DataModel]) -> tuple[DataSpec, ...]:
    return tuple(DataSpec(d.dataset, _names(d.methods), _names(d.reals), _names(d.qualities)) for d in items)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_protocol(raw: dict[str, Any], source: str, preset: str = "mini") -> ProtocolSpec:
    """Validate a spec mapping into a ProtocolSpec, applying ``presets[preset]`` overrides.

    The spec is validated on its own and merged with each of its presets, so a mistake in a
    preset that is not the one asked for is caught too.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"Protocol file {source} must hold a mapping.")
    _validated(raw, source, None)
    presets = raw.get("presets") or {}
    for name, over in presets.items():
        _validated(_merge(raw, over or {}), source, str(name))
    spec = _merge(raw, presets.get(preset) or {})
    model = _validated(spec, source, preset)
    bad = [m for m in model.metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"Protocol file {source}: metrics: unknown metric(s) {bad}; valid: {sorted(METRICS)}.")
    trainings = tuple(TrainingSpec(t.name, _data(t.data)) for t in model.trainings)
    names = [t.name for t in trainings]
    if len(set(names)) != len(names):
        raise ConfigError(f"Protocol file {source}: trainings: training names must be unique, got {names}.")
    tests = []
    for i, t in enumerate(model.tests):
        restrict = _names(t.trainings)
        if restrict is not None and set(restrict) - set(names):
            raise ConfigError(
                f"Protocol file {source}: tests[{i}].trainings names unknown training(s) "
                f"{sorted(set(restrict) - set(names))}; the spec's trainings are {names}."
            )
        pert = PerturbationSpec(t.perturbation.op, tuple(t.perturbation.values)) if t.perturbation else None
        transform = (
            TransformSpec(t.transform.name, tuple(sorted((t.transform.params or {}).items()))) if t.transform else None
        )
        tests.append(TestSpec(t.name, _data(t.data), restrict, pert, transform, t.optional))
    test_names = [t.name for t in tests]
    if len(set(test_names)) != len(test_names):
        raise ConfigError(f"Protocol file {source}: tests: test names must be unique, got {test_names}.")
    return ProtocolSpec(
        name=model.name,
        version=model.version,
        description=model.description,
        paper_tables=tuple(model.paper_tables),
        procedure=model.procedure,
        metrics=tuple(model.metrics),
        frames_train=model.frames.train,
        frames_test=model.frames.test,
        trainings=trainings,
        tests=tuple(tests),
        options=dict(model.options or {}),
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
    looks_like_path = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
    if looks_like_path and not path.is_file():
        raise ConfigError(
            f"Protocol file {path} does not exist; pass an existing YAML spec or a protocol name "
            f"(`dfbench list protocols`)."
        )
    if not looks_like_path:
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
        raise ConfigError(f"Protocol file {path} is not valid YAML ({' '.join(str(exc).split())}).") from exc
    return parse_protocol(raw, str(path), preset)
