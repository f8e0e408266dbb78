"""The detector interface every recipe implements, and the shared training loop.

A recipe is a ``Detector`` subclass plus a frozen ``DetectorConfig`` subclass holding the
paper's hyperparameters as named defaults. Most recipes only override:

  ``build()``          the inference network (default: a timm backbone with a 2-class head)
  ``setup_training()`` extra training-only modules/optimizers (generators, bleach nets, ...)
  ``training_step()``  one optimisation step on a batch (manual optimisation: the recipe
                       calls ``self.optimizer_step(loss)`` or drives its own optimisers)

``fit`` runs epochs, scores the validation set after each epoch (validation only: no test
data ever reaches a detector during training), keeps the best state, writes a resumable
checkpoint after each epoch, and restores the best state at the end.

Execution (``DetectorConfig.precision``, ``channels_last``, ``compile``, ``loader_workers``):
batches come from a ``torch.utils.data.DataLoader`` (workers, pinned memory on CUDA) whose
order depends only on (seed, epoch); each training step runs under ``torch.autocast``
(bf16 on CUDA where supported, else fp16 with a ``GradScaler`` applied in
``optimizer_step``; fp32 on CPU), and step logs stay on the device until the epoch ends.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import io
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
    ValidationError,
)
from torch import nn
from torch.utils.data import DataLoader

from dfbench.benchmark import distributed
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameBatches, FrameSet, SeededBatches
from dfbench.benchmark.metrics import auc, video_level
from dfbench.benchmark.results import atomic_write_bytes
from dfbench.detectors.backbones import create_backbone, init_provenance, load_tensor_file
from dfbench.detectors.catalog import DETECTORS, list_detectors, register_detector  # noqa: F401  (re-exported)

CHECKPOINT_FORMAT = 1
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# how a config is executed, not what it computes: left out of config_hash (precision only
# when "auto", i.e. the device's default; an explicit precision is part of the experiment)
EXECUTION_FIELDS = ("precision", "channels_last", "compile", "loader_workers")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class DetectorConfig:
    """Settings shared by every recipe. Subclasses add the paper's hyperparameters.

    ``PRESETS`` maps a preset name to overrides; a subclass's presets are merged over its
    parents' (see ``preset``). ``mini`` = embedded data on CPU in minutes; ``paper`` = the
    paper's backbone, input size and schedule.
    """

    # Annotated types are checked (types and ranges) by ``from_dict`` before anything runs
    backbone: str = "resnet10t"
    # start from timm's ImageNet weights, read from timm's local cache only (a missing file is
    # a ConfigError naming --weights, never a random initialisation)
    pretrained: bool = False
    weights: str | None = None  # local backbone state dict (wins over pretrained; weights_only=True)
    input_size: Annotated[int, Field(ge=8)] = 64
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = (0.229, 0.224, 0.225)
    epochs: PositiveInt = 6
    batch_size: PositiveInt = 32
    optimizer: Literal["adam", "adamw", "radam", "sgd"] = "adam"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 1e-4
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    lr_step_epochs: NonNegativeInt = 0  # decay lr by lr_gamma every this many epochs (0 = constant)
    lr_gamma: PositiveFloat = 0.1
    max_steps_per_epoch: NonNegativeInt = 0  # 0 = whole training set each epoch
    paper: str = ""
    # ---- execution (see EXECUTION_FIELDS)
    precision: str = "auto"  # auto = bf16 on CUDA where supported, else fp16 (+ GradScaler); fp32 on CPU/MPS
    channels_last: bool = True  # NHWC activations and weights on CUDA (ignored elsewhere)
    compile: bool = False  # torch.compile the inference network for training and scoring
    loader_workers: int = 0  # DataLoader worker processes for training and scoring batches

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "mini": {},
        # every seed paper that names its initialisation starts from ImageNet weights
        "paper": {"backbone": "efficientnet_b4", "pretrained": True, "input_size": 299, "epochs": 30, "batch_size": 32},
    }

    @classmethod
    def preset(cls, name: str = "mini", **overrides: Any) -> DetectorConfig:
        """Defaults, then the preset's overrides along the MRO (base first), then ``overrides``."""
        values: dict[str, Any] = {}
        known = set()
        for klass in reversed(cls.__mro__):
            presets = klass.__dict__.get("PRESETS")
            if presets is not None:
                known |= set(presets)
                values.update(presets.get(name, {}))
        if name not in known:
            raise ConfigError(f"Unknown preset {name!r}; choose one of {sorted(known)}.")
        values.update(overrides)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DetectorConfig:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(
                f"Unknown config key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}."
            )
        try:
            return _config_adapter(cls).validate_python(dict(values))
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                key = ".".join(str(p) for p in err["loc"])
                problems.append(f"{key}={err.get('input')!r}: {err['msg'].removeprefix('Value error, ')}")
            raise ConfigError(f"Invalid {cls.__name__} value(s): {'; '.join(problems)}.") from None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> DetectorConfig:
        return type(self).from_dict({**self.to_dict(), **changes})

    def config_hash(self) -> str:
        values = self.to_dict()
        for name in EXECUTION_FIELDS:
            if name != "precision" or values.get(name) == "auto":
                values.pop(name, None)
        blob = json.dumps({"class": type(self).__name__, **values}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@functools.cache
def _config_adapter(cls: type) -> TypeAdapter:
    """A pydantic validator for a config dataclass (types, ranges, lists → tuples), built once."""
    return TypeAdapter(cls)


@dataclass
class FitReport:
    """What training did: per-epoch logs, the selected epoch and its validation score."""

    epochs_run: int = 0
    best_epoch: int = -1
    best_val_auc: float = float("nan")
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0
    wall_time_s: float = 0.0
    precision: str = "fp32"  # what the training steps ran in (see Detector.amp_dtype)
    epoch_train_s: list[float] = field(default_factory=list)  # wall time of each epoch's training steps


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through the one atomic-write helper: serialised in memory first, so a
    full disk fails the write (one error line, no temp file left), never torch's pickler."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


# --------------------------------------------------------------------------- detector
class Detector:
    """A face-forgery detector: ``fit`` on frames, ``predict`` P(fake) per frame."""

    config_class: ClassVar[type[DetectorConfig]] = DetectorConfig
    # data a recipe needs beyond images and labels (see dfbench.benchmark.frames)
    requires: ClassVar[frozenset[str]] = frozenset()
    # False for a recipe whose training_step runs backward passes of its own (not only through
    # optimizer_step, where the fp16 loss scaler lives): under fp16 its steps run in fp32
    fp16_safe: ClassVar[bool] = True
    name: str = "detector"

    def __init__(self, config: DetectorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class.preset("mini", **overrides)
        elif overrides:
            config = config.replace(**overrides)
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}.")
        self.config = config
        self.device = torch.device("cpu")
        self.model: nn.Module | None = None
        self.train_modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        # True while a checkpoint is being loaded: it supplies every tensor, so the backbone
        # is built without reading ImageNet or --weights files (they need not exist any more)
        self._weights_from_checkpoint = False
        self._mean = torch.tensor(config.mean).view(1, 3, 1, 1)
        self._std = torch.tensor(config.std).view(1, 3, 1, 1)
        self._scalers: dict[str, torch.amp.GradScaler] = {}
        self._compiled: nn.Module | None = None
        self._loaders: dict[str, tuple[FrameSet, DataLoader]] = {}  # persistent loaders while fitting

    # ---- scikit-learn-like introspection
    def get_config(self) -> DetectorConfig:
        return self.config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, backbone={self.config.backbone!r})"

    # ---- networks
    def backbone_init(self) -> tuple[bool, str | None]:
        """(pretrained, weights) to build the backbone with; both off while a checkpoint loads."""
        if self._weights_from_checkpoint:
            return False, None
        return self.config.pretrained, self.config.weights

    def init_provenance(self) -> dict[str, Any]:
        """``{"pretrained", "weights_file", "weights_sha256"}`` of the backbone's initial
        weights (see ``backbones.init_provenance``). Raises ConfigError when a paper preset
        asks for ImageNet weights that are not on disk: the runner calls it before any data work."""
        cfg = self.config
        key = (cfg.backbone, cfg.pretrained, cfg.weights)
        memo = getattr(self, "_init_memo", None)
        if memo is None or memo[0] != key:  # hashing a weight file of hundreds of MB once is enough
            memo = self._init_memo = (key, init_provenance(cfg.backbone, pretrained=cfg.pretrained, weights=cfg.weights))
        return dict(memo[1])

    def build(self) -> nn.Module:
        """The inference network: normalised images (N, 3, S, S) → logits (N, 2)."""
        pretrained, weights = self.backbone_init()
        return create_backbone(self.config.backbone, num_classes=2, pretrained=pretrained, weights=weights)

    def ensure_built(self) -> nn.Module:
        if self.model is None:
            self.model = self.build().to(self.device)
        return self.model

    def to(self, device: str | torch.device) -> Detector:
        self.device = torch.device(device)
        for module in [self.model, *self.train_modules.values()]:
            if module is not None:
                module.to(self.device)
        return self

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) → float normalised (N, 3, S, S) on the detector's device."""
        x = images.to(self.device, non_blocking=True).float().div_(255.0)
        x = self.normalize(self.resize(x))
        return x.contiguous(memory_format=torch.channels_last) if self._use_channels_last() else x

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.input_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images → the backbone's normalisation (differentiable: attacks use it)."""
        return (x - self._mean.to(x.device)) / self._std.to(x.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images → (N, 2) logits of the inference network."""
        return (self._compiled if self._compiled is not None else self.model)(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images → the last-layer (pre-logits) feature φ(x), (N, D)."""
        model = self.model
        return model.forward_head(model.forward_features(x), pre_logits=True)

    # ---- training
    def setup_training(self) -> None:
        """Create ``self.optimizers['model']`` (and recipe extras). Called once per fit."""
        self.optimizers["model"] = make_optimizer(self.config, self.model.parameters())

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float | torch.Tensor]:
        """Plain cross-entropy step (ERM). Recipes override this.

        Returns logs: floats, or detached tensors (kept on the device until the epoch ends,
        so logging costs no host sync per step)."""
        x = self.preprocess(batch["image"])
        y = batch["label"].to(self.device, non_blocking=True)
        loss = F.cross_entropy(self.logits(x), y)
        self.optimizer_step(loss)
        return {"loss": loss.detach()}

    def optimizer_step(self, loss: torch.Tensor, name: str = "model") -> None:
        """Backward + step of ``self.optimizers[name]``; under fp16 through a GradScaler."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        with self.full_precision():  # backward outside autocast, as PyTorch's AMP recipe does
            if self._amp_dtype() == torch.float16:
                scaler = self._scalers.setdefault(name, torch.amp.GradScaler(self.device.type))
                scaler.scale(loss).backward()
                distributed.reduce_before_scaler(opt)  # every rank skips (or takes) the same steps
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()

    # ---- execution: precision, memory format, loaders
    def amp_precision(self) -> str:
        """The precision training steps and scoring run in on ``self.device``: fp32 | bf16 | fp16."""
        cfg = self.config
        if cfg.precision not in PRECISIONS:
            raise ConfigError(f"Unknown precision {cfg.precision!r}; choose one of {list(PRECISIONS)}.")
        precision = cfg.precision
        if precision == "auto":
            if self.device.type != "cuda":
                return "fp32"  # CPU autocast is slower than fp32 for most convolutions; MPS: keep it exact
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if precision == "fp16" and not type(self).fp16_safe:
            if cfg.precision == "fp16":
                raise ConfigError(
                    f"Detector {self.name!r} runs backward passes of its own, outside the shared fp16 loss "
                    f"scaler; use precision=bf16 or fp32 (or auto)."
                )
            return "fp32"
        return precision

    def _amp_dtype(self) -> torch.dtype | None:
        # asked several times per step: resolved once per (precision setting, device)
        key = (self.config.precision, self.device)
        if getattr(self, "_amp_memo", (None,))[0] != key:
            self._amp_memo = (key, {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.amp_precision()])
        return self._amp_memo[1]

    def autocast(self) -> Any:
        """Mixed precision for a forward pass (nothing under fp32)."""
        dtype = self._amp_dtype()
        return torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()

    def full_precision(self) -> Any:
        """A region computed in fp32 inside an autocast step (input gradients, HSIC, backward)."""
        return torch.autocast(self.device.type, enabled=False) if self._amp_dtype() is not None else nullcontext()

    def _use_channels_last(self) -> bool:
        return self.config.channels_last and self.device.type == "cuda"

    def _apply_device_settings(self) -> None:
        """channels_last weights and cuDNN autotuning on CUDA; nothing elsewhere."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self._use_channels_last() and self.model is not None:
            self.model.to(memory_format=torch.channels_last)

    def make_loader(self, dataset: Any, *, persistent: bool = False, **kwargs: Any) -> DataLoader:
        """A DataLoader with this config's workers, pinned memory on CUDA and ``kwargs``
        (sampler, batch_size, ...). ``persistent`` keeps the workers between epochs."""
        workers = int(self.config.loader_workers)
        if workers < 0:
            raise ConfigError(f"loader_workers must be 0 or more, got {workers}.")
        opts: dict[str, Any] = {"num_workers": workers, "pin_memory": self.device.type == "cuda"}
        if workers > 0:
            opts["persistent_workers"] = persistent
        return DataLoader(dataset, **opts, **kwargs)

    def _cached_loader(self, role: str, frames: FrameSet, make: Callable[[], DataLoader]) -> DataLoader:
        """While fitting, one loader per role (train, val) is kept with its workers."""
        held = self._loaders.get(role)
        if held is not None and held[0] is frames:
            return held[1]
        loader = make()
        if self._fitting:
            self._loaders[role] = (frames, loader)
        return loader

    _fitting = False

    def train_loader(self, train: FrameSet, seed: int, epoch: int) -> Iterable[dict[str, torch.Tensor]]:
        """Shuffled training batches; the order depends only on (seed, epoch), so a resumed
        fit sees the same batches as an uninterrupted one (with any number of workers)."""
        order_seed = seed * 1000 + epoch
        # a synthesised training set (protocol ``synthesis:``) draws its fakes anew each epoch
        # (draw 0 stays the validation/test draw); any other set is returned unchanged
        train = train.redrawn(epoch + 1)

        def make() -> DataLoader:
            sampler = SeededBatches(len(train), self.config.batch_size, order_seed)
            # the loader's own generator: its worker base seed must not draw on the global RNG
            return self.make_loader(
                FrameBatches(train), sampler=sampler, batch_size=None,
                generator=torch.Generator().manual_seed(order_seed), persistent=True,
            )

        loader = self._cached_loader("train", train, make)
        loader.sampler.seed = order_seed  # a kept loader: the next epoch's order
        return loader

    def fit(
        self,
        train: FrameSet,
        val: FrameSet,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
        checkpoint_dir: str | Path | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> FitReport:
        """Train on ``train``; choose the epoch with the best validation video-level AUC.

        With ``checkpoint_dir``, a checkpoint written after each epoch lets an interrupted
        fit resume where it stopped (same config and seed), bit for bit on CPU.
        """
        self._check_requires(train)
        started = time.perf_counter()
        seed_everything(seed)
        self.device = torch.device(device)
        self.model = None
        self._compiled = None
        self.train_modules, self.optimizers, self.schedulers, self._scalers = {}, {}, {}, {}
        self.ensure_built()
        self.setup_training()
        self.to(self.device)
        self._apply_device_settings()
        if self.config.compile:
            self._compiled = torch.compile(self.model)
        if self.config.lr_step_epochs and "model" in self.optimizers:
            self.schedulers["model"] = torch.optim.lr_scheduler.StepLR(
                self.optimizers["model"], step_size=self.config.lr_step_epochs, gamma=self.config.lr_gamma
            )
        report = FitReport(precision=self.amp_precision())
        best_state: dict[str, Any] | None = None
        start_epoch = 0
        ckpt_path = Path(checkpoint_dir) / "train_state.pt" if checkpoint_dir else None
        if ckpt_path is not None and ckpt_path.exists():
            resumed = self._load_train_state(ckpt_path, seed)
            if resumed is not None:
                start_epoch, best_state, report = resumed
                report.resumed_from_epoch = start_epoch
                report.precision = self.amp_precision()
                logger.info("resuming %s from %s: %d of %d epochs done", self.name, ckpt_path, start_epoch, self.config.epochs)
            else:
                logger.info("ignoring %s: it was written for another config or seed; training from epoch 1", ckpt_path)
        # under torchrun: rank 0's weights everywhere, gradients averaged at every optimiser step
        with self._fit_loaders(), distributed.training(self):
            self._run_epochs(train, val, seed, start_epoch, report, best_state, ckpt_path, progress)
        report.wall_time_s = time.perf_counter() - started
        return report

    @contextmanager
    def _fit_loaders(self) -> Iterator[None]:
        """Keep DataLoaders (and their workers) across epochs; release them when fit ends."""
        self._fitting, self._loaders = True, {}
        try:
            yield
        finally:
            self._fitting, self._loaders = False, {}

    def _run_epochs(self, train, val, seed, start_epoch, report: FitReport, best_state, ckpt_path, progress) -> None:
        for epoch in range(start_epoch, self.config.epochs):
            epoch_start = time.perf_counter()
            logs = self._train_epoch(train, seed, epoch, progress)
            report.epoch_train_s.append(time.perf_counter() - epoch_start)
            val_scores = self.predict(val)
            videos = video_level(val.meta, val_scores)
            val_auc = distributed.agree(auc(videos["label"].to_numpy(), videos["score"].to_numpy()))
            logs.update(epoch=epoch, val_video_auc=val_auc)
            report.history.append(logs)
            logger.info(epoch_line(epoch, self.config.epochs, logs, self.current_lr(), time.perf_counter() - epoch_start))
            # an undefined AUC (one-class validation set) ranks below any real one
            score = -1.0 if np.isnan(val_auc) else val_auc
            if best_state is None or score > report.best_val_auc:
                report.best_epoch, report.best_val_auc = epoch, score
                best_state = self.inference_state()
            for sched in self.schedulers.values():
                sched.step()
            report.epochs_run = epoch + 1
            if ckpt_path is not None:
                self._save_train_state(ckpt_path, seed, epoch + 1, best_state, report)
        if best_state is None:
            # a model that never trained must not be scored as if it had (epochs <= 0)
            raise ConfigError(
                f"Detector {self.name!r} ran no training epoch (epochs={self.config.epochs}); set epochs to 1 or more."
            )
        self.load_inference_state(best_state)

    def current_lr(self) -> float:
        """The learning rate of the inference network's optimiser (else the first one; NaN without any)."""
        opt = self.optimizers.get("model") or next(iter(self.optimizers.values()), None)
        return float(opt.param_groups[0]["lr"]) if opt is not None else float("nan")

    def _train_epoch(self, train: FrameSet, seed: int, epoch: int, progress) -> dict[str, float]:
        for module in [self.model, *self.train_modules.values()]:
            module.train()
        loader = self.train_loader(train, seed, epoch)
        total = len(loader) if not self.config.max_steps_per_epoch else min(len(loader), self.config.max_steps_per_epoch)
        label = f"epoch {epoch + 1}/{self.config.epochs}"
        # under torchrun: this rank's share of each global batch (identity in one process)
        loader, step = distributed.epoch(self, loader, self.amp_training_step)
        return run_epoch(
            loader, step, total,
            None if progress is None else (lambda step: progress(label, step, total)),
        )

    def amp_training_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, float | torch.Tensor]:
        """``training_step`` under this detector's autocast (fp32: as it is)."""
        with self.autocast():
            return self.training_step(batch)

    def _check_requires(self, frames: FrameSet) -> None:
        missing = sorted(k for k in self.requires if k not in frames.extras)
        if missing:
            raise ConfigError(
                f"Detector {self.name!r} needs frame data {missing} that this training set lacks; "
                f"load it with load_frames(..., requires={sorted(self.requires)})."
            )

    # ---- inference
    @torch.no_grad()
    def predict(self, frames: FrameSet | torch.Tensor, *, batch_size: int | None = None) -> np.ndarray:
        """P(fake) for each frame, float64 (N,). Deterministic; training-only parts unused."""
        model = self.ensure_built()
        model.eval()
        self._apply_device_settings()
        bs = batch_size or max(self.config.batch_size * 2, 64)
        out = []
        for chunk in self._scoring_batches(frames, bs):
            with self.autocast():
                out.append(self.predict_proba_tensor(self.preprocess(chunk)))
        if not out:
            return np.zeros(0, dtype=np.float64)
        return torch.cat(out).cpu().double().numpy()  # one device → host copy per call

    def _scoring_batches(self, frames: FrameSet | torch.Tensor, bs: int) -> Iterator[torch.Tensor]:
        """uint8 (B, 3, H, W) chunks in order: a FrameSet through a DataLoader (workers read
        ahead), a tensor or array by slicing."""
        if isinstance(frames, FrameSet):
            loader = self._cached_loader("val", frames, lambda: self.make_loader(
                FrameBatches(frames, extras=()), sampler=SeededBatches(len(frames), bs, shuffle=False, drop_last=False),
                batch_size=None, generator=torch.Generator(), persistent=True,
            ))
            if loader.sampler.batch_size != bs:
                loader = self.make_loader(
                    FrameBatches(frames, extras=()), sampler=SeededBatches(len(frames), bs, shuffle=False, drop_last=False),
                    batch_size=None, generator=torch.Generator(),
                )
            for batch in loader:
                yield batch["image"]
            return
        for start in range(0, len(frames), bs):
            chunk = frames[start : start + bs]
            if isinstance(chunk, np.ndarray):
                chunk = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)
            yield chunk

    def predict_proba_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images → P(fake) (N,). Recipes with another head override this."""
        return torch.softmax(self.logits(x).float(), dim=1)[:, 1]

    # ---- state and checkpoints
    def inference_modules(self) -> dict[str, nn.Module]:
        """Modules needed at inference (saved in a detector checkpoint)."""
        return {"model": self.model}

    def inference_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {k: {n: t.detach().cpu().clone() for n, t in m.state_dict().items()} for k, m in self.inference_modules().items()}

    def load_inference_state(self, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        self.ensure_built()
        modules = self.inference_modules()
        for key, module in modules.items():
            module.load_state_dict(state[key])

    def save(self, path: str | Path) -> None:
        """Inference checkpoint: detector name, config and tensors only (loadable with weights_only)."""
        atomic_torch_save(
            {"format": CHECKPOINT_FORMAT, "detector": self.name, "config": _plain(self.config.to_dict()), "state": self.inference_state()},
            Path(path),
        )

    def load(self, path: str | Path) -> Detector:
        """Load an inference checkpoint written by ``save`` into this detector (same recipe)."""
        blob = read_checkpoint(path)
        if blob.get("detector") != self.name:
            raise ConfigError(f"Checkpoint {path} holds detector {blob.get('detector')!r}, not {self.name!r}.")
        self.config = self.config_class.from_dict(blob["config"])
        self.model = None
        self._compiled = None
        self._weights_from_checkpoint = True
        try:
            self.load_inference_state(blob["state"])
        finally:
            self._weights_from_checkpoint = False
        return self

    def _save_train_state(self, path: Path, seed: int, next_epoch: int, best_state, report: FitReport) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "detector": self.name,
            "config_hash": self.config.config_hash(),
            "seed": seed,
            "next_epoch": next_epoch,
            "modules": {k: m.state_dict() for k, m in {"model": self.model, **self.train_modules}.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self._scalers.items()},
            "best_state": best_state,
            "report": {"best_epoch": report.best_epoch, "best_val_auc": report.best_val_auc, "history": report.history},
            "rng": rng_state(),
        }
        atomic_torch_save(state, path)

    def _load_train_state(self, path: Path, seed: int):
        blob = read_checkpoint(path)
        if blob.get("config_hash") != self.config.config_hash() or blob.get("seed") != seed:
            return None  # a checkpoint of another config/seed is never mixed in
        for key, module in {"model": self.model, **self.train_modules}.items():
            module.load_state_dict(blob["modules"][key])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(blob["optimizers"][key])
        for key, sched in self.schedulers.items():
            sched.load_state_dict(blob["schedulers"][key])
        for key, state in blob.get("scalers", {}).items():  # fp16 loss scales
            self._scalers[key] = torch.amp.GradScaler(self.device.type)
            self._scalers[key].load_state_dict(state)
        set_rng_state(blob["rng"])
        r = blob["report"]
        report = FitReport(best_epoch=r["best_epoch"], best_val_auc=r["best_val_auc"], history=list(r["history"]), epochs_run=blob["next_epoch"])
        return int(blob["next_epoch"]), blob["best_state"], report


def run_epoch(
    batches: Iterable[Any],
    step: Callable[[Any], Mapping[str, float | torch.Tensor]],
    total: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """One epoch, shared by every training loop (``Detector.fit``, PBNet's bleach): ``step`` on each of the first ``total`` batches; each log's sum over the
    steps divided by the number of steps. Tensor logs are kept (detached, on their device)
    and read back once, at the end: no host sync per step."""
    values: dict[str, list[float | torch.Tensor]] = {}
    steps = 0
    for batch in batches:
        if steps >= total:
            break
        for key, value in step(batch).items():
            values.setdefault(key, []).append(value.detach() if isinstance(value, torch.Tensor) else float(value))
        steps += 1
        if progress is not None:
            progress(steps)
    return {k: sum(_as_floats(v)) / max(steps, 1) for k, v in values.items()}


def epoch_line(epoch: int, epochs: int, logs: Mapping[str, float], lr: float, seconds: float, label: str = "epoch") -> str:
    """The one log line of a finished epoch (``epoch`` counts from 0), e.g.
    ``epoch 2/6: train loss 0.6412, val video AUC 0.8125, lr 1.00e-03, 3.2 s``; a recipe's
    other training logs follow in brackets. Plain text, so a log file reads as the terminal does."""
    extra = [f"{k} {v:.4g}" for k, v in logs.items() if k not in ("loss", "epoch", "val_video_auc")]
    return (
        f"{label} {epoch + 1}/{epochs}: train loss {logs.get('loss', float('nan')):.4f}, "
        f"val video AUC {logs.get('val_video_auc', float('nan')):.4f}, lr {lr:.2e}, {seconds:.1f} s"
        + (f" ({', '.join(extra)})" if extra else "")
    )


def _as_floats(values: list[float | torch.Tensor]) -> list[float]:
    """Logged values as Python floats, with one device → host copy for all tensors."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return values  # type: ignore[return-value]
    read = iter(torch.stack([t.reshape(()).float() for t in tensors]).cpu().tolist())
    return [next(read) if isinstance(v, torch.Tensor) else v for v in values]


def rng_state() -> dict[str, Any]:
    """The torch, NumPy and Python RNG states (weights_only-loadable), saved with every
    training checkpoint so a resumed fit draws the same numbers as an uninterrupted one."""
    return {"torch": torch.get_rng_state(), "numpy": _numpy_rng_state(), "python": _python_rng_state()}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what ``rng_state`` saved (all three generators)."""
    torch.set_rng_state(state["torch"])
    _set_numpy_rng_state(state["numpy"])
    _set_python_rng_state(state["python"])


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A dfbench checkpoint, loaded with ``weights_only=True``; corrupt files raise ConfigError."""
    path = Path(path)
    blob = load_tensor_file(path, "Checkpoint")
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"Checkpoint {path} is not a dfbench checkpoint of format {CHECKPOINT_FORMAT}.")
    return blob


