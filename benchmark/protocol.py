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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.metrics import DEFAULT_METRICS, METRICS
from dfbench.benchmark.protocol_index import protocol_files  # re-exported: the shipped specs by name
from dfbench.datasets.base import Selection


@dataclass(frozen=True)
class DataSpec:
    """A Selection without its split: the split comes from the role (train/val/test)."""

    dataset: str
    methods: tuple[str, ...] | None = None
    reals: tuple[str, ...] | None = None
    qualities: tuple[str, ...] | None = None
    # fakes made from the selected reals by a registered synthesis (procedures.SYNTHESES), e.g.
    # "self_blended"; then the selection holds no fakes of the dataset's own
    synthesis: str | None = None

    def selection(self, split: str) -> Selection:
        methods = () if self.synthesis is not None else self.methods
        return Selection(self.dataset, split, methods, self.reals, self.qualities)

    @property
    def method_names(self) -> tuple[str, ...]:
        """The fakes' methods as results rows name them: the synthesis, the listed methods, or "all"."""
        if self.synthesis is not None:
            return (self.synthesis,)
        return ("all",) if self.methods is None else self.methods

    def describe(self) -> str:
        methods = "+".join(self.method_names)
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
class AverageSpec:
    """A derived column: the mean of the named tests' values (``averages:`` in the YAML).

    Never a test set: nothing is scored for it. The results layer (``results.average_rows``)
    computes it from the stored rows, one value per seed, metric, level, perturbation and
    strength, and only where every named test has its row. Per training by default (a paper's
    "Avg" column of one model); ``across_trainings``: the named tests come from different
    trainings, each scored by exactly one of them (QAD's ERM [x3], a model per quality).
    ``trainings`` limits which trainings' rows are averaged (None = all).
    """

    name: str
    tests: tuple[str, ...]
    trainings: tuple[str, ...] | None = None
    across_trainings: bool = False

    def describe(self) -> str:
        """What the derived rows' ``test_data`` says: the tests it averages."""
        return "mean of " + ", ".join(self.tests)


# The reference CSV's fields that say which experiment a printed number belongs to. A paper
# cell states each of them exactly as the CSV writes it ("" = the CSV leaves it empty).
PAPER_MATCH_FIELDS: tuple[str, ...] = ("train_data", "train_quality", "test_data", "test_quality", "perturbation")
PAPER_CELL_LEVELS: tuple[str, ...] = ("video", "frame")
_GROUP_KEYS = {"paper", "tables", "level", "match", "methods", "cells"}
_CELL_KEYS = {"training", "test", "name", "perturbation", "strength", "match", "methods", "metrics"}
_AVERAGE_KEYS = {"name", "tests", "trainings", "across_trainings"}


@dataclass(frozen=True)
class PaperCell:
    """One of our cells and the paper table cell(s) it reproduces (``paper_cells:`` in the YAML).

    Ours: ``training`` (None = whichever training scores the test), ``tests`` (a test or an
    ``averages:`` column; several = shorthand for an average of them called ``name``),
    ``perturbation`` (the test's op) and ``strength``. Theirs: ``paper``/``table`` as in the reference CSV, the
    ``match`` fields (PAPER_MATCH_FIELDS, compared exactly), the ``level`` the paper reports at,
    and optionally the paper ``methods`` and ``metrics`` the cell is limited to. The method
    named in a paper row comes from the detector's registration (``paper_methods``).
    """

    paper: str
    table: str
    level: str
    tests: tuple[str, ...]
    name: str
    match: tuple[tuple[str, str], ...]
    training: str | None = None
    perturbation: str = ""
    strength: float | None = None
    methods: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None

    @property
    def derived(self) -> bool:
        return len(self.tests) > 1

    def reports(self, paper_row: dict[str, Any]) -> bool:
        """Whether one reference-CSV row (a dict of its fields) is a number this cell reproduces."""
        def text(key: str) -> str:
            value = paper_row.get(key)
            return "" if value is None or value != value else str(value).strip()  # NaN != NaN

        if (text("paper"), text("table")) != (self.paper, self.table):
            return False
        if text("level") not in ("", self.level):
            return False
        if self.methods is not None and text("method") not in self.methods:
            return False
        if self.metrics is not None and text("metric") not in self.metrics:
            return False
        return all(text(key) == value for key, value in self.match)


