"""Adversarial-training recipes of "Deepfake Forensics via An Adversarial Game".

Wang, Guo & Zuo, IEEE TIP 2022 (arXiv 2103.13567); read beside Sec. III, Eq. 1-7, Fig. 3
and appendices C and E. All six settings of Sec. IV-A share one detector update, Eq. (3)
with λ = 1 (clean and adversarial examples in one batch):

    min_θ  Σ L(x, y; θ) + λ · L(x_adv, y; θ)                                   (Eq. 3)

and differ only in how x_adv is crafted from x (in [0, 1] pixel space, after resizing to
the detector's input size, before normalisation):

  grad_aat     x_adv = x + ε · sign(∇_x L)                                       (Eq. 1)
  grad_sat     x_adv = warp(x, f), f = ε_f · sign(∇_f L) from f = 0 (bilinear grid_sample)
  grad_bat     p_adv = p + ε · ∇_p L(blur(x, p)),  p = 1/σ = 1 everywhere        (Eq. 6, 4, 5)
               (∇ rescaled to unit RMS per image, see below)
  gen_bat      p_adv = G(x); G maximises, the detector minimises                   (Eq. 7)
  two_gen_bat  p_adv = G_r(x) for real x, G_f(x) for fake x                        (Sec. III-C)
  combined_at  x_adv1 = blur(x, Two-Gen-BAT map); x_adv2 = x_adv1 + ε · sign(∇ L)  (Fig. 3)

``attack_steps`` = K > 1 gives the multi-step input-gradient schemes of appendix C
(registered as ``grad_aat_3step`` and ``grad_bat_3step``). Generators are training-only
modules (``self.train_modules``); the inference network is the plain backbone, so a
saved detector holds no generator and scores images with the backbone alone, as ERM does.

Choices where the paper is silent (each also listed in docs/recipes/two_gen_bat.md):
  * ε for training is not printed; the only printed values (Sec. IV-C, the attack
    experiment) are used: FGSM ε = 16/255 and blurring ε = 0.1 with an all-ones σ start.
  * attack examples are crafted with the detector in eval mode (running BN statistics, no
    dropout), so each image's example depends on that image only, and the per-image
    (summed) loss is differentiated, so the Eq. 6 step does not shrink with batch size.
  * the Eq. 6 step is normalised per image to unit RMS (``blur_step_norm="l2"``), so ε = 0.1
    is the RMS change of p, as ε is each entry's change in FGSM (Eq. 6 is "like FGSM except
    for the sign"); the raw gradient (``"none"``) is ~1e-8 per pixel at EfficientNet-B4/299
    and leaves p = 1 unchanged in float32.
  * the precision map is clamped at 0 after the Eq. 6 step (p and -p are the same kernel;
    0 is the k×k box filter, the strongest blur the kernel allows).
  * generator output → precision by p = 1/σ_max + exp(o), σ_max = 1: the generated blur is
    bounded by σ ≤ 1 (Eq. 3's similarity set; the authors' code clamps σ ≤ 1). The last conv
    is zero-initialised (others CycleGAN's N(0, 0.02)), so it starts at a uniform σ = 1/2.
  * generator size: 16 filters × 6 residual blocks (paper preset), chosen so one generator
    pass costs about one EfficientNet-B4 pass, which App. C's cost statement implies.
  * generator optimiser: the detector's optimiser kind, betas and weight decay with the
    generator lr 2e-3 and the same step decay; one generator update per detector update,
    generator first, then the detector on the freshly generated examples.
  * Grad-SAT: one signed step on a per-pixel flow bounded by ε_f = 0.5 px (l∞) replaces
    stAdv's L-BFGS search with a flow-smoothness penalty; border padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dfbench.benchmark.errors import ConfigError
from dfbench.detectors.base import Detector, DetectorConfig, make_optimizer, register_detector
from dfbench.detectors.pixelwise_blur import pixelwise_gaussian_blur

PAPER = "two_gen_bat"
BLUR_STEP_NORMS = ("l2", "linf", "none")


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AdversarialGameConfig(DetectorConfig):
    """Hyperparameters of Wang et al. (TIP 2022); defaults are the paper's where printed."""

    # Sec. IV implementation details
    optimizer: str = "radam"
    betas: tuple[float, float] = (0.9, 0.999)
    lr: float = 5e-4
    weight_decay: float = 5e-4
    lr_step_epochs: int = 10  # "decayed by 0.1 every 10 epochs"
    lr_gamma: float = 0.1
    kernel_size: int = 9  # k of Eq. 4-5 for training ("k to 9, unless otherwise clarified")
    generator_lr: float = 2e-3  # "the learning rate of the generators was initialized to 2e-3"
    # Eq. 6 / Sec. IV-C: σ init "a matrix whose entries share a common value (e.g., 1)"; ε = 0.1
    blur_init_sigma: float = 1.0
    blur_epsilon: float = 0.1
    # Scale of the Eq. 6 step (paper silent). "l2": each image's gradient rescaled to unit RMS
    # (ℓ2 norm √(H·W)), so ε·ĝ has the ℓ2 length of FGSM's ε·sign(g) and the RMS change of p
    # is ε: "like FGSM except for the sign". "none": the raw gradient as printed; measured at
    # EfficientNet-B4/299 its entries are ~1e-8, so p = 1 + ε·g rounds back to 1 in float32
    # (no adversary: a fixed σ = 1 blur). "linf": divided by its largest |entry| (ε = max change).
    blur_step_norm: str = "l2"
    # Eq. 1 / Sec. IV-C: FGSM ε = 16/255 in [0, 1] pixel units
    fgsm_epsilon: float = 16 / 255
    # Grad-SAT flow bound in pixels (paper silent: our choice, sub-pixel)
    flow_epsilon: float = 0.5
    # K of appendix C (1 = the one-step schemes of Eq. 1 and Eq. 6)
    attack_steps: int = 1
    # λ of Eq. 3 (Eq. 7 weights both terms 1)
    adv_weight: float = 1.0
    # CycleGAN ResNet generator (paper: "a CycleGAN [49] generator", size not printed). Sized
    # so that, as App. C states, Two-Gen-BAT costs about a 3-step Grad-BAT, i.e. one generator
    # pass ≈ one detector pass: 16 filters × 6 blocks = 6.4 GFLOPs at 299 px vs 5.7 for
    # EfficientNet-B4 (CycleGAN's own 64 × 9 would be 135 GFLOPs, 24× the detector).
    generator_filters: int = 16
    generator_blocks: int = 6
    generator_steps: int = 1  # generator updates per detector update (paper silent: 1)
    # Bound of the generated blur, σ ≤ generator_max_sigma (p = 1/σ_max + exp(o)): Eq. 3's
    # similarity set S for the blur; the authors' released generator clamps its map so that
    # σ ≤ 1. Without it Eq. 7's generator maximises the loss by blurring without limit.
    generator_max_sigma: float = 1.0
    paper: str = "Wang, Guo, Zuo. Deepfake Forensics via An Adversarial Game. IEEE TIP 2022"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # CPU minutes on the embedded benchmark: a small backbone, crops, generator, schedule.
        "mini": {
            "backbone": "resnet10t",
            "input_size": 64,
            "batch_size": 32,
            "epochs": 6,
            "lr": 1e-3,
            "lr_step_epochs": 4,
            "generator_filters": 16,  # 0.18 GFLOPs at 64 px ≈ resnet10t's 0.18, the paper's ratio
            "generator_blocks": 3,
        },
        # The paper names EfficientNet without a variant, input size, batch or epoch count:
        # dfbench's paper defaults (EfficientNet-B4, 299 px, batch 32, 30 epochs = 3 decays).
        # Sec. IV: every layer but the new two-class head is "pre-trained on ImageNet".
        "paper": {
            "backbone": "efficientnet_b4",
            "pretrained": True,
            "input_size": 299,
            "batch_size": 32,
            "epochs": 30,
            "lr": 5e-4,
            "lr_step_epochs": 10,
            "generator_filters": 16,
            "generator_blocks": 6,
        },
    }

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd integer, got {self.kernel_size}.")
        if self.attack_steps < 1 or self.generator_steps < 1:
            raise ConfigError("attack_steps and generator_steps must be at least 1.")
        if self.blur_step_norm not in BLUR_STEP_NORMS:
            raise ConfigError(f"blur_step_norm must be one of {list(BLUR_STEP_NORMS)}, got {self.blur_step_norm!r}.")
        if self.blur_init_sigma <= 0:
            raise ConfigError(f"blur_init_sigma must be positive, got {self.blur_init_sigma}.")
        if not self.generator_max_sigma > 0:
            raise ConfigError(f"generator_max_sigma must be positive, got {self.generator_max_sigma}.")


