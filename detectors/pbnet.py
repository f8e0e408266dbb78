"""Pixel Bleach Network (PBNet): a compression remedy for a frozen detector.

Li, Zheng, Bin, Wang, Yang, Li, Shen, "Pixel Bleach Network for Detecting Face Forgery
under Compression", IEEE TMM 2023 (``/work/shared/seeds/pbnet--*.txt``; docs/recipes/pbnet.md).

A detector trained on high-quality (C23) crops is frozen. For a low-quality (C40) crop x its
last-layer feature φ(x) is mapped to a target displacement (Sec. III-B)

    Δφ* = −2 φ(x) + m · I · φ(x)                                     (Eq. 3, 4)

with I = Δf / |Δf| the sign of the detector's prediction (Table II: "prediction outputs"),
+1 for "real" and −1 for "fake" (the reading that matches Table VIII, see ``prediction_sign``),
reshaped to 8 × 8 × 32 and up-sampled by a DCGAN generator to a bleach of the crop size,
scaled by s. The bleached image x + bleach is scored by the same frozen detector. Training
(on the detector's C40 training errors plus as many correct frames, Sec. IV-A2) minimises

    L = L_rem + α L_reg + γ L_ce                                        (Eq. 7)

``PixelBleach`` is the plug-in (any ``Detector`` exposing ``features``/``logits``);
``train_bleach`` trains it; ``BleachedDetector`` (registered as ``pbnet``) is the frozen
detector with its bleach as one ``Detector``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.metrics import accuracy, auc, video_level
from dfbench.detectors.base import (
    CHECKPOINT_FORMAT,
    Detector,
    DetectorConfig,
    FitReport,
    _plain,
    atomic_torch_save,
    create_detector,
    epoch_line,
    read_checkpoint,
    rng_state,
    run_epoch,
    seed_everything,
    set_rng_state,
)

logger = logging.getLogger(__name__)

SQRT_EPS = 1e-12  # sqrt(max(x, eps)): finite gradient when a batch has no errors (or only errors)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PBNetConfig(DetectorConfig):
    """PBNet hyperparameters (paper defaults). The inherited training fields (optimizer, lr,
    weight_decay, batch_size, epochs, max_steps_per_epoch) describe what PBNet itself trains:
    the bleach generator. ``backbone``/``input_size``/``mean``/``std``/``pretrained``/``weights``
    describe the frozen detector built from ``base_detector`` (trained with its own
    ``base_preset`` schedule)."""

    # the frozen detector (DFDM): any registered recipe, ERM by default
    base_detector: str = "erm"
    base_preset: str = "mini"
    # Eq. 4: balanced offset m (Sec. III-B, "m = 0.7 in our experiments")
    offset_m: float = 0.7
    # Eq. 5: push/pull balance τ (Sec. III-C1, "τ = 0.2"); use_rem=False is Table VII's ablation
    tau: float = 0.2
    use_rem: bool = True
    # Eq. 6: weight k of the bleach's pixel RMS (Sec. IV-C5, "k = 50"; see regularization_loss)
    reg_k: float = 50.0
    # Eq. 7: α, γ (Sec. III-D, "α = 1 and γ = 2")
    alpha: float = 1.0
    gamma: float = 2.0
    # bleach scale s (Sec. IV-B1/IV-C1): stated only for F³-Net (s = 0.01, Table V); the other
    # backbones use the generator output as it is, i.e. s = 1
    bleach_scale: float = 1.0
    # "reshape the output Δφ* to 8 × 8 × 32" (Sec. III-B), as (channels, height, width)
    seed_shape: tuple[int, int, int] = (32, 8, 8)
    # DCGAN width (channels after the first up-sampling; halved per block). Paper silent:
    # DCGAN's own 8·ngf = 512 for the paper preset.
    generator_width: int = 512
    # Sec. IV-A2: Adam, lr 0.0002, weight decay 1e-8 (betas not stated: Adam's defaults)
    optimizer: str = "adam"
    lr: float = 2e-4
    weight_decay: float = 1e-8
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 14  # Sec. IV-B1, Xception: "batch size is set to 14" (F³-Net: 16)
    epochs: int = 10  # paper silent; choose the epoch with the best validation accuracy
    paper: str = "pbnet (Li et al., IEEE TMM 2023)"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "mini": {
            "backbone": "resnet10t", "input_size": 64, "batch_size": 32, "epochs": 3,
            "generator_width": 64, "base_preset": "mini",
        },
        "paper": {
            # FF++'s Xception (timm ``legacy_xception``, ImageNet-pretrained, mean = std = 0.5), 299 px
            "backbone": "legacy_xception", "input_size": 299, "pretrained": True,
            "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
            "batch_size": 14, "epochs": 10, "generator_width": 512, "base_preset": "paper",
            "lr_step_epochs": 0,
        },
    }

    def __post_init__(self) -> None:
        c, h, w = self.seed_shape
        if h != w or min(c, h) < 1:
            raise ConfigError(f"seed_shape must be (channels, n, n) with n ≥ 1, got {self.seed_shape}.")
        if self.bleach_scale < 0:
            raise ConfigError(f"bleach_scale must be ≥ 0, got {self.bleach_scale}.")


# --------------------------------------------------------------------------- equations
def prediction_sign(logits: torch.Tensor) -> torch.Tensor:
    """I = Δf / |Δf| (Table II) with Δf = f_real − f_fake: +1 where the detector says real,
    −1 where it says fake (P(fake) ≥ 0.5, the same threshold as ACC).

    The paper leaves Δw's orientation open; this one is the reading under which Eq. 4's
    m = +0.7 does what Table VIII reports. With φ_tar = (−1 + m·I)·φ, m > 0 lengthens the
    mirror move of the predicted-fake frames (−1.7φ, the FP among them) and shortens that of
    the predicted-real ones (−0.3φ, the FN), so raising m should lower FP and raise FN: Table
    VIII's m = −0.7 → 0 → +0.7 gives FP 13,305 → 12,331 → 10,247 and FN 4,735 → 5,372 → 6,873
    (FP, the dominant error of Table VII, is the one the offset is meant to help). The
    opposite sign (+1 = fake) predicts the opposite trend.
    """
    margin = logits[:, 1] - logits[:, 0]
    return torch.where(margin >= 0, -torch.ones_like(margin), torch.ones_like(margin))


def predicted_fake(sign: torch.Tensor) -> torch.Tensor:
    """The detector's decision (1 = fake) from I of ``prediction_sign``."""
    return (sign < 0).long()


