"""The whole run request, checked before any data is generated, preprocessed or loaded.

``load_protocol`` already checks every key of a spec at every level (its schema is closed);
this module checks what the schema cannot know: that each registry name a spec uses exists
(procedure, perturbation, test transform and its parameters, dataset, synthesis, methods, reals,
qualities), that the procedure accepts the spec's ``options``, and that the detector's
backbone and weights file exist. Each problem is one ``ConfigError`` sentence naming the
key and what is allowed there.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path

from dfbench.benchmark import extensions  # noqa: F401  (registers procedures, perturbations, transforms)
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.preprocess.reencode import offered_qualities
from dfbench.benchmark.procedures import PERTURBATIONS, PROCEDURES, SYNTHESES, TEST_TRANSFORMS
from dfbench.benchmark.protocol import DataSpec, ProtocolSpec
from dfbench.datasets.base import DATASETS


def _allowed(value: str, allowed: Iterable[str]) -> str:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{value!r} is not one of {', '.join(allowed)}{hint}"


def check_data(data: Sequence[DataSpec], where: str) -> None:
    """Dataset names and, per dataset, the methods, reals and qualities its adapter knows."""
    import importlib

    importlib.import_module("dfbench.datasets")  # registers every adapter
    for i, d in enumerate(data):
        at = f"{where}.data[{i}]"
        if d.dataset not in DATASETS:
            raise ConfigError(f"{at}.dataset: {_allowed(d.dataset, DATASETS.names())}.")
        if d.synthesis is not None and d.synthesis not in SYNTHESES:
            raise ConfigError(f"{at}.synthesis: {_allowed(d.synthesis, SYNTHESES.names())}.")
        adapter = DATASETS.get(d.dataset)
        known = {
            "methods": adapter.fake_methods,
            "reals": adapter.real_methods,
            "qualities": offered_qualities(adapter),  # incl. a single-quality dataset's c23/c40
        }
        for key, allowed in known.items():
            values = getattr(d, key)
            if values is None or allowed is None:
                continue
            for value in values:
                if value not in allowed:
                    raise ConfigError(f"{at}.{key}: {_allowed(value, allowed)} for dataset {d.dataset!r}.")


def check_spec(spec: ProtocolSpec) -> None:
    """Every registry name ``spec`` uses, and its procedure's options."""
    where = f"Protocol {spec.name!r}:"
    if spec.procedure not in PROCEDURES:
        raise ConfigError(f"{where} procedure: {_allowed(spec.procedure, PROCEDURES.names())}.")
    check_options = PROCEDURES.meta(spec.procedure).get("check_options")
    if check_options is not None:
        check_options(spec)
    elif spec.options:
        raise ConfigError(
            f"{where} options: procedure {spec.procedure!r} takes no options, got key(s) {sorted(spec.options)}."
        )
    for t in spec.trainings:
        check_data(t.data, f"{where} training {t.name!r}")
    for t in spec.tests:
        at = f"{where} test {t.name!r}"
        check_data(t.data, at)
        if t.perturbation is not None and t.perturbation.op not in PERTURBATIONS:
            raise ConfigError(f"{at}.perturbation.op: {_allowed(t.perturbation.op, PERTURBATIONS.names())}.")
        if t.transform is not None:
            if t.transform.name not in TEST_TRANSFORMS:
                raise ConfigError(f"{at}.transform.name: {_allowed(t.transform.name, TEST_TRANSFORMS.names())}.")
            transform = TEST_TRANSFORMS.get(t.transform.name)
            _check_params(transform, t.transform.kwargs, f"{at}.transform.params (transform {t.transform.name!r})")
            check_params = getattr(transform, "check_params", None)
            if check_params is not None:
                check_params(**t.transform.kwargs)


def _check_params(fn: object, params: dict, where: str) -> None:
    """``params`` against the keyword parameters of ``fn`` (its first parameter is the data)."""
    parameters = list(inspect.signature(fn).parameters.values())[1:]  # type: ignore[arg-type]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    names = [p.name for p in parameters]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}.")
    missing = [p.name for p in parameters if p.default is inspect.Parameter.empty and p.name not in params]
    if missing:
        raise ConfigError(f"{where}: required key(s) {missing} missing; allowed: {sorted(names)}.")


def check_synthesis(spec: ProtocolSpec, detector: object) -> None:
    """A training made by a synthesis (``synthesis:``) can carry the frame data the detector
    requires: checked before any data work, not after hours of preprocessing."""
    requires = set(getattr(detector, "requires", ()))
    for t in spec.trainings:
        for d in t.data:
            if d.synthesis is None:
                continue
            supplies = set(getattr(SYNTHESES.get(d.synthesis), "supplies", ()))
            missing = sorted(requires - supplies)
            if missing:
                name = getattr(detector, "name", type(detector).__name__)
                raise ConfigError(
                    f"Protocol {spec.name!r}: training {t.name!r} is made by synthesis {d.synthesis!r}, which cannot "
                    f"supply the frame data {missing} detector {name!r} requires; pick a detector without them."
                )


def check_detector(detector: object) -> None:
    """The detector's backbone name(s) and weights file, before a network is built."""
    import timm

    config = detector.get_config()  # type: ignore[attr-defined]
    if not timm.is_model(config.backbone):
        close = difflib.get_close_matches(config.backbone, timm.list_models(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"backbone: {config.backbone!r} is not a timm model name{hint}; see `timm.list_models()`.")
    if config.weights is not None and not Path(config.weights).expanduser().is_file():
        raise ConfigError(f"weights: file {config.weights} does not exist; pass a local checkpoint path.")
    nested = getattr(detector, "nested_detectors", None)
    for inner in nested() if nested is not None else ():
        check_detector(inner)
