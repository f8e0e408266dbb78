"""The ``compression_remedy`` procedure (PBNet, Tables III, VII, VIII and X).

For each training of the spec (one FF++ manipulation at C23, "per-subset" as in Table III):

1. fit the run's detector on the training data (validation-selected, cached per training);
   with ``--detector pbnet`` (a ``BleachedDetector``) the detector is its ``base_detector``;
2. freeze it and train one bleach per entry of ``options.bleaches`` on the *same selections
   at another quality* (C40 for Tables III/VII/VIII; C23 for the compression-agnostic
   Table X, whose header reads "training data C23, test C40"); bleaches are resumable
   artifacts under ``ctx.work_dir``, bound to the frozen detector's weights;
3. score every test of the training twice or more, side by side like the paper's RECG ×/✓
   rows: variant ``detector`` (frozen detector alone) and one variant per bleach.

``options`` (YAML)::

    bleaches:
      - {variant: detector+bleach, qualities: [c40]}                        # every training
      - {variant: detector+bleach/c23, qualities: [c23], trainings: [FS/c23]}  # Table X only
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.procedures import PROCEDURES, RunContext, frames_fingerprint, stored_fingerprints
from dfbench.benchmark.protocol import DataSpec, ProtocolSpec, TrainingSpec
from dfbench.benchmark.results import atomic_write_json, safe_component
from dfbench.detectors.base import Detector
from dfbench.detectors.pbnet import (
    BleachedDetector,
    PBNetConfig,
    PixelBleach,
    load_bleach,
    save_bleach,
    train_bleach,
)

DETECTOR_VARIANT = "detector"
DEFAULT_BLEACHES: tuple[dict[str, Any], ...] = ({"variant": "detector+bleach", "qualities": ["c40"]},)
BLEACH_KEYS = {"variant", "qualities", "trainings"}


@dataclass(frozen=True)
class BleachPlan:
    """One bleach per (training, plan): trained on the training's selections at ``qualities``."""

    variant: str
    qualities: tuple[str, ...]
    trainings: tuple[str, ...] | None = None  # None = every training

    def applies_to(self, training: str) -> bool:
        return self.trainings is None or training in self.trainings

    def data(self, training_data: Sequence[DataSpec]) -> tuple[DataSpec, ...]:
        return tuple(dataclasses.replace(d, qualities=self.qualities) for d in training_data)


def bleach_plans(options: dict[str, Any], training_names: Sequence[str], protocol: str) -> list[BleachPlan]:
    """Validate ``options.bleaches`` into plans (clear errors naming the field)."""
    items = options.get("bleaches", list(DEFAULT_BLEACHES))
    where = f"protocol {protocol!r} options.bleaches"
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where} must be a non-empty list of {{variant, qualities[, trainings]}}.")
    plans: list[BleachPlan] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"variant", "qualities"} <= set(item):
            raise ConfigError(f"{where}[{i}] needs 'variant' and 'qualities'.")
        unknown = set(item) - BLEACH_KEYS
        if unknown:
            raise ConfigError(f"{where}[{i}] has unknown key(s) {sorted(unknown)}; valid: {sorted(BLEACH_KEYS)}.")
        qualities = item["qualities"]
        if isinstance(qualities, str):
            qualities = [qualities]
        trainings = item.get("trainings")
        if isinstance(trainings, str):
            trainings = [trainings]
        if trainings is not None and set(trainings) - set(training_names):
            raise ConfigError(f"{where}[{i}].trainings names unknown training(s) {sorted(set(trainings) - set(training_names))}.")
        variant = str(item["variant"])
        if variant == DETECTOR_VARIANT or variant in {p.variant for p in plans}:
            raise ConfigError(f"{where}[{i}].variant {variant!r} is reserved or used twice.")
        plans.append(BleachPlan(variant, tuple(str(q) for q in qualities), None if trainings is None else tuple(trainings)))
    return plans


# what a PBNet config carries for its frozen detector (make_base passes these on); the rest
# of the frozen detector's config (optimiser, schedule) is its own recipe's
FROZEN_FIELDS_FROM_PBNET = frozenset({"backbone", "input_size", "mean", "std", "pretrained", "weights"})


def frozen_and_config(ctx: RunContext) -> tuple[Detector, PBNetConfig]:
    """The detector to freeze and the bleach config: a ``BleachedDetector`` contributes its
    base detector and its own config; any other detector is used as it is with PBNet's
    preset config.

    The frozen detector of a ``BleachedDetector`` is trained with the setting the protocol
    declares for its recipe (``detectors: {erm: ...}``: the detector's own official setting),
    less the fields the PBNet config carries for it (backbone, input size, normalisation,
    initial weights), so ``--detector erm`` and ``--detector pbnet`` freeze the same model."""
    detector = ctx.new_detector()
    if isinstance(detector, BleachedDetector):
        base = detector.make_base()
        schedule = {k: v for k, v in ctx.spec.detector_settings(base.name).items() if k not in FROZEN_FIELDS_FROM_PBNET}
        if schedule:
            name = base.name
            base = type(base)(base.config.replace(**schedule))
            base.name = name
        return base, detector.config
    return detector, PBNetConfig.preset(ctx.preset)