def reconstruct_compensate(phi: torch.Tensor, sign: torch.Tensor, m: float) -> torch.Tensor:
    """RECF Δφ* = −2φ(x) + m · I · φ(x)  (Eq. 3 with the balanced offset of Eq. 4).

    −2φ moves φ to its mirror point −φ (Eq. 3: "−φ(x) − φ(x)"); m·I shortens that move for
    predicted-real frames (I = +1) and lengthens it for predicted-fake ones (I = −1).
    """
    return -2.0 * phi + m * sign.view(-1, *([1] * (phi.dim() - 1))) * phi


def remedy_loss(phi_bl: torch.Tensor, phi_tar: torch.Tensor, errors: torch.Tensor, tau: float) -> torch.Tensor:
    """Compression remedy loss (Eq. 5), B = batch size, E = 1 for the FP/FN frames:

        L_rem = 1/√B · √(Σ_i E_i ‖φ_bl,i − φ_tar,i‖²) − τ/√B · √(Σ_i (1 − E_i) ‖φ_bl,i‖²)

    pulls an error's bleached feature to its target φ_tar = φ + Δφ* and pushes the correctly
    classified frames away from the origin.
    """
    e = errors.to(phi_bl.dtype)
    b = phi_bl.shape[0]
    pull = (e * (phi_bl - phi_tar).pow(2).flatten(1).sum(1)).sum()
    push = ((1 - e) * phi_bl.pow(2).flatten(1).sum(1)).sum()
    return (pull.clamp_min(SQRT_EPS).sqrt() - tau * push.clamp_min(SQRT_EPS).sqrt()) / math.sqrt(b)


