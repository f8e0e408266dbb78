"""Random JPEG compression of test crops (QAD Table 2, "random image compression").

The paper applies "random JPEG image compression [2]" (Albumentations) to the raw test set
without giving the quality range. ``random_jpeg(images, value, rng)`` re-encodes every crop
with its own JPEG quality factor drawn uniformly from the integers ``value .. 100`` (the
protocol's ``values`` are the lower bounds), so one scored cell per lower bound.

Importing this module registers ``random_jpeg`` in ``PERTURBATIONS`` (listed in
``dfbench.benchmark.extensions``).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.procedures import PERTURBATIONS


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode one uint8 (H, W, 3) crop as JPEG at ``quality`` (4:2:0, libjpeg) and decode it."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def random_jpeg(images: np.ndarray, value: float, rng: np.random.Generator) -> np.ndarray:
    """Each crop JPEG-compressed at a quality factor ~ U{value, ..., 100}, drawn from ``rng``."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"random_jpeg needs uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
    low = int(round(value))
    if not 1 <= low <= 100:
        raise ConfigError(f"random_jpeg's value (lowest JPEG quality) must lie in 1..100, got {value}.")
    qualities = rng.integers(low, 101, size=len(images))
    out = np.empty_like(images)
    for i, (image, q) in enumerate(zip(images, qualities)):
        out[i] = jpeg_roundtrip(np.ascontiguousarray(image), int(q))
    return out


PERTURBATIONS.register("random_jpeg", random_jpeg)