def paper_table_label(paper: str, table: str) -> str:
    """How ``paper_tables:`` names a table: "two_gen_bat II", "big_arts 4", "two_gen_bat text (App. C)"."""
    return f"{paper} {table.removeprefix('Table ')}"


def _paper_cells(
    raw: Any,
    source: str,
    trainings: list[TrainingSpec],
    tests: list[TestSpec],
    listed: tuple[str, ...],
    averages: dict[str, AverageSpec],
) -> tuple[tuple[PaperCell, ...], tuple[AverageSpec, ...]]:
    """Validate ``paper_cells:``: groups of cells sharing paper, tables, level and match fields.

    Every table a cell cites must be listed in the protocol's ``paper_tables`` (the summary a
    reader sees first), so the two never disagree. A cell's ``test`` names a test or one of
    ``averages``; a cell naming several tests is shorthand for an average of them (returned
    second, one per distinct name).
    """
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise ConfigError(f"Protocol file {source}: paper_cells must be a list of groups.")
    training_names = {t.name for t in trainings}
    by_test = {t.name: t for t in tests}
    implicit: dict[str, AverageSpec] = {}
    out: list[PaperCell] = []
    for g, group in enumerate(raw):
        where = f"{source}: paper_cells[{g}]"
        if not isinstance(group, dict):
            raise ConfigError(f"{where} must be a mapping.")
        unknown = set(group) - _GROUP_KEYS
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {sorted(unknown)}; valid: {sorted(_GROUP_KEYS)}.")
        for key in ("paper", "tables", "level", "cells"):
            if key not in group:
                raise ConfigError(f"{where} lacks the required key {key!r}.")
        level = str(group["level"])
        if level not in PAPER_CELL_LEVELS:
            raise ConfigError(f"{where}.level must be one of {list(PAPER_CELL_LEVELS)}, got {level!r}.")
        tables = _tuple_or_none(group["tables"], f"{where}.tables") or ()
        unlisted = [t for t in tables if paper_table_label(str(group["paper"]), t) not in listed]
        if unlisted:
            raise ConfigError(
                f"{where} cites {[paper_table_label(str(group['paper']), t) for t in unlisted]}, "
                f"which paper_tables does not list ({list(listed)})."
            )
        base_match = _match(group.get("match"), f"{where}.match")
        if not isinstance(group["cells"], list) or not group["cells"]:
            raise ConfigError(f"{where}.cells must be a non-empty list.")
        for c, cell in enumerate(group["cells"]):
            at = f"{where}.cells[{c}]"
            if not isinstance(cell, dict) or "test" not in cell:
                raise ConfigError(f"{at} needs a 'test'.")
            unknown = set(cell) - _CELL_KEYS
            if unknown:
                raise ConfigError(f"{at} has unknown key(s) {sorted(unknown)}; valid: {sorted(_CELL_KEYS)}.")
            names = _tuple_or_none(cell["test"], f"{at}.test") or ()
            missing = [n for n in names if n not in by_test and (len(names) > 1 or n not in averages)]
            if missing:
                raise ConfigError(f"{at}.test names unknown test(s) {missing} (a single name may be an average).")
            training = cell.get("training")
            if training is not None and str(training) not in training_names:
                raise ConfigError(f"{at}.training names unknown training {training!r}.")
            if len(names) > 1:
                if "name" not in cell:
                    raise ConfigError(f"{at}: a cell averaging several tests needs a 'name' for its column.")
                average = _average(
                    {"name": cell["name"], "tests": list(names), "across_trainings": True,
                     **({"trainings": [training]} if training is not None else {})},
                    at, trainings, by_test,
                )
                if implicit.setdefault(average.name, average) != average or average.name in averages:
                    raise ConfigError(f"{at}.name {average.name!r} already names another average.")
            # the tests behind the cell: the test itself, or those an average spans
            parts = [by_test[t] for n in names for t in (averages[n].tests if n in averages else (n,))]
            ops = {t.perturbation.op if t.perturbation else "" for t in parts}
            perturbation = str(cell.get("perturbation", ops.pop() if len(ops) == 1 else ""))
            strength = cell.get("strength")
            if strength is not None:
                perts = [t.perturbation for t in parts]
                if any(p is None or float(strength) not in p.values for p in perts):
                    raise ConfigError(f"{at}.strength {strength} is not a value of the test's perturbation.")
            match = dict(base_match)
            match.update(_match(cell.get("match"), f"{at}.match"))
            methods = _tuple_or_none(cell.get("methods", group.get("methods")), f"{at}.methods")
            for table in tables:
                out.append(
                    PaperCell(
                        paper=str(group["paper"]),
                        table=table,
                        level=level,
                        tests=names,
                        name=str(cell.get("name", names[0])),
                        match=tuple((k, match.get(k, "")) for k in PAPER_MATCH_FIELDS),
                        training=None if training is None else str(training),
                        perturbation=perturbation,
                        strength=None if strength is None else float(strength),
                        methods=methods,
                        metrics=_tuple_or_none(cell.get("metrics"), f"{at}.metrics"),
                    )
                )
    return tuple(out), tuple(implicit.values())


