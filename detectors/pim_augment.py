"""The training augmentations of pim Table IV's "With" arm (Sec. V-B): "HorizontalFlip, RGBShift,
HueSaturationValue, RandomBrightnessContrast, ImageCompression, and GaussNoise".

Those are Albumentations class names; the paper prints no parameter, probability or order. The
simplest faithful reading is each transform at its Albumentations 1.x default, applied in the
listed order, each to an image with probability 0.5 (Albumentations' default p):

  HorizontalFlip            mirror left-right
  RGBShift                  each of R, G, B shifted by its own U(-20, 20) (0-255 scale)
  HueSaturationValue        hue + U(-20, 20) in OpenCV's 0-180 hue units (= 2° each),
                            saturation + U(-30, 30), value + U(-20, 20) (0-255 scale)
  RandomBrightnessContrast  x·(1 + c) + 255·b, c, b ~ U(-0.2, 0.2) (brightness by max value)
  ImageCompression          JPEG at quality U{99, 100}
  GaussNoise                N(0, v) per pixel and channel, variance v ~ U(10, 50)

Every transform works on a uint8 (N, 3, H, W) CPU batch and returns one; draws come from the
caller's ``torch.Generator`` so a seed reproduces them. Written for dfbench (no Albumentations
dependency); docs/recipes/pim.md lists the choices.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dfbench.detectors.baselines import gaussian_noise, jpeg_compress

P_APPLY = 0.5  # Albumentations' default probability for every transform above
RGB_SHIFT = 20.0
HUE_SHIFT = 20.0  # OpenCV hue units (0-180 for a full turn)
SAT_SHIFT = 30.0
VAL_SHIFT = 20.0
BRIGHTNESS = 0.2
CONTRAST = 0.2
JPEG_QUALITY = (99, 100)
NOISE_VARIANCE = (10.0, 50.0)


def _uniform(n: int, low: float, high: float, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.empty(n, *shape).uniform_(low, high, generator=g)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] → HSV, hue in [0, 1) of a full turn, S and V in [0, 1]."""
    r, g, b = rgb.unbind(1)
    v, _ = rgb.max(1)
    c = v - rgb.min(1).values
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(v == r, ((g - b) / safe) % 6, torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(c > 0, h / 6, torch.zeros_like(h))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack([h, s, v], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_hsv``."""
    h, s, v = hsv.unbind(1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)  # R, G, B sectors
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * (torch.minimum(k, 4 - k).clamp(0, 1))


def horizontal_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    del g
    return x.flip(-1)


def rgb_shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    shift = _uniform(len(x), -RGB_SHIFT, RGB_SHIFT, g, 3, 1, 1)
    return _to_uint8(x.float() + shift)


def hue_saturation_value(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    hsv = rgb_to_hsv(x.float() / 255)
    hue = (hsv[:, 0] + _uniform(n, -HUE_SHIFT, HUE_SHIFT, g, 1, 1) / 180) % 1.0
    sat = (hsv[:, 1] + _uniform(n, -SAT_SHIFT, SAT_SHIFT, g, 1, 1) / 255).clamp(0, 1)
    val = (hsv[:, 2] + _uniform(n, -VAL_SHIFT, VAL_SHIFT, g, 1, 1) / 255).clamp(0, 1)
    return _to_uint8(hsv_to_rgb(torch.stack([hue, sat, val], 1)) * 255)


def brightness_contrast(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    alpha = 1 + _uniform(n, -CONTRAST, CONTRAST, g, 1, 1, 1)
    beta = _uniform(n, -BRIGHTNESS, BRIGHTNESS, g, 1, 1, 1) * 255
    return _to_uint8(x.float() * alpha + beta)


def image_compression(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    qualities = torch.randint(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, (len(x),), generator=g).tolist()
    return torch.stack([jpeg_compress(img, q) for img, q in zip(x, qualities)])


def gauss_noise(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return gaussian_noise(x, _uniform(len(x), *NOISE_VARIANCE, g), g)


# In the paper's order (Sec. V-B).
PIM_AUGMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "HorizontalFlip": horizontal_flip,
    "RGBShift": rgb_shift,
    "HueSaturationValue": hue_saturation_value,
    "RandomBrightnessContrast": brightness_contrast,
    "ImageCompression": image_compression,
    "GaussNoise": gauss_noise,
}


def pim_augment(images: torch.Tensor, g: torch.Generator, p: float = P_APPLY) -> torch.Tensor:
    """Each transform of PIM_AUGMENTATIONS, in order, on a random share ``p`` of the batch.

    Only the chosen images are transformed (JPEG and HSV round trips are not free), the rest
    pass through unchanged.
    """
    x = images.cpu()
    for transform in PIM_AUGMENTATIONS.values():
        # indices as a Python list: the batch is on the CPU, and no tensor is read as a bool
        chosen = (torch.rand(len(x), generator=g) < p).nonzero().flatten().tolist()
        if chosen:
            x = x.clone()
            x[chosen] = transform(x[chosen], g)
    return x
