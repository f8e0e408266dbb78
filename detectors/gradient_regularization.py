"""Gradient regularisation: PIM, SAM and DualFlat (Guan et al., "Improving Generalization
of Deepfake Detectors by Imposing Gradient Regularization", TIFS 2024 — seed ``pim``).

The paper penalises the loss's sensitivity to the channel-wise statistics (μ_s, σ_s) of a
shallow stage's features (Eq. 5). A first-order Taylor step turns the penalty into a loss
at perturbed statistics (Eqs. 8-11), giving the training objective

    Eq. 12   min_θ (1 − α) L(x, y, θ) + α L(f'_θs(x), y, θ_d)
    Eq. 7    f' = f_norm (σ + Δσ) + (μ + Δμ),      Eq. 6  f_norm = (f − μ) / σ
    Eq. 9    Δl = (Δμ, Δσ) = r ∇_{μ,σ} L / ‖∇_{μ,σ} L‖₂       (shared over the batch)

implemented by the Perturbation Injection Module (PIM, Sec. III-D, Algorithm 1). Sec. IV
adds the weight-space counterpart (SAM) and both together (DualFlat):

    Eq. 14   L' = (1 − α − β) L(θ) + α L(f'; θ) + β L(θ + r′ ∇_θ L / ‖∇_θ L‖)

One recipe class implements Eq. 14; the registered variants pick α and β:
``pim`` (α = 1, β = 0), ``sam`` (α = 0, β = 1), ``dualflat`` (α = β = 0.1).

Choices where the paper is silent (see docs/recipes/pim.md):
- One PIM sits on the output of every block of the first ``feature_info`` stage at stride
  ≥ 4 (Sec. III-A/D: "every shallow layer", "all three blocks of the first stage" of
  ConvNeXt-base: ``stages.0.blocks.{0,1,2}``; ResNet-50: ``layer1.{0,1,2}``; EfficientNet:
  ``blocks.1.*``). timm's legacy Xception marks that stage inside block 2's residual branch,
  which its skip branch bypasses; there the PIM sits on ``block1``, whose output feeds both.
  ``pim_layers`` names other modules. Eq. 9's norm is taken over the statistics of all of
  them together (one Δl of norm r), each layer with its own (Δμ, Δσ).
- σ is the standard deviation sqrt(var + ε) over the spatial positions of each instance
  and channel (AdaIN/MixStyle statistics), ε = 1e-5; μ and σ are not detached (Eq. 7 as
  written).
- Every forward pass of a step is an ordinary training-mode pass (BatchNorm running
  statistics see each of them).
- ``dualflat``'s α = β = 0.1 is Table VIII's best mixed row (α + β = 0.2, α : β = 0.5 : 0.5).
- Paper preset: ConvNeXt-base at 224 px, batch 64, 100 epochs, ImageNet initialisation
  (Sec. V-A.3); the optimiser is SGD (Algorithm 1, line 9) with momentum 0.9 and lr 1e-3,
  the values of the SBI code the paper's baselines follow (lr and momentum are not stated).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dfbench.benchmark import distributed
from dfbench.benchmark.errors import ConfigError
from dfbench.detectors.base import Detector, DetectorConfig
from dfbench.detectors.pim_augment import pim_augment

PAPER = "pim (Guan et al., TIFS 2024)"


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class GradientRegularizationConfig(DetectorConfig):
    """Eq. 14's coefficients and approximation scalars (Sec. V-A.3, V-F)."""

    alpha: float = 1.0  # weight of the perturbed-statistics loss L(f') (Eq. 12: α = 1)
    beta: float = 0.0  # weight of the perturbed-weights loss L(θ + ε) (Eq. 14)
    r: float = 0.1  # Eq. 9 approximation scalar: ‖(Δμ, Δσ)‖₂ = r
    r_prime: float = 0.05  # Eq. 14 approximation scalar: ‖ε‖₂ = r′ (SAM's ρ)
    pim_layers: str = ""  # modules the PIMs perturb, comma-separated; "" = every block of the first stage (find_shallow_layers)
    stat_eps: float = 1e-5  # σ = sqrt(var + eps)
    # Table IV's "With" arm: the six listed augmentations on every training batch (pim_augment)
    augment: bool = False
    paper: str = PAPER

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "mini": {"backbone": "resnet10t", "input_size": 64, "batch_size": 32, "epochs": 6, "optimizer": "adam", "lr": 1e-3},
        "paper": {
            "backbone": "convnext_base",
            "pretrained": True,
            "input_size": 224,
            "batch_size": 64,
            "epochs": 100,
            "optimizer": "sgd",
            "lr": 1e-3,
            "weight_decay": 0.0,
        },
    }

    def __post_init__(self) -> None:
        if not (0.0 <= self.alpha <= 1.0 and 0.0 <= self.beta <= 1.0 and self.alpha + self.beta <= 1.0 + 1e-12):
            raise ConfigError(
                f"alpha={self.alpha} and beta={self.beta} must lie in [0, 1] with alpha + beta <= 1 "
                f"(Eq. 14 keeps (1 - alpha - beta) L as a non-negative weight; Sec. V-E)."
            )
        if self.r < 0 or self.r_prime < 0:
            raise ConfigError(f"r={self.r} and r_prime={self.r_prime} must be >= 0 (they are perturbation radii).")