def _averages(raw: Any, source: str, trainings: list[TrainingSpec], tests: list[TestSpec]) -> dict[str, AverageSpec]:
    """Validate ``averages:``, a list of derived columns (AverageSpec), by name."""
    if raw is None:
        return {}
    where = f"Protocol file {source}: averages"
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list of {{name, tests}} mappings.")
    by_test = {t.name: t for t in tests}
    out: dict[str, AverageSpec] = {}
    for i, item in enumerate(raw):
        average = _average(item, f"{where}[{i}]", trainings, by_test)
        if average.name in out:
            raise ConfigError(f"{where}[{i}].name {average.name!r} is used twice; average names must be unique.")
        out[average.name] = average
    return out


def _average(
    item: Any, at: str, trainings: list[TrainingSpec], by_test: dict[str, TestSpec]
) -> AverageSpec:
    """One derived column, checked against the spec: its tests exist, are scored by the
    trainings it averages over as it says, and share one perturbation."""
    if not isinstance(item, dict):
        raise ConfigError(f"{at} must be a mapping with 'name' and 'tests'.")
    unknown = set(item) - _AVERAGE_KEYS
    if unknown:
        raise ConfigError(f"{at} has unknown key(s) {sorted(unknown)}; valid: {sorted(_AVERAGE_KEYS)}.")
    for key in ("name", "tests"):
        if key not in item:
            raise ConfigError(f"{at} lacks the required key {key!r}.")
    name = str(item["name"])
    if name in by_test:
        raise ConfigError(f"{at}.name {name!r} is a test's name; an average needs a name of its own.")
    names = _tuple_or_none(item["tests"], f"{at}.tests") or ()
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"{at}.tests must name two or more different tests, got {list(names)}.")
    missing = [n for n in names if n not in by_test]
    if missing:
        raise ConfigError(f"{at}.tests names unknown test(s) {missing}; the spec's tests are {list(by_test)}.")
    all_trainings = [t.name for t in trainings]
    chosen = _tuple_or_none(item.get("trainings"), f"{at}.trainings")
    if chosen is not None and set(chosen) - set(all_trainings):
        raise ConfigError(f"{at}.trainings names unknown training(s) {sorted(set(chosen) - set(all_trainings))}.")
    across = item.get("across_trainings", False)
    if not isinstance(across, bool):
        raise ConfigError(f"{at}.across_trainings must be true or false, got {across!r}.")
    pool = list(chosen) if chosen is not None else all_trainings
    scored_by = {n: [t for t in pool if by_test[n].trainings is None or t in by_test[n].trainings] for n in names}
    if across:
        shared = [n for n, ts in scored_by.items() if len(ts) != 1]
        if shared:
            raise ConfigError(
                f"{at}: with across_trainings each test must be scored by exactly one training; "
                f"{shared} are scored by {[scored_by[n] for n in shared]}."
            )
    elif not any(all(t in ts for ts in scored_by.values()) for t in pool):
        raise ConfigError(
            f"{at}: no training scores all of {list(names)}; list tests one training scores, or set "
            f"across_trainings: true when each comes from its own training."
        )
    perturbations = {by_test[n].perturbation for n in names}
    if len(perturbations) != 1:
        raise ConfigError(f"{at}: the tests {list(names)} differ in perturbation; an average spans one perturbation.")
    return AverageSpec(name, names, chosen, across)


