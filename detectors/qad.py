"""QAD: quality-agnostic deepfake detection with intra-model collaborative learning.

Le & Woo, "Quality-Agnostic Deepfake Detection with Intra-model Collaborative Learning"
(ICCV 2023; ``shared/seeds/qad--quality-agnostic-hsic-awp.txt``). One model sees every
training frame at every quality in the same mini-batch (Algorithm 1, line 2) and minimises

    L_QAD = 1/(MB) Σ_{τ∈T, i∈B} L_{φ*}(x_{τ,i}, y_i) + α Σ_{τ,ρ∈T} L_col(τ, ρ)        (Eq. 10)

  * L_{φ*}: cross-entropy on weights θ + φ*, φ* one projected step of Adversarial Weight
    Perturbation (Eq. 4–5, Algorithm 1 lines 3–7, 15);
  * L_col(τ, ρ) = −Σ_{l∈L} HSIC(Z_l^τ, Z_l^ρ) (Eq. 9), HSIC the biased estimator
    tr(KHLH)/(n−1)² (Eq. 8) with Gaussian kernels on the flattened layer outputs, their
    bandwidth set by the median heuristic (the paper's σ = 6 has no printed feature scale
    and, read per dimension, leaves Eq. 9 without gradient: see _gaussian_gram).

Registered variants: ``qad`` (both), ``qad_hsic_only`` (Table 4 "HSIC"), ``qad_awp_only``
(Table 4 "AWP-XE"), ``qad_pairwise`` (Table 4 "pairwise loss": the instance pairwise
distance of Eq. 3 at the same intermediate layers instead of HSIC). Inference is the plain
backbone (no extra cost at test time, Sec. 3.3).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dfbench.benchmark import distributed
from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.benchmark.frames import FrameSet
from dfbench.detectors.base import Detector, DetectorConfig, make_optimizer

COLLAB_LOSSES = ("hsic", "pairwise", "none")
HSIC_BANDWIDTHS = ("median", "sigma")


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class QADConfig(DetectorConfig):
    """QAD's hyperparameters (Sec. 4.2); ``alpha``/``gamma`` None = the paper's value for
    the backbone family (EfficientNet: α=0.002, γ=0.006; ResNet and others: α=0.004, γ=0.002;
    Table 5 keeps these per family for ResNet-18/34 and EfficientNet-B0)."""

    # the M quality modalities T = {r, c1, ..., c_{M-1}} every training frame must have
    qualities: tuple[str, ...] = ("raw", "c23", "c40")
    collab: str = "hsic"  # hsic (Eq. 9) | pairwise (Eq. 3 at the HSIC layers) | none
    use_awp: bool = True
    # Kernel bandwidth (see _gaussian_gram). "median": σ² = the median squared distance
    # between the batch's samples, per layer and quality (the median heuristic; our choice,
    # see docs). "sigma": the paper's fixed σ = hsic_sigma below, with hsic_scale_by_dim.
    hsic_bandwidth: str = "median"
    hsic_sigma: float = 6.0  # σ of both Gaussian kernels (Sec. 4.2), used by hsic_bandwidth="sigma"
    # with "sigma": kernel exp(−‖u−v‖²/(2σ²d)), d = flattened feature size (paper silent)
    hsic_scale_by_dim: bool = True
    # layers L of Eq. 9 as indices into the backbone's ``feature_info``; None = every level
    hsic_layers: tuple[int, ...] | None = None
    alpha: float | None = None  # weight of the collaborative loss (Eq. 10)
    gamma: float | None = None  # AWP radius, relative to ‖θ_l‖ per layer (Eq. 4)
    awp_eta: float | None = None  # AWP step size η (Eq. 5); None = γ (paper silent)
    alpha_resnet: float = 0.004
    gamma_resnet: float = 0.002
    alpha_efficientnet: float = 0.002
    gamma_efficientnet: float = 0.006
    one_cycle: bool = False  # one-cycle lr schedule (Sec. 4.2), evaluated once per epoch

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # batch_size = B frames; each step sees M·B images (B at every quality)
        "mini": {"backbone": "resnet10t", "input_size": 64, "batch_size": 32, "epochs": 6, "lr": 1e-3},
        # Sec. 4.2: ImageNet-pretrained ResNet-50 at 224 (QAD-R), Adam lr 2e-3 one-cycle,
        # 32 epochs, mini-batch 64. QAD-E: backbone=efficientnet_b1, input_size=240.
        "paper": {
            "backbone": "resnet50",
            "pretrained": True,
            "input_size": 224,
            "batch_size": 64,
            "epochs": 32,
            "optimizer": "adam",
            "lr": 2e-3,
            "weight_decay": 0.0,
            "one_cycle": True,
        },
    }

    def __post_init__(self) -> None:
        if self.hsic_layers is not None and not isinstance(self.hsic_layers, tuple):
            object.__setattr__(self, "hsic_layers", tuple(int(i) for i in self.hsic_layers))
        if self.collab not in COLLAB_LOSSES:
            raise ConfigError(f"QAD collab={self.collab!r} is not one of {list(COLLAB_LOSSES)}.")
        if len(set(self.qualities)) != len(self.qualities) or not self.qualities:
            raise ConfigError(f"QAD qualities={self.qualities!r} must name distinct qualities.")
        if self.collab != "none" and len(self.qualities) < 2:
            raise ConfigError(f"QAD's collaborative loss needs at least two qualities, got {self.qualities!r}.")
        if self.hsic_sigma <= 0:
            raise ConfigError(f"QAD hsic_sigma must be positive, got {self.hsic_sigma}.")
        if self.hsic_bandwidth not in HSIC_BANDWIDTHS:
            raise ConfigError(f"QAD hsic_bandwidth={self.hsic_bandwidth!r} is not one of {list(HSIC_BANDWIDTHS)}.")

    @property
    def kernel_sigma(self) -> float | None:
        """σ passed to the HSIC kernels: None = median heuristic, else the fixed hsic_sigma."""
        return None if self.hsic_bandwidth == "median" else self.hsic_sigma

    @property
    def is_efficientnet(self) -> bool:
        return self.backbone.startswith(("efficientnet", "tf_efficientnet"))

    @property
    def resolved_alpha(self) -> float:
        if self.alpha is not None:
            return float(self.alpha)
        return self.alpha_efficientnet if self.is_efficientnet else self.alpha_resnet

    @property
    def resolved_gamma(self) -> float:
        if self.gamma is not None:
            return float(self.gamma)
        return self.gamma_efficientnet if self.is_efficientnet else self.gamma_resnet


# --------------------------------------------------------------------------- HSIC (Eq. 8)
def _gaussian_gram(z: torch.Tensor, sigma: float | None, scale_by_dim: bool = True) -> torch.Tensor:
    """Gaussian Gram matrix K_ij = exp(−‖z_i − z_j‖² / (2·s²)) on flattened per-sample features z (n, d).

    ``sigma=None`` (QAD's default): the median heuristic, s² = the (lower) median of the
    squared distances ‖z_i − z_j‖², i < j, held constant in the gradient (a bandwidth, not a
    feature to optimise). It is scale-free: whatever the layer's size and activation scale,
    a typical pair has K = e^(−1/2), so HSIC and its gradient are of order one.

    ``sigma`` a number: s² = σ²·d with ``scale_by_dim`` (the HSIC-bottleneck convention of
    [34]: d = flattened size), σ² without. The paper's σ = 6 is of this kind, but its feature
    scale is not printed: on random-init ResNet-50 stage outputs at 224 px the per-dimension
    kernel gives K ≈ 0.99 everywhere (HSIC ~2e-4) and ‖∇ α·ΣHSIC‖ ≈ 1e-6 ‖∇ CE‖ (measured,
    benchmarks/mechanisms_blur_qad.py), and the textbook kernel K ≈ I: no gradient either way.
    """
    z = z.reshape(len(z), -1).float()
    z = z - z.mean(dim=0, keepdim=True)  # distances are shift-invariant; this keeps ‖z‖² small
    sq = (z * z).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0).double()
    if sigma is None:
        n = len(z)
        off_diagonal = dist.detach()[torch.triu_indices(n, n, offset=1, device=dist.device).unbind()]
        # identical samples (all distances 0): any bandwidth gives K = 1; avoid 0/0
        denom = 2.0 * off_diagonal.median().clamp_min(torch.finfo(torch.float64).tiny)
    else:
        denom = 2.0 * sigma * sigma * (z.shape[1] if scale_by_dim else 1)
    # K ≈ 1 − small when σ is wide: exp and the centring run in float64 (n×n, cheap)
    return torch.exp(-dist / denom)


def _center(k: torch.Tensor) -> torch.Tensor:
    """H K H with H = I − 11ᵀ/n (subtract row and column means, add back the grand mean)."""
    return k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()


def hsic_from_grams(k: torch.Tensor, l_gram: torch.Tensor, *, k_centered: bool = False) -> torch.Tensor:
    """Eq. 8: tr(K H L H)/(n−1)² = Σ_ij (HKH)_ij L_ij/(n−1)² (L symmetric)."""
    n = k.shape[0]
    if n < 2:
        raise ValueError(f"HSIC needs at least 2 samples, got {n}")
    kc = k if k_centered else _center(k)
    return (kc * l_gram).sum() / float((n - 1) ** 2)


def hsic(u: torch.Tensor, v: torch.Tensor, sigma: float | None = None, *, scale_by_dim: bool = True) -> torch.Tensor:
    """Biased HSIC estimate (Eq. 8) between paired samples u (n, ...) and v (n, ...);
    Gaussian kernels of bandwidth ``sigma`` (None = median heuristic, see _gaussian_gram)."""
    if len(u) != len(v):
        raise ValueError(f"HSIC needs paired samples, got {len(u)} and {len(v)}")
    return hsic_from_grams(_gaussian_gram(u, sigma, scale_by_dim), _gaussian_gram(v, sigma, scale_by_dim)).float()


def hsic_between_qualities(
    features: Sequence[torch.Tensor], sigma: float | None = None, *, scale_by_dim: bool = True
) -> torch.Tensor:
    """Σ over unordered pairs τ<ρ of HSIC(Z^τ, Z^ρ) for one layer; ``features[τ]`` is (B, ...).

    Each Gram matrix is computed once per quality (M kernels for M(M−1)/2 pairs).
    """
    grams = [_gaussian_gram(z, sigma, scale_by_dim) for z in features]
    centered = [_center(k) for k in grams]
    total = features[0].new_zeros((), dtype=torch.float64)
    for a, b in combinations(range(len(features)), 2):
        total = total + hsic_from_grams(centered[a], grams[b], k_centered=True)
    return total.float()


def pairwise_between_qualities(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 3 at an intermediate layer: mean_i ‖z_{τ,i} − z_{ρ,i}‖/√d summed over pairs τ<ρ.

    Divided by √d (d = flattened size) so that layers of different size weigh alike, on the
    same per-coordinate scale as the HSIC kernel (the paper gives no weighting for Table 4).
    """
    total = features[0].new_zeros((), dtype=torch.float32)
    for a, b in combinations(range(len(features)), 2):
        diff = (features[a] - features[b]).reshape(len(features[a]), -1).float()
        total = total + diff.norm(dim=1).mean() / math.sqrt(diff.shape[1])
    return total


# --------------------------------------------------------------------------- AWP (Eq. 4–5)
class AdversarialWeightPerturbation:
    """One projected step of relative-size weight perturbation (Wu et al. [56]).

    φ_l = Π(η · ‖θ_l‖ · g_l/‖g_l‖) with ‖φ_l‖ ≤ γ‖θ_l‖ per layer l (Eq. 5 from φ = 0;
    Algorithm 1 line 5). As in [56], only weight tensors (ndim > 1: conv and linear) are
    perturbed; biases and normalisation parameters are left alone (the paper is silent).
    """

    def __init__(self, model: nn.Module, gamma: float, eta: float | None = None) -> None:
        if gamma < 0:
            raise ConfigError(f"AWP gamma must be >= 0, got {gamma}.")
        self.gamma = float(gamma)
        self.eta = float(gamma if eta is None else eta)
        self.params = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]

    def perturbation(self, loss: torch.Tensor) -> list[torch.Tensor]:
        """φ* for the loss at the current weights (gradient ascent direction, then Π)."""
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        # under torchrun the ascent direction is the global batch's (identity in one process)
        grads = distributed.average_gradients(grads, self.params)
        phis = []
        # written without a host-side branch (no device sync per layer): a zero gradient or
        # zero weights give φ = 0 through the arithmetic, and Π is a multiply by 1 inside the ball
        for w, g in zip(self.params, grads):
            if g is None:
                phis.append(torch.zeros_like(w))
                continue
            w_norm = w.detach().norm()
            tiny = torch.finfo(g.dtype).tiny
            step = self.eta * w_norm * g / g.norm().clamp_min(tiny)  # Eq. 5, φ = 0 before the one step
            radius = self.gamma * w_norm  # B(θ, γ) relative to the layer's norm
            step_norm = step.norm()
            shrink = torch.where(step_norm > radius, radius / step_norm.clamp_min(tiny), torch.ones_like(step_norm))
            phis.append((step * shrink).detach())  # projection Π onto the feasible ball
        return phis

    @contextmanager
    def applied(self, phis: Sequence[torch.Tensor]) -> Iterator[None]:
        """θ ← θ + φ inside the block; on exit θ is restored bit for bit from a copy."""
        backup = [w.detach().clone() for w in self.params]
        with torch.no_grad():
            for w, phi in zip(self.params, phis):
                w.add_(phi)
        try:
            yield
        finally:
            with torch.no_grad():
                for w, saved in zip(self.params, backup):
                    w.copy_(saved)