# --------------------------------------------------------------------------- PIM
def _stage_blocks(model: nn.Module, name: str) -> list[str]:
    """The blocks of a stage: ``<stage>.blocks.*`` (ConvNeXt), the children of a Sequential
    stage (ResNet ``layer1``, EfficientNet ``blocks.1``), else the stage itself."""
    stage = model.get_submodule(name)
    inner = getattr(stage, "blocks", None)
    if isinstance(inner, nn.Sequential) and len(inner):
        return [f"{name}.blocks.{child}" for child, _ in inner.named_children()]
    if isinstance(stage, nn.Sequential) and len(stage):
        return [f"{name}.{child}" for child, _ in stage.named_children()]
    return [name]


def _feeding_block(model: nn.Module, branch_op: str) -> str:
    """For the first op of a residual branch (``blockN.rep.0``), the module before ``blockN``:
    its output feeds both the branch and the block's skip connection."""
    block = branch_op.split(".rep.", 1)[0]
    parent_name, _, child = block.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    names = [n for n, _ in parent.named_children()]
    i = names.index(child)
    if i == 0:
        return block
    return f"{parent_name}.{names[i - 1]}" if parent_name else names[i - 1]


def find_shallow_layers(model: nn.Module, names: str = "") -> list[tuple[str, int | None]]:
    """(module name, channels or None) of every layer a PIM perturbs (Sec. III-D: "every
    shallow layer").

    ``names`` given (comma-separated): those modules. Otherwise every block of the first
    ``feature_info`` stage whose reduction is at least 4, i.e. the first stage after the stem
    (ConvNeXt ``stages.0``'s three blocks, the paper's choice in Sec. III-A). When that
    stage is marked inside a residual branch (timm's legacy Xception: ``block2.rep.0``), the
    module feeding the whole block (``block1``) is used instead, so that the perturbation
    reaches both the branch and the skip connection."""
    info = [f for f in (getattr(model, "feature_info", None) or []) if isinstance(f, dict)]
    channels = {str(f.get("module")): f.get("num_chs") for f in info}
    if names:
        out = []
        for name in (n.strip() for n in names.split(",")):
            try:
                model.get_submodule(name)
            except AttributeError as exc:
                raise ConfigError(f"pim_layers: {name!r} is not a module of the backbone; use names from model.named_modules().") from exc
            out.append((name, channels.get(name)))
        return out
    for f in info:
        if f.get("reduction", 0) >= 4 and f.get("module"):
            stage, chs = str(f["module"]), f.get("num_chs")
            if ".rep." in stage:
                stage = _feeding_block(model, stage)
            return [(name, chs) for name in _stage_blocks(model, stage)]
    raise ConfigError(
        f"{type(model).__name__} declares no feature_info stage at stride >= 4; set pim_layers to the names of shallow modules."
    )