def _match(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of {list(PAPER_MATCH_FIELDS)}.")
    unknown = set(raw) - set(PAPER_MATCH_FIELDS)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {sorted(unknown)}; valid: {list(PAPER_MATCH_FIELDS)}.")
    return {k: "" if v is None else str(v) for k, v in raw.items()}


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
    # which paper table cells our cells reproduce; not part of the protocol's meaning (no
    # version bump, not hashed): a corrected mapping changes only what is shown beside ours
    paper_cells: tuple[PaperCell, ...] = field(default=(), hash=False, compare=False)
    # derived columns (``averages:`` and the paper cells naming several tests): computed from
    # the stored rows when results are read, never scored; like paper_cells, not hashed
    averages: tuple[AverageSpec, ...] = field(default=(), hash=False, compare=False)
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
    synthesis: str | None = None

    @model_validator(mode="after")
    def _synthesis_alone(self) -> _DataModel:
        if self.synthesis is not None and self.methods is not None:
            raise ValueError(
                f"a data entry with synthesis {self.synthesis!r} makes its fakes from its reals; leave out methods"
            )
        return self


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
    frames: int | None = Field(default=None, ge=1, strict=True)  # this test's own frames per video (True is no count)


class _FramesModel(_Closed):
    train: int = Field(default=8, ge=1)
    test: int = Field(default=8, ge=1)


class _SpecModel(_Closed):
    name: str
    version: int = Field(ge=1)
    description: str = ""
    paper_tables: list[str] = []
    procedure: str = "train_test"
    metrics: list[str] = list(DEFAULT_METRICS)
    frames: _FramesModel = _FramesModel()
    trainings: list[_TrainingModel] = Field(min_length=1)
    tests: list[_TestModel] = Field(min_length=1)
    options: dict[str, Any] | None = None
    presets: dict[str, dict[str, Any] | None] | None = None
    # detector name -> config overrides (checked by _detector_settings against the registry)
    detectors: dict[str, dict[str, Any]] | None = None
    # paper table cells our cells reproduce (checked by _paper_cells against trainings/tests)
    paper_cells: list[Any] | None = None
    # derived columns, each the mean of named tests (checked by _averages)
    averages: list[Any] | None = None


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


def _tuple_or_none(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list, got {value!r}.")
    return tuple(str(v) for v in value)


def _names(value: list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _data(items: list[_DataModel], where: str) -> tuple[DataSpec, ...]:
    specs = tuple(DataSpec(d.dataset, _names(d.methods), _names(d.reals), _names(d.qualities), d.synthesis) for d in items)
    if len({d.synthesis for d in specs}) > 1:
        raise ConfigError(
            f"{where}.data: a training's or test's data entries are either all synthesised (one synthesis) "
            f"or all plain, got {[d.describe() for d in specs]}."
        )
    return specs


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
    trainings = tuple(
        TrainingSpec(t.name, _data(t.data, f"Protocol file {source}: trainings[{i}]")) for i, t in enumerate(model.trainings)
    )
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
        data = _data(t.data, f"Protocol file {source}: tests[{i}]")
        tests.append(TestSpec(t.name, data, restrict, pert, transform, t.optional, t.frames))
    test_names = [t.name for t in tests]
    if len(set(test_names)) != len(test_names):
        raise ConfigError(f"Protocol file {source}: tests: test names must be unique, got {test_names}.")
    averages = _averages(spec.get("averages"), source, list(trainings), tests)
    paper_cells, implicit = _paper_cells(
        spec.get("paper_cells"), source, list(trainings), tests, tuple(str(t) for t in model.paper_tables), averages
    )
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
        detectors=_detector_settings(spec.get("detectors"), source),
        paper_cells=paper_cells,
        averages=(*averages.values(), *implicit),
        raw={**{k: v for k, v in spec.items() if k not in ("paper_cells", "averages")}, "_preset": preset},
    )


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
