"""Is each recipe's defining mechanism active at the paper's shapes? (adversarial blur, QAD)

Builds each detector with ``create_detector(name, preset="paper", pretrained=False)`` (the
paper's backbone and input size, random init: no weight downloads), then measures, on CPU:

  grad_bat     Eq. 6: the one-step change of the precision map p = 1/σ from p₀ = 1,
               mean |Δp| and max |Δp| over a batch (EfficientNet-B4, 299 px).
  gen_bat, two_gen_bat, combined_at
               Eq. 7: the generator's σ = 1/p range after N adversarial generator steps
               (the detector fixed; Adam at ``--gen-lr`` so the generator moves quickly).
  qad          Eq. 9-10: ‖∇_θ α·Σ HSIC‖ / ‖∇_θ CE‖ at θ (ResNet-50, 224 px, B frames × 3
               qualities), both gradients over all backbone parameters.

    python benchmarks/mechanisms_blur_qad.py                     # everything, 1 thread
    python benchmarks/mechanisms_blur_qad.py --only qad --batch 4

Inputs are synthetic: smooth random images (bilinearly upsampled 16×16 noise plus fine
noise), labels alternating real/fake; the QAD qualities are the image, and its JPEG round
trips at quality 75 and 30 (stand-ins for c23 / c40). Prints one JSON line per measure.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import dfbench  # noqa: F401  (torchvision guard before timm)
import dfbench.detectors.adversarial_blur  # noqa: F401  (registers the recipes)
import dfbench.detectors.qad  # noqa: F401
from dfbench.benchmark.perturbations_qad import jpeg_roundtrip
from dfbench.detectors.adversarial_blur import attacking
from dfbench.detectors.base import Detector, create_detector
from dfbench.detectors.pixelwise_blur import pixelwise_gaussian_blur


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """(n, 3, size, size) in [0, 1]: coarse structure (edges for the blur to act on) + grain."""
    gen = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(n, 3, 16, 16, generator=gen), size=(size, size), mode="bilinear", align_corners=False)
    return (0.8 * coarse + 0.2 * torch.rand(n, 3, size, size, generator=gen)).clamp(0, 1)


def built(name: str, **overrides: Any) -> Detector:
    torch.manual_seed(0)
    det = create_detector(name, preset="paper", pretrained=False, **overrides)
    det.ensure_built()
    det.setup_training()
    return det


def grad_bat_step(batch: int, raw_gradient: bool = True, **overrides: Any) -> dict[str, Any]:
    """Eq. 6's one step from p₀; ``raw_gradient`` also reports the unscaled ∇_p L (one more
    forward/backward)."""
    det = built("grad_bat", **overrides)
    size = det.config.input_size
    x, y = smooth_images(batch, size, seed=1), torch.arange(batch) % 2
    p0 = 1.0 / det.config.blur_init_sigma
    start = time.perf_counter()
    p = det.adversarial_precision(x, y)
    seconds = time.perf_counter() - start
    dp = (p - p0).abs()
    k = det.config.kernel_size
    raw: dict[str, float] = {}
    with attacking(det.model):
        if raw_gradient:  # in float64: its size, not the step, is what float32 p = 1 + ε·g rounds away
            ones = torch.full((batch, 1, size, size), p0, dtype=torch.float64, requires_grad=True)
            blurred = pixelwise_gaussian_blur(x.double(), ones, k).float()
            (grad,) = torch.autograd.grad(det.attack_loss(blurred, y), ones)
            raw = {"mean_abs_grad_p": float(grad.abs().mean()), "max_abs_grad_p": float(grad.abs().amax())}
        with torch.no_grad():  # Σ_i L at the start map and at the adversarial map
            loss0 = float(det.attack_loss(pixelwise_gaussian_blur(x, torch.full_like(p, p0), k), y))
            loss_adv = float(det.attack_loss(pixelwise_gaussian_blur(x, p, k), y))
    return {
        "recipe": "grad_bat", "backbone": det.config.backbone, "input_size": size, "batch": batch,
        "blur_step_norm": getattr(det.config, "blur_step_norm", None),
        **raw,
        "mean_abs_dp": float(dp.mean()), "max_abs_dp": float(dp.amax()), "rms_dp": float(dp.square().mean().sqrt()),
        "loss_sum_start": loss0, "loss_sum_adv": loss_adv,
        "seconds": round(seconds, 2),
    }


def generator_sigma_range(name: str, batch: int, steps: int, gen_lr: float, size: int | None) -> dict[str, Any]:
    # gen_lr 0: the preset's optimiser (RAdam) and generator lr (2e-3); else Adam at gen_lr
    overrides: dict[str, Any] = {"optimizer": "adam", "generator_lr": gen_lr} if gen_lr > 0 else {}
    if size is not None:
        overrides["input_size"] = size
    det = built(name, **overrides)
    size = det.config.input_size
    x, y = smooth_images(batch, size, seed=2), torch.arange(batch) % 2
    start = time.perf_counter()
    for _ in range(steps):
        det.generator_step(x, y)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        sigma = 1.0 / det.precision_map(x, y)
    return {
        "recipe": name, "backbone": det.config.backbone, "input_size": size, "batch": batch,
        "generator_steps": steps, "generator_optimizer": f"{det.config.optimizer} lr {det.config.generator_lr}",
        "sigma_min": float(sigma.min()), "sigma_mean": float(sigma.mean()), "sigma_max": float(sigma.max()),
        "seconds": round(seconds, 2),
    }


def quality_batch(frames: int, size: int, seed: int) -> torch.Tensor:
    """(B, 3 qualities, 3, H, W) uint8: each frame raw, JPEG 75, JPEG 30."""
    base = (smooth_images(frames, size, seed) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    stack = np.stack([np.stack([img, jpeg_roundtrip(img, 75), jpeg_roundtrip(img, 30)]) for img in base])
    return torch.from_numpy(stack).permute(0, 1, 4, 2, 3)


def qad_gradient_ratio(frames: int, **overrides: Any) -> dict[str, Any]:
    from dfbench.detectors.qad import stack_qualities

    det = built("qad", **overrides)
    cfg = det.config
    images = quality_batch(frames, cfg.input_size, seed=3)
    raw, y = stack_qualities(images, torch.arange(frames) % 2)
    x = det.preprocess(raw)
    m = images.shape[1]
    params = [p for p in det.model.parameters() if p.requires_grad]
    start = time.perf_counter()
    logits, terms = det.collaborative_terms(x, m)
    ce = F.cross_entropy(logits, y)
    collab = cfg.resolved_alpha * torch.stack(list(terms.values())).sum()
    g_ce = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
    g_h = torch.autograd.grad(collab, params, allow_unused=True)
    seconds = time.perf_counter() - start

    def norm(grads: tuple[torch.Tensor | None, ...]) -> float:
        return float(torch.sqrt(sum((g.double().square().sum() for g in grads if g is not None), torch.zeros((), dtype=torch.float64))))

    n_ce, n_h = norm(g_ce), norm(g_h)
    # the classifier head gets CE's gradient only (HSIC taps the stages before it): the ratio
    # over the feature extractor alone is the one that says whether Eq. 9 steers the features
    head = {id(p) for p in det.model.get_classifier().parameters()}
    body = [i for i, p in enumerate(params) if id(p) not in head]
    n_ce_body, n_h_body = norm(tuple(g_ce[i] for i in body)), norm(tuple(g_h[i] for i in body))
    # Adam (the paper's optimiser) rescales each coordinate: where |α∇HSIC| > |∇CE| the
    # collaborative term sets the sign of that weight's update
    pairs = [(g_ce[i], g_h[i]) for i in body if g_ce[i] is not None and g_h[i] is not None]
    dominated = sum(int((h.abs() > c.abs()).sum()) for c, h in pairs)
    coords = sum(c.numel() for c, _ in pairs)
    return {
        "recipe": "qad", "backbone": cfg.backbone, "input_size": cfg.input_size, "frames": frames, "qualities": m,
        "alpha": cfg.resolved_alpha, "hsic_sigma": cfg.hsic_sigma,
        "hsic_bandwidth": getattr(cfg, "hsic_bandwidth", "sigma*sqrt(d)" if cfg.hsic_scale_by_dim else "sigma"),
        "hsic_per_layer": {k: round(float(v.detach()), 6) for k, v in terms.items()},
        "grad_norm_ce": n_ce, "grad_norm_alpha_hsic": n_h, "ratio": n_h / n_ce if n_ce else float("nan"),
        "grad_norm_ce_features": n_ce_body, "ratio_features": n_h_body / n_ce_body if n_ce_body else float("nan"),
        "frac_coords_hsic_dominates": dominated / coords if coords else float("nan"),
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=["grad_bat", "gen_bat", "two_gen_bat", "combined_at", "qad"])
    parser.add_argument("--batch", type=int, default=2, help="images (Grad-BAT, generators) / frames (QAD)")
    parser.add_argument("--gen-steps", type=int, default=10)
    parser.add_argument("--gen-lr", type=float, default=0.05, help="generator Adam lr (large: push the bound); 0 = the preset's RAdam 2e-3")
    parser.add_argument("--gen-size", type=int, default=None, help="input size for the generator runs (default: paper)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.only:
        if name == "grad_bat":
            row = grad_bat_step(args.batch)
        elif name == "qad":
            row = qad_gradient_ratio(args.batch)
        else:
            row = generator_sigma_range(name, args.batch, args.gen_steps, args.gen_lr, args.gen_size)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