def channel_statistics(f: torch.Tensor, axis: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance-level channel-wise mean and standard deviation (Eq. 6), keepdim."""
    dims = tuple(d for d in range(1, f.ndim) if d != axis % f.ndim)
    mu = f.mean(dim=dims, keepdim=True)
    sigma = (f.var(dim=dims, keepdim=True, unbiased=False) + eps).sqrt()
    return mu, sigma


Delta = tuple[torch.Tensor, torch.Tensor]  # (Δμ, Δσ) of one layer, one value per channel


class PerturbationInjectionModule:
    """Perturbs the channel statistics of each shallow layer by a batch-shared (Δμ, Δσ)
    (Eqs. 6-7), one pair per layer.

    The forward hooks exist only inside ``inject`` and act only in training mode, so the
    inference network is exactly the backbone: nothing is attached at test time.
    """

    def __init__(self, model: nn.Module, layers: str = "", eps: float = 1e-5) -> None:
        self.layers = find_shallow_layers(model, layers)
        self.names = [name for name, _ in self.layers]
        self.modules = [model.get_submodule(name) for name in self.names]
        self.eps = eps
        self.delta: list[Delta | None] = [None] * len(self.layers)

    def channel_axis(self, index: int, f: torch.Tensor) -> int:
        """NCHW (CNN stages), or channels last (NHWC stages, (B, N, C) token stages)."""
        name, channels = self.layers[index]
        if channels is not None:
            if f.shape[1] == channels:
                return 1
            if f.shape[-1] == channels:
                return f.ndim - 1
            raise ConfigError(f"Layer {name!r} output {tuple(f.shape)} has no axis of {channels} channels.")
        return 1 if f.ndim == 4 else f.ndim - 1

    @contextmanager
    def inject(self, deltas: Sequence[Delta] | None = None) -> Iterator[PerturbationInjectionModule]:
        """Within the block, training-mode forwards see f' of Eq. 7 at every layer.

        Without ``deltas``, Δμ = Δσ = 0 are created per layer on the first forward as leaf
        tensors that require grad (Algorithm 1, line 4: f' = f, and ∇_{Δμ,Δσ} L = ∇_{μ,σ} L);
        they are then available as ``self.delta``. With ``deltas``: one (Δμ, Δσ) per layer."""
        if deltas is not None and len(deltas) != len(self.layers):
            raise ValueError(f"{len(deltas)} (Δμ, Δσ) pairs for {len(self.layers)} layers")
        self.delta = [None] * len(self.layers) if deltas is None else [tuple(d) for d in deltas]
        handles = [
            module.register_forward_hook(lambda m, args, out, i=i: self._hook(i, m, out))
            for i, module in enumerate(self.modules)
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def zero_deltas(self) -> list[torch.Tensor]:
        """The zero (Δμ, Δσ) leaves of the last ``inject()`` forward, flat: [Δμ_1, Δσ_1, Δμ_2, …]."""
        missing = [name for name, d in zip(self.names, self.delta) if d is None]
        if missing:
            raise ConfigError(f"PIM layer(s) {missing} did not run in the forward pass; check pim_layers.")
        return [t for pair in self.delta for t in pair]

    def _hook(self, index: int, module: nn.Module, f: torch.Tensor) -> torch.Tensor | None:
        if not module.training:
            return None  # inference: the module is absent
        axis = self.channel_axis(index, f)
        if self.delta[index] is None:
            zeros = f.new_zeros(f.shape[axis])
            self.delta[index] = (zeros.clone().requires_grad_(True), zeros.clone().requires_grad_(True))
        shape = [1] * f.ndim
        shape[axis] = f.shape[axis]
        d_mu, d_sigma = (d.to(f.dtype).view(shape) for d in self.delta[index])
        mu, sigma = channel_statistics(f, axis, self.eps)
        f_norm = (f - mu) / sigma  # Eq. 6
        # Eq. 7: f' = f_norm (σ + Δσ) + (μ + Δμ) = f + Δσ·f_norm + Δμ (same value, and exactly f at Δ = 0)
        return f + d_sigma * f_norm + d_mu


def scaled_direction(grads: Sequence[torch.Tensor], radius: float) -> list[torch.Tensor]:
    """radius · g / ‖g‖₂ with the norm over all tensors together (Eq. 9; Eq. 14's ε). Zero if g = 0."""
    norm = torch.sqrt(sum((g.detach().float() ** 2).sum() for g in grads))
    scale = radius / norm.clamp_min(1e-12)
    return [(g.detach() * scale).to(g.dtype) for g in grads]


# --------------------------------------------------------------------------- recipe
class GradientRegularization(Detector):
    """Eq. 14 training step; inference is the plain backbone (no PIM, no extra cost)."""

    config_class = GradientRegularizationConfig
    fp16_safe = False  # sets p.grad and steps itself: under fp16 its steps run in fp32 (see Detector.fp16_safe)

    def setup_training(self) -> None:
        super().setup_training()
        cfg: GradientRegularizationConfig = self.config
        self.pim = PerturbationInjectionModule(self.model, cfg.pim_layers, cfg.stat_eps) if cfg.alpha > 0 else None
        # as TraditionalAugmentation: the draws have a generator of their own, seeded by fit()'s seed
        self._aug_gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,)).item())) if cfg.augment else None
        self.last_delta: list[Delta] | None = None
        self.last_epsilon: list[torch.Tensor] | None = None

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg: GradientRegularizationConfig = self.config
        model = self.model
        images = batch["image"]
        if self._aug_gen is not None:  # CPU work on the uint8 batch (PIL's JPEG codec)
            images = pim_augment(images, self._aug_gen).to(images.device)
        x = self.preprocess(images)
        y = batch["label"].to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        w_clean = 1.0 - cfg.alpha - cfg.beta
        use_pim, use_sam = cfg.alpha > 0, cfg.beta > 0
        need_weight_grad = w_clean > 0 or use_sam

        # Algorithm 1 lines 4-5: clean loss with Δμ = Δσ = 0 attached; g1 = ∇_θ L and ∇_{Δμ,Δσ} L
        if use_pim:
            with self.pim.inject() as pim:
                loss = F.cross_entropy(model(x), y)
            deltas = pim.zero_deltas()
        else:
            loss = F.cross_entropy(model(x), y)
            deltas = []
        wanted = (params if need_weight_grad else []) + deltas
        grads = torch.autograd.grad(loss, wanted, allow_unused=True)
        # under torchrun: SAM's ε and PIM's Δ follow the global batch's gradient (identity in one process)
        grads = distributed.average_gradients(grads, wanted)
        grads = [torch.zeros_like(t) if g is None else g for t, g in zip(wanted, grads)]
        g1 = grads[: len(params)] if need_weight_grad else []
        logs: dict[str, float | torch.Tensor] = {"loss": loss.detach()}
        if w_clean > 0:
            for p, g in zip(params, g1):
                p.grad = w_clean * g  # (1 − α − β) g1 (Algorithm 1 line 8; Eq. 14)

        if use_pim:
            # Eq. 9: Δl = r g / ‖g‖ over the statistics gradient of every shallow layer together
            flat = scaled_direction(grads[len(grads) - len(deltas) :], cfg.r)
            pairs = list(zip(flat[0::2], flat[1::2]))
            self.last_delta = pairs
            with self.pim.inject(pairs):  # Algorithm 1 lines 6-7: g2 at f'
                loss_pim = F.cross_entropy(model(x), y)
            (cfg.alpha * loss_pim).backward()  # accumulates α g2
            logs["loss_pim"] = loss_pim.detach()
            logs["delta_norm"] = torch.sqrt(sum((d.detach() ** 2).sum() for d in flat))

        if use_sam:
            # Eq. 14 third term: ascend the weights by ε = r′ ∇_θ L / ‖∇_θ L‖, take the gradient there, restore θ
            epsilon = scaled_direction(g1, cfg.r_prime)
            self.last_epsilon = epsilon
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, e in zip(params, epsilon):
                    p.add_(e)
            loss_sam = F.cross_entropy(model(x), y)
            (cfg.beta * loss_sam).backward()  # accumulates β ∇_θ L(θ + ε)
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
            logs["loss_sam"] = loss_sam.detach()

        opt.step()  # Algorithm 1 line 9
        return logs