def _bleach_for(ctx: RunContext, frozen: Detector, training: TrainingSpec, plan: BleachPlan, config: PBNetConfig) -> PixelBleach:
    """Load the finished bleach of (training, plan) for this frozen detector, or train it."""
    folder = ctx.work_dir / "pbnet" / safe_component(f"{training.name}--{plan.variant}")
    final = folder / "bleach.pt"
    if final.exists():
        bleach = load_bleach(final, frozen, config=config, seed=ctx.seed)
        if bleach is not None:
            ctx.log(f"[{training.name}] reusing bleach {final}")
            ctx.model_fingerprints[f"{training.name}/{plan.variant}"] = stored_fingerprints(folder / "bleach.json")
            return bleach
        ctx.log(f"[{training.name}] bleach {final} belongs to another detector/config/seed; retraining")
    data = plan.data(training.data)
    train_lq = ctx.frames(data, "train")
    val_lq = ctx.frames(data, "val", role="test")
    ctx.log(f"[{training.name}] training bleach '{plan.variant}' on the detector's errors in {train_lq}")
    bleach = train_bleach(frozen, train_lq, val_lq, config, ctx.seed, ctx.device, checkpoint_dir=folder, progress=ctx.progress)
    save_bleach(bleach, final, seed=ctx.seed)
    seen = {"train": frames_fingerprint(train_lq), "val": frames_fingerprint(val_lq)}
    ctx.model_fingerprints[f"{training.name}/{plan.variant}"] = seen
    atomic_write_json(folder / "bleach.json", {
        "stats": bleach.stats, "best_epoch": bleach.report.best_epoch, "history": bleach.report.history,
        "wall_time_s": bleach.report.wall_time_s, "data_fingerprints": seen,
    })
    (folder / "bleach_state.pt").unlink(missing_ok=True)  # finished: bleach.pt is enough
    return bleach


def compression_remedy(ctx: RunContext) -> None:
    """Frozen C23 detector ± bleach trained on its C40 errors, scored on C40 (see module doc)."""
    spec = ctx.spec
    plans = bleach_plans(spec.options, [t.name for t in spec.trainings], spec.name)
    for training in spec.trainings:
        tests = ctx.tests_to_score(training.name)
        mine = [p for p in plans if p.applies_to(training.name)]
        variants = [DETECTOR_VARIANT, *(p.variant for p in mine)]
        pending = {t.name: [v for v in variants if not ctx.cell_done(t.name, training.name, v)] for t in tests}
        if not any(pending.values()):
            ctx.log(f"[{training.name}] all {len(tests) * len(variants)} cells already scored")
            continue
        frozen, config = frozen_and_config(ctx)
        frozen = ctx.train_model(frozen, training)
        needed = {v for vs in pending.values() for v in vs}
        bleached = {
            p.variant: (p, BleachedDetector.from_parts(frozen, _bleach_for(ctx, frozen, training, p, config)))
            for p in mine if p.variant in needed
        }
        for test in tests:
            if not pending[test.name]:
                continue
            frames = ctx.frames(test.data, "test", frozen.requires, role="test", per_video=test.frames)
            if DETECTOR_VARIANT in pending[test.name]:
                ctx.log(f"[{training.name}] scoring {test.name} with the frozen detector")
                ctx.score(test.name, training.name, frames, frozen.predict(frames), variant=DETECTOR_VARIANT)
            for variant, (plan, detector) in bleached.items():
                if variant not in pending[test.name]:
                    continue
                ctx.log(f"[{training.name}] scoring {test.name} with bleach '{variant}'")
                stats = detector.bleach.stats
                extra = {
                    "bleach_quality": "+".join(plan.qualities),
                    "bleach_train_frames": int(stats.get("n_errors", 0) + stats.get("n_correct_sampled", 0)),
                    "bleach_errors": int(stats.get("n_errors", 0)),
                }
                ctx.score(test.name, training.name, frames, detector.predict(frames), variant=variant, extra=extra)


def check_options(spec: ProtocolSpec) -> None:
    """``options.bleaches`` of a compression_remedy spec, checked before any data is loaded:
    each plan's qualities must exist in every dataset its training selects."""
    from dfbench.benchmark.validate import check_data

    unknown = sorted(set(spec.options) - {"bleaches"})
    if unknown:
        raise ConfigError(f"Protocol {spec.name!r} options: unknown key(s) {unknown}; allowed: ['bleaches'].")
    plans = bleach_plans(spec.options, [t.name for t in spec.trainings], spec.name)
    for plan in plans:
        for training in spec.trainings:
            if plan.applies_to(training.name):
                check_data(plan.data(training.data), f"Protocol {spec.name!r} options.bleaches {plan.variant!r} on {training.name!r}")


if "compression_remedy" not in PROCEDURES:
    PROCEDURES.register("compression_remedy", compression_remedy, check_options=check_options)