@contextmanager
def frozen_buffers(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (BatchNorm running statistics) on exit: the AWP ascent pass
    must not count as a second training forward (as with the proxy model of [56])."""
    saved = [b.detach().clone() for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(model.buffers(), saved):
                b.copy_(s)


# --------------------------------------------------------------------------- layer taps
def feature_layer_names(model: nn.Module, indices: Sequence[int] | None = None) -> list[str]:
    """Module names of the backbone's feature levels (timm ``feature_info``), all or chosen."""
    info = getattr(model, "feature_info", None)
    if not info:
        raise ConfigError(
            f"Backbone {type(model).__name__} declares no feature_info; QAD needs its stage outputs for HSIC."
        )
    names = [d["module"] for d in info]
    if indices is None:
        return names
    bad = [i for i in indices if not -len(names) <= i < len(names)]
    if bad:
        raise ConfigError(f"QAD hsic_layers {list(indices)} out of range; the backbone has {len(names)} feature levels {names}.")
    return [names[i] for i in indices]


@contextmanager
def capture_outputs(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Forward hooks that store each named module's output during the block."""
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        module = model.get_submodule(name)

        def hook(_m: nn.Module, _inp: Any, out: Any, key: str = name) -> None:
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"layer {key!r} returns {type(out).__name__}, not a tensor")
            store[key] = out

        handles.append(module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


# --------------------------------------------------------------------------- aligned batches
class AlignedQualities(Dataset):
    """Training frames, each with its crops at the M configured qualities (Algorithm 1, line 2).

    Reads a FrameSet whose extra ``qualities`` (N, Q, H, W, 3) holds each row's frame at the
    qualities ``attrs["qualities"]``. The first configured quality (``raw``) may be stood in
    for by the frames' best quality when they have no ``raw`` and that quality is not
    configured otherwise (a single-quality dataset and its c23/c40 re-encodings). When the rows are the union of several qualities (one row
    per frame and quality), each frame is kept once (the rows of the first listed quality
    present), so an epoch sees every frame once at every quality. Each item checks that the
    row's own crop equals its stack entry at the row's quality (the stack belongs to that row).
    """

    def __init__(self, frames: FrameSet, qualities: Sequence[str]) -> None:
        if "qualities" not in frames.extras:
            raise ConfigError(
                "QAD needs each training frame at every quality: load the training set with "
                "load_frames(..., requires=['qualities'])."
            )
        stack = frames.extras["qualities"]
        have = list(frames.attrs.get("qualities") or [])
        if stack.ndim != 5 or stack.shape[-1] != 3:
            raise ConfigError(f"FrameSet extra 'qualities' must be (N, Q, H, W, 3), got {stack.shape}.")
        if len(have) != stack.shape[1]:
            raise ConfigError(
                f"FrameSet extra 'qualities' holds {stack.shape[1]} qualities but attrs['qualities'] names {have}."
            )
        qualities = tuple(qualities)
        if qualities and have and qualities[0] not in have and have[0] not in qualities:
            # A dataset that ships at one quality (Celeb-DF v2, FFIW10K: "orig") has no "raw":
            # its own, best quality is the paper's "raw version" of it (Sec. 4.1) and takes the
            # first (reference) role; the compressed roles still have to be present by name.
            qualities = (have[0],) + qualities[1:]
        missing = [q for q in qualities if q not in have]
        if missing:
            raise ConfigError(
                f"QAD trains on qualities {list(qualities)} but the training frames lack quality "
                f"{', '.join(repr(q) for q in missing)} (they have {have}); add it to the protocol's "
                f"training qualities or set qualities={tuple(q for q in qualities if q in have)!r}."
            )
        self.frames = frames
        self.stack = stack
        self.have = have
        self.take = [have.index(q) for q in qualities]
        self.qualities = tuple(qualities)
        self.row_quality: np.ndarray | None = None
        rows = np.arange(len(frames))
        if "quality" in frames.meta.columns:
            row_q = frames.meta["quality"].astype(str).to_numpy()
            unknown = sorted(set(row_q) - set(have))
            if unknown:
                raise ConfigError(
                    f"Training rows of quality {unknown} have no entry in the 'qualities' extra (it holds {have})."
                )
            self.row_quality = np.array([have.index(q) for q in row_q], dtype=np.int64)
            anchor = next(i for i, q in enumerate(have) if np.any(self.row_quality == i))
            rows = rows[self.row_quality == anchor]
        self.rows = rows
        self.labels = frames.labels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        row = int(self.rows[k])
        stack = self.stack[row]
        if self.row_quality is not None:
            own = int(self.row_quality[row])
            if not np.array_equal(stack[own], self.frames.images[row]):
                vid = self.frames.meta.at[row, "video_id"]
                raise DatasetError(
                    f"Training row {row} ({vid}, quality {self.have[own]!r}) does not match its own entry in "
                    f"the 'qualities' extra: the multi-quality crops are not aligned with the frames."
                )
        picked = np.ascontiguousarray(stack[self.take])  # (M, H, W, 3) in config order
        return {
            "qualities": torch.from_numpy(picked).permute(0, 3, 1, 2),
            "label": torch.tensor(int(self.labels[row]), dtype=torch.long),
            "index": torch.tensor(row, dtype=torch.long),
        }


def stack_qualities(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, M, 3, H, W) + (B,) → X = [X_τ]_{τ∈T} (M·B, 3, H, W) quality-major, labels repeated."""
    if images.ndim != 5:
        raise ValueError(f"expected a (B, M, 3, H, W) batch, got {tuple(images.shape)}")
    b, m = images.shape[:2]
    x = images.transpose(0, 1).reshape(m * b, *images.shape[2:])
    return x, labels.repeat(m)


def one_cycle_factor(epoch: int, epochs: int, pct_start: float = 0.3, div: float = 25.0, final_div: float = 1e4) -> float:
    """Learning-rate factor of the one-cycle policy [46] at ``epoch`` (cosine warm-up to the
    peak for ``pct_start`` of training, cosine decay after; PyTorch OneCycleLR's defaults since
    the paper gives none). The harness steps schedulers once per epoch."""
    start, end = 1.0 / div, 1.0 / (div * final_div)
    if epochs <= 1:
        return 1.0
    peak = max(1, round(pct_start * (epochs - 1)))
    if epoch <= peak:
        t = epoch / peak
        return start + (1.0 - start) * (1 - math.cos(math.pi * t)) / 2
    t = (epoch - peak) / max(epochs - 1 - peak, 1)
    return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2


# --------------------------------------------------------------------------- detector
class QADDetector(Detector):
    """Quality-agnostic training (Algorithm 1); plain backbone at inference."""

    config_class: ClassVar[type[DetectorConfig]] = QADConfig
    requires: ClassVar[frozenset[str]] = frozenset({"qualities"})
    fp16_safe: ClassVar[bool] = False  # AWP's ascent and the update run their own backward passes
    name = "qad"

    def setup_training(self) -> None:
        cfg: QADConfig = self.config  # type: ignore[assignment]
        opt = make_optimizer(cfg, self.model.parameters())
        self.optimizers["model"] = opt
        if cfg.one_cycle:
            epochs = cfg.epochs
            self.schedulers["model"] = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: one_cycle_factor(e, epochs))
        self._layers = feature_layer_names(self.model, cfg.hsic_layers) if cfg.collab != "none" else []
        self._awp = AdversarialWeightPerturbation(self.model, cfg.resolved_gamma, cfg.awp_eta) if cfg.use_awp else None

    def train_loader(self, train: FrameSet, seed: int, epoch: int) -> DataLoader:
        data = AlignedQualities(train, self.config.qualities)
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        bs = self.config.batch_size
        # workers / pinned memory from the config; a new loader per epoch, as before
        return self.make_loader(data, batch_size=bs, shuffle=True, drop_last=len(data) > bs, generator=generator)

    def collaborative_terms(self, x: torch.Tensor, m: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward X (M·B quality-major) → logits and per-layer collaborative terms."""
        cfg: QADConfig = self.config  # type: ignore[assignment]
        with capture_outputs(self.model, self._layers) as store:
            logits = self.logits(x)
        terms = {}
        for name in self._layers:
            # mixed precision: HSIC's Gaussian kernel of pairwise feature distances loses too
            # much in bf16/fp16, so the terms are computed in fp32 (no-op under fp32)
            with self.full_precision():
                per_quality = [t.float() for t in store[name].chunk(m, dim=0)]
                if cfg.collab == "hsic":
                    terms[name] = hsic_between_qualities(per_quality, cfg.kernel_sigma, scale_by_dim=cfg.hsic_scale_by_dim)
                else:
                    terms[name] = pairwise_between_qualities(per_quality)
        return logits, terms

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float | torch.Tensor]:
        cfg: QADConfig = self.config  # type: ignore[assignment]
        if "qualities" not in batch:
            raise ConfigError("QAD's training batches need 'qualities' (build them with QADDetector.train_loader).")
        images, labels = batch["qualities"], batch["label"]
        b, m = images.shape[:2]
        if m != len(cfg.qualities) or len(labels) != b:
            raise DatasetError(f"QAD batch holds {m} qualities for {len(labels)} labels; expected {len(cfg.qualities)} × {b}.")
        raw, y = stack_qualities(images, labels)
        x = self.preprocess(raw)
        y = y.to(self.device)
        logs: dict[str, float | torch.Tensor] = {}
        phis = None
        if self._awp is not None:
            # Algorithm 1 lines 4–5: L1 on θ (+ φ = 0), one ascent step → φ*
            with frozen_buffers(self.model):
                adv_loss = F.cross_entropy(self.logits(x), y)
                phis = self._awp.perturbation(adv_loss)
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self._awp.applied(phis) if phis is not None else _nothing():  # line 6: θ ← θ + φ*
            if self._layers and b >= 2:
                logits, terms = self.collaborative_terms(x, m)
                collab = torch.stack(list(terms.values())).sum()
            else:
                logits, collab = self.logits(x), x.new_zeros(())
            ce = F.cross_entropy(logits, y)  # line 7: mean over the M·B images
            if cfg.collab == "hsic":
                loss = ce - cfg.resolved_alpha * collab  # Eq. 9–10: L_col = −Σ HSIC
            else:
                loss = ce + cfg.resolved_alpha * collab  # pairwise distance minimised; none: 0
            loss.backward()  # gradient at θ + φ*
        # line 15 (θ ← θ − φ) happens on leaving the block, exactly (restored from a copy);
        # line 14's update then uses the gradient taken at θ + φ* (see docs/recipes/qad.md)
        opt.step()
        logs.update(loss=loss.detach(), ce=ce.detach())  # read back once per epoch (run_epoch)
        if cfg.collab != "none":
            logs[cfg.collab] = collab.detach()
        return logs


@contextmanager
def _nothing() -> Iterator[None]:
    yield