def regularization_loss(bleached: torch.Tensor, original: torch.Tensor, k: float) -> torch.Tensor:
    """Regularisation loss (Eq. 6), per image over its M elements, averaged over the batch:

        L_reg = √(1/M Σ ‖k · (I_bl − I_0)‖²) = k · RMS(I_bl − I_0)

    Eq. 6 is printed as ‖k·I_bl − I_0‖, whose minimum is I_bl = I_0 / k: with k = 50 it pulls
    the bleached image towards black (measured: mean brightness × 0.03 after 80 steps of the
    mini preset), the opposite of the stated purpose ("preventing the collapse of the bleached
    image", "k … alleviate[s] the corruption", Table IX's bleached/original pixel ratio). We
    read k as scaling the whole difference: the loss is 0 at the identity bleach and a larger k
    keeps the bleach smaller. Images are in [0, 1] pixel space (docs/recipes/pbnet.md).
    """
    per_image = (bleached - original).pow(2).flatten(1).mean(1)
    return k * per_image.clamp_min(SQRT_EPS).sqrt().mean()


# --------------------------------------------------------------------------- networks
def features_and_logits(detector: Detector, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ(x) flattened, logits) of a detector on normalised images. A detector that keeps the
    base ``features``/``logits`` (a timm backbone) runs its body once for both; any other
    calls the two methods (same values, twice the work)."""
    kind = type(detector)
    if kind.features is Detector.features and kind.logits is Detector.logits:
        model = detector.model
        body = model.forward_features(x)
        return model.forward_head(body, pre_logits=True).flatten(1), model.forward_head(body)
    return detector.features(x).flatten(1), detector.logits(x)


def freeze_detector(detector: Detector) -> Detector:
    """Eval mode and no gradients for every inference module: the DFDM is never updated."""
    detector.ensure_built()
    for module in detector.inference_modules().values():
        module.eval()
        module.requires_grad_(False)
    return detector


def detector_fingerprint(detector: Detector) -> str:
    """sha256 of a detector's inference tensors: a bleach belongs to exactly one frozen detector."""
    digest = hashlib.sha256(detector.name.encode())
    for key, state in sorted(detector.inference_state().items()):
        for name, tensor in sorted(state.items()):
            digest.update(f"{key}.{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
            digest.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al.): stride-2 transposed convolutions with BatchNorm + ReLU,
    Tanh output. From an n × n seed it up-samples ⌈log2(size / n)⌉ times; when that overshoots
    the crop size (299 = not n·2^j) the output is resized to it bilinearly (paper silent)."""

    def __init__(self, in_channels: int, seed_size: int, out_size: int, width: int, min_width: int = 16) -> None:
        super().__init__()
        n_up = max(1, math.ceil(math.log2(out_size / seed_size)))
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(n_up - 1):
            out = max(width >> i, min_width)
            layers += [nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        layers += [nn.ConvTranspose2d(channels, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.out_size = out_size
        for module in self.modules():  # DCGAN initialisation
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, seed: torch.Tensor) -> torch.Tensor:
        out = self.net(seed)
        if out.shape[-1] != self.out_size:
            out = F.interpolate(out, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False, antialias=True)
        return out


class BleachOutput(NamedTuple):
    bleached: torch.Tensor  # I_bl = clamp(x + bleach, 0, 1), (N, 3, S, S)
    bleach: torch.Tensor  # s · G(Δφ*), (N, 3, S, S)
    phi: torch.Tensor  # φ(x) of the input, (N, D)
    sign: torch.Tensor  # I, (N,)
    delta: torch.Tensor  # Δφ*, (N, D)


class PixelBleach(nn.Module):
    """The bleach generator for one frozen detector (Fig. 2).

    The detector is held by reference, not as a submodule: its parameters are not in
    ``parameters()``/``state_dict()`` and ``.train()`` never reaches it. A feature of
    C·n·n = 2048 values (Xception, ResNet-50) is reshaped as it is; any other width is first
    mapped by a learned linear projection (the paper does this for MesoInception4's 16-d feature).
    """

    def __init__(self, detector: Detector, config: PBNetConfig, *, feature_dim: int | None = None) -> None:
        super().__init__()
        self.detector = freeze_detector(detector)
        self.config = config
        self.size = int(detector.config.input_size)
        c, n, _ = config.seed_shape
        self.seed_shape = (c, n, n)
        dim = feature_dim if feature_dim is not None else self._probe_feature_dim()
        self.feature_dim = dim
        self.project: nn.Module = nn.Identity() if dim == c * n * n else nn.Linear(dim, c * n * n)
        self.generator = DCGANGenerator(c, n, self.size, config.generator_width)
        self.register_buffer("scale", torch.tensor(float(config.bleach_scale)))
        self.stats: dict[str, Any] = {}
        self.report = FitReport()

    def _probe_feature_dim(self) -> int:
        det = self.detector
        with torch.no_grad():
            x = torch.zeros(1, 3, self.size, self.size, device=det.device)
            return int(det.features(det.normalize(x)).flatten(1).shape[1])

    def train(self, mode: bool = True) -> PixelBleach:
        super().train(mode)
        freeze_detector(self.detector)  # the DFDM stays in eval mode whatever the bleach does
        return self

    def generate(self, delta: torch.Tensor) -> torch.Tensor:
        """Δφ* (N, D) → bleach s · G(reshape(Δφ*)) of the crop size, (N, 3, S, S)."""
        seed = self.project(delta.flatten(1)).view(-1, *self.seed_shape)
        return self.scale * self.generator(seed)

    def forward(self, x: torch.Tensor) -> BleachOutput:
        """x: crops in [0, 1] pixel space at the detector's input size, (N, 3, S, S)."""
        det = self.detector
        with torch.no_grad():
            phi, logits = features_and_logits(det, det.normalize(x))
            sign = prediction_sign(logits)
        delta = reconstruct_compensate(phi.float(), sign, self.config.offset_m)  # fp32 under autocast too
        bleach = self.generate(delta)
        bleached = (x + bleach).clamp(0.0, 1.0)  # merged in pixel space, kept a valid image
        return BleachOutput(bleached, bleach, phi, sign, delta)

    def bleach_images(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).bleached

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """P(fake) of the frozen detector on the bleached crops, (N,)."""
        det = self.detector
        return det.predict_proba_tensor(det.normalize(self.bleach_images(x)))

    @torch.no_grad()
    def predict(self, frames: FrameSet | torch.Tensor, *, batch_size: int = 64) -> np.ndarray:
        """P(fake) per frame with the bleach applied (uint8 frames or NCHW uint8 tensor)."""
        self.eval()
        det = self.detector
        images = frames.images if isinstance(frames, FrameSet) else frames
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            if isinstance(chunk, np.ndarray):
                chunk = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)
            x = det.resize(chunk.to(det.device).float().div_(255.0))
            with det.autocast():  # scored in the frozen detector's precision, as Detector.predict does
                out.append(self.score(x).float().cpu())
        return torch.cat(out).double().numpy() if out else np.zeros(0, dtype=np.float64)


