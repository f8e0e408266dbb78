"""Pixel-wise Gaussian blur: every output pixel gets its own Gaussian kernel.

Wang, Guo & Zuo, "Deepfake Forensics via An Adversarial Game" (TIP 2022), Sec. III-B:

    G_ij(u, v) = 1 / (2π σ_ij²) · exp(-(u² + v²) / (2 σ_ij²))          (Eq. 4)
    x_adv_ij   = < G_ij, γ(x_ij, k) >                                   (Eq. 5)

where γ(x_ij, k) is the k×k window centred on pixel (i, j) and σ_ij comes from a
single-channel map of the image's size.

Parametrisation. The paper optimises / generates 1/σ "to ensure numerical stability"
(Sec. IV, implementation details), so the map passed here is the *precision* p = 1/σ:

    w_ij(u, v) ∝ exp(-(u² + v²) · p_ij² / 2),   Σ_{u,v} w_ij(u, v) = 1.

The kernel is truncated to k×k and renormalised to sum 1 (the 1/(2πσ²) factor of Eq. 4
then cancels; renormalising keeps the image's brightness for every σ, which the
continuous constant would not do once truncated). Limits:

    p → ∞ (σ → 0): all weight on the centre pixel, the input is returned (x_adv → x, Sec. III-B);
    p = 0 (σ → ∞): uniform weights, a k×k box filter, the strongest blur a k×k kernel allows.

Borders use reflect padding. The Gaussian is separable and isotropic, so the normalised
2-D weights are the outer product of one normalised 1-D profile per pixel; the op builds
that profile with a softmax over the k offsets (exactly the normalised exponential,
and stable: the centre logit is 0) and accumulates the k×k window row by row with
strided views. The only Python loop runs over the k kernel rows, never over pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Precisions above this are clamped: with |u| ≥ 1 the off-centre weights are already
# exp(-5e11) = 0 in float32, so the result is the identity; clamping keeps p² finite and
# gradients free of inf·0.
MAX_PRECISION = 1e6


def pixelwise_gaussian_blur(x: torch.Tensor, precision: torch.Tensor, k: int = 9) -> torch.Tensor:
    """Blur ``x`` (N, C, H, W) with a per-pixel Gaussian of precision ``precision`` = 1/σ (N, 1, H, W).

    Differentiable with respect to both ``x`` and ``precision``. ``k`` is the (odd) kernel
    size (the paper uses 9 for training). The sign of the precision does not matter (only
    p² enters); values above ``MAX_PRECISION`` act as "no blur".
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"kernel size k must be a positive odd integer, got {k}")
    if x.dim() != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if precision.shape != (n, 1, h, w):
        raise ValueError(f"precision map must be (N, 1, H, W) = {(n, 1, h, w)}, got {tuple(precision.shape)}")
    r = k // 2
    if r == 0:
        return x
    if r >= h or r >= w:
        raise ValueError(f"kernel size {k} needs images larger than {r} px for reflect padding, got {h}x{w}")
    # Float32 at least: p² up to 1e12 would overflow half precision.
    dtype = torch.promote_types(torch.promote_types(x.dtype, precision.dtype), torch.float32)
    xf = x.to(dtype)
    p = precision.to(dtype).abs().clamp(max=MAX_PRECISION)
    offsets = torch.arange(-r, r + 1, device=x.device, dtype=dtype)
    # 1-D profile per pixel: softmax_u(-u² p² / 2) = exp(-u² p²/2) / Σ_u' exp(-u'² p²/2)   (Eq. 4, normalised)
    logits = -0.5 * offsets.square().view(1, k, 1, 1) * (p * p)  # (N, k, H, W)
    profile = torch.softmax(logits, dim=1)
    padded = F.pad(xf, (r, r, r, r), mode="reflect")  # (N, C, H + 2r, W + 2r)
    col_weights = profile.permute(0, 2, 3, 1).unsqueeze(1)  # (N, 1, H, W, k): weight of column offset b
    out = torch.zeros_like(xf)
    for a in range(k):  # kernel row offset u = a - r
        # windows[..., i, j, b] = padded[..., i + a, j + b]: a strided view, no copy
        windows = padded[:, :, a : a + h, :].unfold(3, k, 1)  # (N, C, H, W, k)
        row_sum = (windows * col_weights).sum(dim=-1)
        out = out + profile[:, a : a + 1] * row_sum  # Eq. 5: <G_ij, γ(x_ij, k)> accumulated row by row
    return out.to(x.dtype) if x.dtype != dtype else out


def pixelwise_gaussian_blur_sigma(x: torch.Tensor, sigma: torch.Tensor, k: int = 9) -> torch.Tensor:
    """The same blur with a map of standard deviations σ (N, 1, H, W); σ ≤ 1e-6 means no blur."""
    precision = 1.0 / sigma.clamp_min(1.0 / MAX_PRECISION)
    return pixelwise_gaussian_blur(x, precision, k)