# --------------------------------------------------------------------------- generator
class _ResidualBlock(nn.Module):
    """3×3 conv - IN - ReLU - 3×3 conv - IN with an identity skip, reflect padding."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PrecisionGenerator(nn.Module):
    """CycleGAN-style ResNet generator → precision map p = 1/σ (N, 1, H, W), σ ≤ ``max_sigma``.

    7×7 stem, two stride-2 down-samplings, ``blocks`` residual blocks, two stride-2
    transposed-conv up-samplings, 7×7 head with one output channel o; instance norm, ReLU.
    p = 1/max_sigma + exp(o): the blur never exceeds a σ = max_sigma Gaussian (the bound
    the authors' code enforces by clamping, here smooth so the gradient never dies).
    Input: images in [0, 1] (mapped to [-1, 1] as CycleGAN expects). Any H, W: the input
    is reflect-padded to a multiple of 4 and the output cropped back.
    """

    def __init__(self, filters: int = 64, blocks: int = 9, max_sigma: float = 1.0) -> None:
        super().__init__()
        if not max_sigma > 0:
            raise ValueError(f"max_sigma must be positive, got {max_sigma}")
        self.min_precision = 1.0 / max_sigma
        f = filters
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, f, 7), nn.InstanceNorm2d(f), nn.ReLU(inplace=True)]
        for mult in (1, 2):  # down-samplings: f → 2f → 4f
            layers += [nn.Conv2d(f * mult, f * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(f * mult * 2), nn.ReLU(inplace=True)]
        layers += [_ResidualBlock(4 * f) for _ in range(blocks)]
        for mult in (4, 2):  # up-samplings: 4f → 2f → f
            layers += [
                nn.ConvTranspose2d(f * mult, f * mult // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(f * mult // 2),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(f, 1, 7)]
        self.net = nn.Sequential(*layers)
        for m in self.modules():  # CycleGAN's "normal" init: N(0, 0.02) weights, zero bias
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
        # The head starts at zero, so a fresh generator outputs the same p = 1/σ_max + 1 at
        # every pixel (σ = 1/2 for σ_max = 1): a uniform start, as
        # in Eq. 6 (instance-normalised features would otherwise spread exp(o) over e^±2).
        nn.init.zeros_(self.net[-1].weight)

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        h, w = x01.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = x01 * 2.0 - 1.0
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        log_precision = self.net(x)[..., :h, :w]
        # p ≥ 1/σ_max, i.e. σ ≤ σ_max (Eq. 3's similarity set; exp(-30) adds nothing in float32);
        # the clamp keeps exp finite (exp(30) is already "no blur")
        return self.min_precision + torch.exp(log_precision.clamp(-30.0, 30.0))


# --------------------------------------------------------------------------- helpers
@contextmanager
def attacking(model: nn.Module) -> Iterator[None]:
    """Eval mode with parameters frozen: gradients reach the input, never the weights."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def identity_grid(n: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """grid_sample grid (N, H, W, 2) of pixel centres (align_corners=False), x then y."""
    theta = torch.eye(2, 3, device=device, dtype=dtype).unsqueeze(0).expand(n, 2, 3)
    return F.affine_grid(theta, [n, 1, h, w], align_corners=False)


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Spatially transform x (N, C, H, W): output (i, j) samples x at (i + Δu_ij, j + Δv_ij).

    ``flow`` (N, 2, H, W) holds (Δu, Δv) = (row, column) displacements in pixels (Sec. III-A,
    Xiao et al.'s adversarial optical flow); bilinear interpolation, border padding.
    """
    n, _, h, w = x.shape
    grid = identity_grid(n, h, w, x.device, x.dtype)
    # normalised coordinates span 2 units over W (x) / H (y) pixels with align_corners=False
    shift = torch.stack((flow[:, 1] * (2.0 / w), flow[:, 0] * (2.0 / h)), dim=-1)
    return F.grid_sample(x, grid + shift, mode="bilinear", padding_mode="border", align_corners=False)


def normalized_step(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """Each image's gradient (N, ...) rescaled: "l2" to unit RMS (‖ĝ‖₂ = ‖sign g‖₂ = √size),
    "linf" to unit largest |entry|. Divided by the peak first, so gradients of 1e-20 neither
    underflow when squared nor divide by zero; an all-zero gradient stays zero."""
    dims = tuple(range(1, grad.dim()))
    tiny = torch.finfo(grad.dtype).tiny
    unit = grad / grad.abs().amax(dim=dims, keepdim=True).clamp_min(tiny)
    if norm == "linf":
        return unit
    if norm == "l2":
        return unit / unit.square().mean(dim=dims, keepdim=True).sqrt().clamp_min(tiny)
    raise ValueError(f"unknown step norm {norm!r}")


# --------------------------------------------------------------------------- recipes
class AdversarialTrainingDetector(Detector):
    """Eq. (3): the detector minimises L(x) + λ L(x_adv); subclasses craft x_adv."""

    config_class: ClassVar[type[DetectorConfig]] = AdversarialGameConfig
    name = "adversarial_training"
    config: AdversarialGameConfig

    def pixels(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch → ([0, 1] images at the input size, labels) on the device."""
        x01 = self.resize(batch["image"].to(self.device).float().div_(255.0))
        return x01, batch["label"].to(self.device)

    def craft(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        """Adversarial examples in [0, 1] (detached) and logs. Subclasses implement it."""
        raise NotImplementedError

    def attack_loss(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ_i L(x_i, y_i; θ): per-image losses summed, so each image's gradient is its own."""
        return F.cross_entropy(self.logits(self.normalize(x01)), y, reduction="sum")

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        x01, y = self.pixels(batch)
        # mixed precision: the input-gradient attacks (sign / normalised steps on small
        # gradients) and the generators' ascent run in fp32; only the detector's update is autocast
        with self.full_precision():
            x_adv, logs = self.craft(x01, y)
        n = len(y)
        logits = self.logits(self.normalize(torch.cat([x01, x_adv.detach()])))
        loss_clean = F.cross_entropy(logits[:n], y)
        loss_adv = F.cross_entropy(logits[n:], y)
        loss = loss_clean + self.config.adv_weight * loss_adv  # Eq. 3 (Eq. 7 for the detector)
        self.optimizer_step(loss)
        return {"loss": loss.detach(), "loss_clean": loss_clean.detach(), "loss_adv": loss_adv.detach(), **logs}

    # ---- the three input-gradient attacks, shared by the recipes below
    def fgsm(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Eq. 1 (K = 1); K > 1: iterative FGSM, steps of ε/K projected on the ε-ball (App. C)."""
        eps, steps = self.config.fgsm_epsilon, self.config.attack_steps
        x0 = x01.detach()
        x_adv = x0.clone()
        with attacking(self.model):
            for _ in range(steps):
                x_adv.requires_grad_(True)
                (grad,) = torch.autograd.grad(self.attack_loss(x_adv, y), x_adv)
                x_adv = x_adv.detach() + (eps / steps) * grad.sign()
                x_adv = (x0 + (x_adv - x0).clamp(-eps, eps)).clamp(0.0, 1.0)
        return x_adv.detach()

    def adversarial_flow(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Grad-SAT flow: signed gradient steps of ε_f/K from f = 0, bounded |f|∞ ≤ ε_f pixels."""
        eps, steps = self.config.flow_epsilon, self.config.attack_steps
        x0 = x01.detach()
        flow = x0.new_zeros(x0.shape[0], 2, *x0.shape[-2:])
        with attacking(self.model):
            for _ in range(steps):
                flow.requires_grad_(True)
                (grad,) = torch.autograd.grad(self.attack_loss(flow_warp(x0, flow), y), flow)
                flow = (flow.detach() + (eps / steps) * grad.sign()).clamp(-eps, eps)
        return flow.detach()

    def adversarial_precision(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Eq. 6 on the precision map: p ← max(p + ε ∇_p L(blur(x, p)), 0), K times, p₀ = 1/σ₀."""
        cfg = self.config
        x0 = x01.detach()
        p = x0.new_full((x0.shape[0], 1, *x0.shape[-2:]), 1.0 / cfg.blur_init_sigma)
        with attacking(self.model):
            for _ in range(cfg.attack_steps):
                p.requires_grad_(True)
                blurred = pixelwise_gaussian_blur(x0, p, cfg.kernel_size)  # Eq. 4-5
                (grad,) = torch.autograd.grad(self.attack_loss(blurred, y), p)
                if cfg.blur_step_norm != "none":
                    grad = normalized_step(grad, cfg.blur_step_norm)
                p = (p.detach() + cfg.blur_epsilon * grad).clamp_min(0.0)  # Eq. 6 (ascent, no sign)
        return p.detach()


class GradAAT(AdversarialTrainingDetector):
    """Grad-AAT: additive FGSM examples (Eq. 1) trained with Eq. 3."""

    name = "grad_aat"

    def craft(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        x_adv = self.fgsm(x01, y)
        return x_adv, {"perturbation_linf": (x_adv - x01).abs().amax().detach()}


class GradSAT(AdversarialTrainingDetector):
    """Grad-SAT: spatially transformed examples, x_adv = warp(x, f) with an adversarial flow."""

    name = "grad_sat"

    def craft(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        flow = self.adversarial_flow(x01, y)
        return flow_warp(x01, flow).detach(), {"flow_abs_mean": flow.abs().mean().detach()}


class GradBAT(AdversarialTrainingDetector):
    """Grad-BAT: pixel-wise blur (Eq. 4-5) with the one-step gradient map of Eq. 6."""

    name = "grad_bat"

    def craft(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        p = self.adversarial_precision(x01, y)
        x_adv = pixelwise_gaussian_blur(x01, p, self.config.kernel_size)
        return x_adv.detach(), {"precision_mean": p.mean().detach()}


class GenBAT(AdversarialTrainingDetector):
    """Gen-BAT: one generator G makes the precision map; min-max game of Eq. 7.

    Each step: (1) G ascends L(blur(x, G(x)), y; θ_D) with the detector fixed; (2) the
    detector descends L(x) + L(blur(x, G(x))) with G fixed.
    """

    name = "gen_bat"
    generator_names: ClassVar[tuple[str, ...]] = ("generator",)

    def setup_training(self) -> None:
        super().setup_training()
        cfg = self.config
        for key in self.generator_names:
            gen = PrecisionGenerator(cfg.generator_filters, cfg.generator_blocks, cfg.generator_max_sigma).to(self.device)
            self.train_modules[key] = gen
            self.optimizers[key] = make_optimizer(cfg, gen.parameters(), lr=cfg.generator_lr)
            if cfg.lr_step_epochs:  # the same step decay as the detector (fit steps every scheduler)
                self.schedulers[key] = torch.optim.lr_scheduler.StepLR(self.optimizers[key], step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)

    def precision_map(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """p_adv = G(x) (N, 1, H, W), differentiable w.r.t. the generator."""
        return self.train_modules["generator"](x01)

    def generator_step(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """max_θG of Eq. 7: one update of the generator(s) on -L(blur(x, G(x)), y; θ_D), θ_D fixed."""
        cfg = self.config
        with attacking(self.model):
            blurred = pixelwise_gaussian_blur(x01.detach(), self.precision_map(x01.detach(), y), cfg.kernel_size)
            loss = F.cross_entropy(self.logits(self.normalize(blurred)), y)
            opts = [self.optimizers[k] for k in self.generator_names]
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            (-loss).backward()  # gradient ascent on the detector's loss
            for opt in opts:
                opt.step()
        return loss.detach()

    def blurred_examples(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        """Generator updates, then x_adv = blur(x, G(x)) with the updated generator (no grad)."""
        cfg = self.config
        gen_loss = float("nan")
        for _ in range(cfg.generator_steps):
            gen_loss = self.generator_step(x01, y)
        with torch.no_grad():
            p = self.precision_map(x01, y)
            x_adv = pixelwise_gaussian_blur(x01, p, cfg.kernel_size)
        return x_adv, {"loss_generator": gen_loss, "precision_mean": p.mean().detach()}

    def craft(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        return self.blurred_examples(x01, y)


class TwoGenBAT(GenBAT):
    """Two-Gen-BAT: G_r blurs real images (y = 0), G_f fake images (y = 1); Eq. 7 otherwise."""

    name = "two_gen_bat"
    generator_names: ClassVar[tuple[str, ...]] = ("generator_real", "generator_fake")

    def precision_map(self, x01: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x01.shape
        p = x01.new_zeros(n, 1, h, w)
        for label, key in enumerate(self.generator_names):  # 0 = real → G_r, 1 = fake → G_f
            rows = torch.nonzero(y == label).flatten()
            if rows.numel():
                p = p.index_copy(0, rows, self.train_modules[key](x01.index_select(0, rows)))
        return p


class CombinedAT(TwoGenBAT):
    """Combined AT (Fig. 3): Two-Gen-BAT blur gives x_adv1, then FGSM (Eq. 1) on it gives x_adv2.

    The generators play Eq. 7 on x_adv1; the detector trains on x and x_adv2 (Eq. 3).
    """

    name = "combined_at"

    def craft(self, x01: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
        x_adv1, logs = self.blurred_examples(x01, y)
        x_adv2 = self.fgsm(x_adv1, y)
        return x_adv2, logs


# --------------------------------------------------------------------------- registry
register_detector("grad_aat", GradAAT, description="FGSM additive adversarial training (Eq. 1, 3)", paper=PAPER, paper_methods=("Grad-AAT",))
register_detector("grad_sat", GradSAT, description="Spatially-transformed (flow) adversarial training", paper=PAPER, paper_methods=("Grad-SAT",))
register_detector("grad_bat", GradBAT, description="Blurring adversarial training, one-step gradient σ map (Eq. 4-6)", paper=PAPER, paper_methods=("Grad-BAT",))
register_detector("gen_bat", GenBAT, description="Blurring adversarial training with a σ-map generator (Eq. 7)", paper=PAPER, paper_methods=("Gen-BAT",))
register_detector("two_gen_bat", TwoGenBAT, description="Blurring adversarial training with one generator per class", paper=PAPER, paper_methods=("Two-Gen-BAT", "Two-Gen-BAT (k=9)"))  # k = 9 is the default (Sec. IV)
register_detector("combined_at", CombinedAT, description="Two-Gen-BAT blur followed by FGSM (Fig. 3)", paper=PAPER, paper_methods=("Combined AT",))
register_detector("grad_aat_3step", GradAAT, description="Iterative FGSM, 3 steps (App. C)", paper=PAPER, paper_methods=("Grad-AAT (3-step)",), attack_steps=3)
register_detector("grad_bat_3step", GradBAT, description="Gradient blurring, 3 steps of Eq. 6 (App. C)", paper=PAPER, paper_methods=("Grad-BAT (3-step)",), attack_steps=3)
# App. D, Tables XV/XVI: Two-Gen-BAT trained with a smaller blur kernel k (Eq. 4-5), all else as
# Tables I/II (k = 9 is `two_gen_bat` itself).
register_detector("two_gen_bat_k3", TwoGenBAT, description="Two-Gen-BAT with kernel size k=3 (App. D, Tables XV-XVI)", paper=PAPER, paper_methods=("Two-Gen-BAT (k=3)",), kernel_size=3)
register_detector("two_gen_bat_k5", TwoGenBAT, description="Two-Gen-BAT with kernel size k=5 (App. D, Tables XV-XVI)", paper=PAPER, paper_methods=("Two-Gen-BAT (k=5)",), kernel_size=5)
register_detector("two_gen_bat_k7", TwoGenBAT, description="Two-Gen-BAT with kernel size k=7 (App. D, Tables XV-XVI)", paper=PAPER, paper_methods=("Two-Gen-BAT (k=7)",), kernel_size=7)