# --------------------------------------------------------------------------- training
@dataclass
class BalancedOffsetSet:
    """The bleach's training frames (Sec. IV-A2): every FP and FN, plus an equal random
    sample of correctly classified frames (all of them when there are fewer)."""

    indices: np.ndarray  # sorted positions into the training FrameSet
    errors: np.ndarray  # sorted positions of FP + FN
    correct: np.ndarray  # sorted positions of the sampled correct frames
    n_fp: int = 0
    n_fn: int = 0
    stats: dict[str, int] = field(default_factory=dict)


def balanced_offset_set(labels: np.ndarray, scores: np.ndarray, rng: np.random.Generator, threshold: float = 0.5) -> BalancedOffsetSet:
    labels = np.asarray(labels).astype(int)
    pred = (np.asarray(scores, dtype=float) >= threshold).astype(int)
    wrong = np.flatnonzero(pred != labels)
    right = np.flatnonzero(pred == labels)
    sampled = np.sort(rng.choice(right, size=min(len(wrong), len(right)), replace=False)) if len(wrong) else right[:0]
    n_fp = int(np.sum((pred == 1) & (labels == 0)))
    n_fn = int(np.sum((pred == 0) & (labels == 1)))
    indices = np.sort(np.concatenate([wrong, sampled]))
    stats = {"n_frames": len(labels), "n_errors": len(wrong), "n_fp": n_fp, "n_fn": n_fn, "n_correct_sampled": len(sampled)}
    return BalancedOffsetSet(indices, wrong, sampled, n_fp, n_fn, stats)