def make_optimizer(cfg: DetectorConfig, params, *, lr: float | None = None, weight_decay: float | None = None) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    wd = cfg.weight_decay if weight_decay is None else weight_decay
    kinds = {
        "adam": lambda: torch.optim.Adam(params, lr=lr, betas=cfg.betas, weight_decay=wd),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, betas=cfg.betas, weight_decay=wd),
        "radam": lambda: torch.optim.RAdam(params, lr=lr, betas=cfg.betas, weight_decay=wd),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
    }
    if cfg.optimizer not in kinds:
        raise ConfigError(f"Unknown optimizer {cfg.optimizer!r}; choose one of {sorted(kinds)}.")
    return kinds[cfg.optimizer]()


def _plain(value: Any) -> Any:
    """Config values as plain JSON-like types (tuples → lists) for weights_only checkpoints."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _numpy_rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "cached": cached}


def _set_numpy_rng_state(s: dict[str, Any]) -> None:
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"], s["cached"]))


def _python_rng_state() -> list[int]:
    version, internal, gauss = random.getstate()
    return [version, *internal, gauss if gauss is not None else -1.0]


def _set_python_rng_state(s: list) -> None:
    gauss = s[-1] if s[-1] != -1.0 else None
    random.setstate((int(s[0]), tuple(int(v) for v in s[1:-1]), gauss))


# --------------------------------------------------------------------------- registry
# DETECTORS, register_detector and list_detectors live in dfbench.detectors.catalog (no torch
# import: listing stays fast); they are imported here so existing imports keep working.


def create_detector(name: str, *, preset: str = "mini", **overrides: Any) -> Detector:
    """The one entry point: ``create_detector("two_gen_bat", preset="paper", backbone="xception41")``."""
    cls = DETECTORS.get(name)
    meta = DETECTORS.meta(name)
    config = cls.config_class.preset(preset, **{**meta["overrides"], **overrides})
    detector = cls(config)
    detector.name = name
    return detector


def clone_detector(detector: Detector) -> Detector:
    """A fresh, unfitted detector with the same name and config (scikit-learn's ``clone``)."""
    fresh = type(detector)(copy.deepcopy(detector.config))
    fresh.name = detector.name
    return fresh