def bleach_loss(bleach: PixelBleach, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
    """L = L_rem + α L_reg + γ L_ce (Eq. 7) on a batch of [0, 1] crops at the input size."""
    cfg, det = bleach.config, bleach.detector
    out = bleach(x)
    phi_bl, logits_bl = features_and_logits(det, det.normalize(out.bleached))
    errors = predicted_fake(out.sign) != labels  # E: FP/FN of the frozen detector on the input
    # Under the frozen detector's autocast (bf16/fp16 on CUDA) the networks run in reduced
    # precision, but the losses are sums of squares over 2,048-wide features (Eq. 5) and a
    # k·RMS (Eq. 6): computed in fp32 (a no-op under fp32).
    with det.full_precision():
        phi_tar = out.phi.float() + out.delta.float()  # φ(x + Δx) = φ(x) + Δφ* (Eq. 2)
        phi_bl = phi_bl.float()
        l_rem = remedy_loss(phi_bl, phi_tar, errors, cfg.tau) if cfg.use_rem else phi_bl.new_zeros(())
        l_reg = regularization_loss(out.bleached.float(), x.float(), cfg.reg_k)
        l_ce = F.cross_entropy(logits_bl.float(), labels)
    total = l_rem + cfg.alpha * l_reg + cfg.gamma * l_ce
    logs = {"loss": total.detach(), "l_rem": l_rem.detach(), "l_reg": l_reg.detach(), "l_ce": l_ce.detach()}
    return total, logs


def train_bleach(
    frozen: Detector,
    train_lq: FrameSet,
    val_lq: FrameSet,
    config: PBNetConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    checkpoint_dir: str | Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PixelBleach:
    """Train a bleach for ``frozen`` (never updated) on its errors in ``train_lq``.

    The epoch kept is the one with the best frame-level accuracy of the bleached detector on
    ``val_lq`` (validation only). With ``checkpoint_dir`` an interrupted run resumes at the
    last finished epoch. A detector without training errors gets an identity bleach (s = 0).
    """
    started = time.perf_counter()
    seed_everything(seed)
    frozen.to(device)
    freeze_detector(frozen)
    rng = np.random.default_rng(seed)
    chosen = balanced_offset_set(train_lq.labels, frozen.predict(train_lq), rng)
    bleach = PixelBleach(frozen, config).to(device)
    bleach.stats = dict(chosen.stats)
    report = FitReport()
    if len(chosen.errors) == 0:
        bleach.scale.zero_()  # nothing to remedy: bleached image = input
        bleach.report = report
        bleach.eval()
        return bleach
    subset = train_lq.subset(chosen.indices)
    opt = torch.optim.Adam(bleach.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    ckpt = Path(checkpoint_dir) / "bleach_state.pt" if checkpoint_dir else None
    key = {"config_hash": config.config_hash(), "seed": seed, "detector": detector_fingerprint(frozen)}
    best_state, best_acc, start_epoch, resumed_scaler = None, -1.0, 0, None
    if ckpt is not None and ckpt.exists():
        blob = read_checkpoint(ckpt)
        if all(blob.get(k) == v for k, v in key.items()):
            bleach.load_state_dict(blob["bleach"])
            opt.load_state_dict(blob["optimizer"])
            if isinstance(blob["rng"], dict):
                set_rng_state(blob["rng"])  # torch, NumPy and Python, as Detector.fit restores them
            else:
                torch.set_rng_state(blob["rng"])  # a checkpoint from before that: torch's only
            best_state, best_acc, start_epoch = blob["best_state"], float(blob["best_acc"]), int(blob["next_epoch"])
            resumed_scaler = blob.get("scaler")
            r = blob["report"]
            report = FitReport(epochs_run=start_epoch, best_epoch=r["best_epoch"], best_val_auc=r["best_val_auc"],
                               history=list(r["history"]), resumed_from_epoch=start_epoch)
            logger.info("resuming the bleach from %s: %d of %d epochs done", ckpt, start_epoch, config.epochs)
    bs = config.batch_size
    # the bleach trains in the frozen detector's precision (DetectorConfig.precision: fp32 on
    # CPU, bf16 or fp16 + a loss scaler on CUDA), losses in fp32 (bleach_loss)
    report.precision = frozen.amp_precision()
    scaler = torch.amp.GradScaler(frozen.device.type) if report.precision == "fp16" else None
    if scaler is not None and resumed_scaler is not None:
        scaler.load_state_dict(resumed_scaler)  # the fp16 loss scale, as Detector.fit resumes it

    def step(batch: dict[str, torch.Tensor]) -> dict[str, float | torch.Tensor]:
        x = frozen.resize(batch["image"].to(frozen.device, non_blocking=True).float().div_(255.0))
        with frozen.autocast():
            loss, logs = bleach_loss(bleach, x, batch["label"].to(frozen.device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return logs

    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        bleach.train()
        loader = DataLoader(subset, batch_size=bs, shuffle=True, drop_last=len(subset) > bs,
                            generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        total = len(loader) if not config.max_steps_per_epoch else min(len(loader), config.max_steps_per_epoch)
        label = f"bleach epoch {epoch + 1}/{config.epochs}"
        logs = run_epoch(loader, step, total, None if progress is None else (lambda n, label=label, total=total: progress(label, n, total)))
        val_scores = bleach.predict(val_lq, batch_size=max(2 * bs, 64))
        videos = video_level(val_lq.meta, val_scores)
        val_acc = accuracy(val_lq.labels, val_scores)
        val_auc = auc(videos["label"].to_numpy(), videos["score"].to_numpy())
        logs.update(epoch=epoch, val_acc=val_acc, val_video_auc=val_auc)
        report.history.append(logs)
        logger.info(epoch_line(epoch, config.epochs, logs, opt.param_groups[0]["lr"], time.perf_counter() - epoch_start,
                               label="bleach epoch"))
        if best_state is None or val_acc > best_acc:
            best_acc, best_state = val_acc, {k: t.detach().cpu().clone() for k, t in bleach.state_dict().items()}
            report.best_epoch, report.best_val_auc = epoch, val_auc
        report.epochs_run = epoch + 1
        if ckpt is not None:
            atomic_torch_save({
                "format": CHECKPOINT_FORMAT, **key, "next_epoch": epoch + 1, "bleach": bleach.state_dict(),
                "optimizer": opt.state_dict(), "rng": rng_state(), "best_state": best_state,
                "best_acc": best_acc, **({"scaler": scaler.state_dict()} if scaler is not None else {}),
                "report": {"best_epoch": report.best_epoch, "best_val_auc": report.best_val_auc, "history": report.history},
            }, ckpt)
    if best_state is not None:
        bleach.load_state_dict(best_state)
    report.wall_time_s = time.perf_counter() - started
    bleach.report = report
    bleach.eval()
    return bleach


def save_bleach(bleach: PixelBleach, path: str | Path, *, seed: int = 0) -> None:
    """A bleach checkpoint (tensors + plain config) bound to its frozen detector's fingerprint."""
    atomic_torch_save({
        "format": CHECKPOINT_FORMAT, "kind": "pbnet-bleach", "config": _plain(bleach.config.to_dict()),
        "seed": seed, "detector": detector_fingerprint(bleach.detector), "feature_dim": bleach.feature_dim,
        "stats": {k: int(v) for k, v in bleach.stats.items()}, "state": bleach.state_dict(),
    }, Path(path))


def load_bleach(path: str | Path, frozen: Detector, *, config: PBNetConfig | None = None, seed: int | None = None) -> PixelBleach | None:
    """The bleach saved at ``path`` for ``frozen``; None when it was trained for another frozen
    detector, config or seed (the caller then trains a new one)."""
    blob = read_checkpoint(path)
    if blob.get("kind") != "pbnet-bleach":
        raise ConfigError(f"Checkpoint {path} is not a PBNet bleach.")
    saved = PBNetConfig.from_dict(blob["config"])
    if blob["detector"] != detector_fingerprint(frozen):
        return None
    if (config is not None and saved.config_hash() != config.config_hash()) or (seed is not None and blob["seed"] != seed):
        return None
    bleach = PixelBleach(frozen, saved, feature_dim=int(blob["feature_dim"])).to(frozen.device)
    bleach.load_state_dict(blob["state"])
    bleach.stats = dict(blob["stats"])
    return bleach.eval()


# --------------------------------------------------------------------------- detector
class BleachedDetector(Detector):
    """A frozen detector with its PBNet bleach in front, as one ``Detector``.

    ``fit(train, val)`` trains the inner detector (``config.base_detector``, ERM by default)
    on ``train`` unless it was given a fitted one (``from_parts``), then trains the bleach on
    the detector's errors in ``train``. The ``compression_remedy`` protocol instead trains the
    two stages on different data (C23 / C40) with ``train_bleach`` and ``from_parts``.
    """

    config_class = PBNetConfig
    name = "pbnet"

    def __init__(self, config: PBNetConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.base: Detector | None = None
        self.bleach: PixelBleach | None = None
        self._base_fitted = False

    def make_base(self, *, pretrained: bool | None = None) -> Detector:
        """A new (unfitted) frozen-detector-to-be, from ``base_detector`` and this config."""
        cfg = self.config
        return create_detector(
            cfg.base_detector, preset=cfg.base_preset, backbone=cfg.backbone, input_size=cfg.input_size,
            pretrained=cfg.pretrained if pretrained is None else pretrained, weights=cfg.weights, mean=cfg.mean, std=cfg.std,
        )

    def nested_detectors(self) -> list[Detector]:
        """The frozen detector this one wraps (its name and preset are validated before a run)."""
        return [self.make_base()]

    @classmethod
    def from_parts(cls, detector: Detector, bleach: PixelBleach | None = None, config: PBNetConfig | None = None) -> BleachedDetector:
        """Wrap a fitted detector (and optionally its trained bleach); ``fit`` then trains only the bleach."""
        config = bleach.config if bleach is not None else (config or cls.config_class.preset("mini"))
        dc = detector.config
        config = config.replace(base_detector=detector.name, backbone=dc.backbone, input_size=dc.input_size,
                                mean=tuple(dc.mean), std=tuple(dc.std), weights=dc.weights, pretrained=False)
        out = cls(config)
        out.base, out._base_fitted, out.device = detector, True, detector.device
        if bleach is not None:
            if bleach.detector is not detector:
                raise ConfigError("from_parts: the bleach was trained for another detector object.")
            out.bleach = bleach
            out.model = bleach
        return out

    # ---- networks
    def ensure_built(self, *, pretrained: bool | None = None) -> nn.Module:
        if self.base is None:
            self.base = self.make_base(pretrained=pretrained)
            self.base.to(self.device)
        self.base.ensure_built()
        if self.bleach is None:
            self.bleach = PixelBleach(self.base, self.config).to(self.device)
        self.model = self.bleach
        return self.model

    def to(self, device: str | torch.device) -> BleachedDetector:
        self.device = torch.device(device)
        if self.base is not None:
            self.base.to(self.device)
        if self.bleach is not None:
            self.bleach.to(self.device)
        return self

    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input → [0, 1] pixels (inverse of ``normalize``)."""
        return x * self._std.to(x.device) + self._mean.to(x.device)

    def _bleached_input(self, x: torch.Tensor) -> torch.Tensor:
        self.ensure_built()
        return self.base.normalize(self.bleach.bleach_images(self._pixels(x)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.logits(self._bleached_input(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.features(self._bleached_input(x))

    def predict_proba_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.predict_proba_tensor(self._bleached_input(x))

    # ---- training
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
        started = time.perf_counter()
        self.device = torch.device(device)
        folder = Path(checkpoint_dir) if checkpoint_dir else None
        if self.base is None or not self._base_fitted:
            self.base = self.make_base()
            self.base.fit(train, val, seed=seed, device=device, checkpoint_dir=folder / "base" if folder else None, progress=progress)
            self._base_fitted = True
        self.bleach = train_bleach(self.base, train, val, self.config, seed, device,
                                   checkpoint_dir=folder / "bleach" if folder else None, progress=progress)
        self.model = self.bleach
        report = self.bleach.report
        report.wall_time_s = time.perf_counter() - started
        return report

    # ---- state
    def inference_modules(self) -> dict[str, nn.Module]:
        self.ensure_built()
        modules = {f"base.{k}": m for k, m in self.base.inference_modules().items()}
        modules["bleach"] = self.bleach
        return modules

    def load(self, path: str | Path) -> BleachedDetector:
        blob = read_checkpoint(path)
        if blob.get("detector") != self.name:
            raise ConfigError(f"Checkpoint {path} holds detector {blob.get('detector')!r}, not {self.name!r}.")
        self.config = self.config_class.from_dict(blob["config"])
        self.model, self.base, self.bleach = None, None, None
        self.ensure_built(pretrained=False)  # the checkpoint supplies every weight
        for key, module in self.inference_modules().items():
            module.load_state_dict(blob["state"][key])
        self._base_fitted = True
        freeze_detector(self.base)
        return self
