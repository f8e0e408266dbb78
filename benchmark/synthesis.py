"""Training-data synthesis: fakes made from a selection's real frames (``synthesis:`` in a
protocol's data entry), registered by name in ``procedures.SYNTHESES``.

``self_blended``: Self-Blended Images (SBI; Shiohara & Yamasaki, "Detecting Deepfakes with
Self-Blended Images", CVPR 2022), the "FF++-real+SBI" training data of pim Tables V and IX.
Each pseudo-fake is one real frame blended onto itself: a copy of the frame (the *source*)
is altered — colour, resolution, a slight resize and shift — and pasted into the untouched
frame (the *target*) through a soft face-region mask:

    x_sbi = M ⊙ T(x) + (1 − M) ⊙ x,     M = r · G_σ(D(H(landmarks)))

H is the face region, D a random deformation, G_σ a Gaussian blur of random width and
r a random blend ratio. pim describes what SBI teaches: "the mismatch between the blended
regions and the original regions, including resolution, color, boundary and landmarks"
(Sec. II). The choices where neither pim nor our reading of SBI fixes a number are the
fields of ``SelfBlendParams``; docs/recipes/pim.md lists them ("paper says / we do / why").

The synthesised set is computed on demand: ``SelfBlendedRows`` looks like a streamed image
array of 2N rows (the N reals, then one pseudo-fake per real) and blends a row only when a
batch reads it, so nothing but the reals is held or cached. Row k's draws come from
``np.random.default_rng([seed, draw, k])``: a frame set is deterministic per seed, and
``FrameSet.redrawn(draw)`` (called by the training loop once per epoch) draws fresh
pseudo-fakes each epoch, as SBI generates them anew every iteration. Validation and test
sets keep draw 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import SYNTHESES
from dfbench.benchmark.rows import Rows, take_rows

SELF_BLENDED = "self_blended"


@dataclass(frozen=True)
class SelfBlendParams:
    """The self-blending draws. Fractions are of the crop side."""

    # face region: MTCNN's 5 landmarks (eyes, nose, mouth corners) span the inner face; their
    # hull scaled ×2 about its centroid reaches about the brows-to-chin hull SBI takes from
    # 68/81 facial landmarks (the factor BiG-Arts' masks use, detectors/artifact_masks.py)
    hull_scale: float = 2.0
    # frames without landmarks (no face found): an ellipse from the crop geometry. The crop is
    # the face box ×1.3 around its centre, so the box spans the central 1/1.3 of the crop.
    crop_margin: float = 1.3
    # deformation D: a random piecewise-affine warp of the region (4×4 cells, ±3 % jitter)
    distort_grid: int = 4
    distort_magnitude: float = 0.03
    # blur G_σ: σ ~ U(1 %, 4 %) of the side (a soft boundary of random width)
    blur_sigma: tuple[float, float] = (0.01, 0.04)
    # blend ratio r, uniform over these values (full blends twice as likely as each partial one)
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    # source transform T: colour (each with probability p_colour: RGB shift, hue/saturation/
    # value, brightness/contrast, at the ranges of pim_augment), resolution (with probability
    # p_downscale: resampled down to a U(downscale) fraction of the side and back up), then a
    # resize by U(scale) about the crop centre and a shift of up to ±shift in x and y
    p_colour: float = 0.5
    p_downscale: float = 0.5
    downscale: tuple[float, float] = (0.5, 0.9)
    scale: tuple[float, float] = (0.95, 1.05)
    shift: float = 0.03


def face_region(landmarks: np.ndarray | None, size: int, params: SelfBlendParams) -> np.ndarray:
    """uint8 {0, 1} (size, size) face-region mask of one crop: the scaled 5-landmark hull, or,
    without finite landmarks, the ellipse of the face box the crop was cut around."""
    from dfbench.detectors.artifact_masks import face_hull_mask

    if landmarks is not None and np.isfinite(np.asarray(landmarks, dtype=np.float64)).all():
        region = face_hull_mask(np.asarray(landmarks, dtype=np.float64), (size, size), params.hull_scale)
        if region.any():
            return region
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2.0
    r = size / (2.0 * params.crop_margin)  # half the face box
    return ((((xs - c) / r) ** 2 + ((ys - c) / r) ** 2) <= 1.0).astype(np.uint8)


def blend_mask(landmarks: np.ndarray | None, size: int, rng: np.random.Generator, params: SelfBlendParams) -> np.ndarray:
    """M = r · G_σ(D(face region)), float32 (size, size) in [0, 1]."""
    from dfbench.detectors.artifact_masks import piecewise_affine_distort

    region = face_region(landmarks, size, params)
    deformed = piecewise_affine_distort(region, rng, params.distort_grid, params.distort_magnitude)
    if not deformed.any():  # a warp that pushed the whole region out: keep the region itself
        deformed = region
    sigma = rng.uniform(*params.blur_sigma) * size
    soft = ndimage.gaussian_filter(deformed.astype(np.float32), sigma=sigma, mode="constant")
    peak = float(soft.max())
    soft = soft / peak if peak > 0 else soft
    ratio = float(rng.choice(np.asarray(params.blend_ratios)))
    return (np.clip(soft, 0.0, 1.0) * ratio).astype(np.float32)


def source_transform(image: np.ndarray, rng: np.random.Generator, params: SelfBlendParams) -> np.ndarray:
    """T(x): the altered copy of a uint8 (H, W, 3) frame that is pasted back into it."""
    from dfbench.detectors.pim_augment import brightness_contrast, hue_saturation_value, rgb_shift

    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W) uint8
    for colour in (rgb_shift, hue_saturation_value, brightness_contrast):
        if rng.random() < params.p_colour:
            x = colour(x, g)
    h, w = x.shape[-2:]
    y = x.float()
    if rng.random() < params.p_downscale:
        factor = rng.uniform(*params.downscale)
        small = (max(int(round(h * factor)), 2), max(int(round(w * factor)), 2))
        y = F.interpolate(y, size=small, mode="bilinear", align_corners=False, antialias=True)
        y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    s = rng.uniform(*params.scale)
    tx, ty = rng.uniform(-params.shift, params.shift, size=2) * 2.0  # grid units: the side spans 2
    theta = torch.tensor([[[1.0 / s, 0.0, -tx / s], [0.0, 1.0 / s, -ty / s]]], dtype=torch.float32)
    grid = F.affine_grid(theta, list(y.shape), align_corners=False)
    y = F.grid_sample(y, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()


def self_blend(
    image: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator, params: SelfBlendParams = SelfBlendParams()
) -> tuple[np.ndarray, np.ndarray]:
    """One pseudo-fake of a real uint8 (H, W, 3) crop: (blended uint8 (H, W, 3), mask float32 (H, W)).

    Outside the mask (M = 0) the result is the input, bit for bit."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8 or image.shape[0] != image.shape[1]:
        raise ValueError(f"self_blend needs a square uint8 (H, W, 3) crop, got {image.dtype} {image.shape}")
    mask = blend_mask(landmarks, image.shape[0], rng, params)
    source = source_transform(image, rng, params).astype(np.float32)
    m = mask[..., None]
    blended = m * source + (1.0 - m) * image.astype(np.float32)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out[mask == 0] = image[mask == 0]  # exact outside the mask, whatever the rounding
    return out, mask


class SelfBlendedRows(Rows):
    """A read-only image array whose rows are real crops (``kind`` 0) or their self-blended
    pseudo-fakes (``kind`` 1), computed when read. ``pos`` names the real row of ``reals``."""

    joinable = False  # rows computed on demand: concatenating them as stored rows would lose the blend

    def __init__(
        self, reals: Any, landmarks: np.ndarray, kind: np.ndarray, pos: np.ndarray, *, seed: int, draw: int = 0,
        params: SelfBlendParams = SelfBlendParams(),
    ) -> None:
        super().__init__([reals], np.asarray(kind, dtype=np.int32), pos, tuple(reals.shape[1:]), np.uint8)
        self.reals = reals
        self.landmarks = np.asarray(landmarks, dtype=np.float64)
        self.seed, self.draw, self.params = int(seed), int(draw), params

    def _like(self, kind: np.ndarray, pos: np.ndarray, draw: int) -> SelfBlendedRows:
        return SelfBlendedRows(self.reals, self.landmarks, kind, pos, seed=self.seed, draw=draw, params=self.params)

    def take(self, index: Any) -> SelfBlendedRows:
        return self._like(self.src[index], self.pos[index], self.draw)

    def redrawn(self, draw: int) -> SelfBlendedRows:
        """The same rows with the pseudo-fakes of another draw (a training epoch)."""
        return self._like(self.src, self.pos, draw)

    def read(self, src: np.ndarray, pos: np.ndarray) -> np.ndarray:
        flat_src, flat_pos = src.reshape(-1), pos.reshape(-1)
        out = np.array(self.reals[flat_pos], dtype=np.uint8, copy=True)
        for k in np.flatnonzero(flat_src == 1):
            p = int(flat_pos[k])
            rng = np.random.default_rng([self.seed, self.draw, p])
            out[k] = self_blend(out[k], self.landmarks[p], rng, self.params)[0]
        return out.reshape(*src.shape, *self.row_shape)


def self_blended(frames: FrameSet, *, seed: int, keep: Iterable[str] = (), params: SelfBlendParams = SelfBlendParams()) -> FrameSet:
    """The real frames of ``frames`` followed by one self-blended pseudo-fake of each (label 1).

    A pseudo-fake's ``video_id`` is its real's with ``/self_blended`` appended (a video of its
    own at video level), ``method`` is "self_blended", ``source_id``/``target_id`` the real
    video's id. ``frames`` must hold reals only and the "landmarks" extra; ``keep`` names the
    extras the result carries (a pseudo-fake's are its real's).
    """
    if (frames.labels != 0).any():
        raise ConfigError(
            f"Synthesis {SELF_BLENDED!r} makes its fakes from real frames; the selection also holds "
            f"{int((frames.labels != 0).sum())} fake frames (leave `methods` out of a synthesised data entry)."
        )
    if "landmarks" not in frames.extras:
        raise ConfigError(f"Synthesis {SELF_BLENDED!r} needs the frames' landmarks; load them with requires=('landmarks',).")
    unknown = sorted(set(keep) - set(SELF_BLENDED_EXTRAS))
    if unknown:
        raise ConfigError(
            f"Synthesis {SELF_BLENDED!r} cannot supply frame data {unknown} for its pseudo-fakes "
            f"(it supplies {sorted(SELF_BLENDED_EXTRAS)}); use a detector that does not require them."
        )
    n = len(frames)
    pos = np.r_[np.arange(n), np.arange(n)].astype(np.int64)
    kind = np.r_[np.zeros(n, np.int32), np.ones(n, np.int32)]
    landmarks = np.asarray(frames.extras["landmarks"], dtype=np.float64).reshape(n, -1, 2)
    images = SelfBlendedRows(frames.images, landmarks, kind, pos, seed=seed, params=params)
    fakes = frames.meta.copy()
    ids = fakes["video_id"].astype(str)
    fakes["video_id"] = ids + "/" + SELF_BLENDED
    fakes["label"] = 1
    fakes["method"] = SELF_BLENDED
    for column in ("source_id", "target_id"):
        if column in fakes:
            fakes[column] = ids.to_numpy()
    meta = pd.concat([frames.meta, fakes], ignore_index=True)
    extras = {k: take_rows(v, pos) for k, v in frames.extras.items() if k in set(keep)}
    attrs = dict(frames.attrs)
    attrs["failed"] = list(frames.attrs.get("failed", []))  # failed reals stay counted as reals
    attrs["synthesis"] = SELF_BLENDED
    return FrameSet(images, meta, extras, attrs)


SELF_BLENDED_EXTRAS = frozenset({"landmarks"})  # the extras its pseudo-fakes can carry
self_blended.requires = frozenset({"landmarks"})  # what the real frames must be loaded with
self_blended.supplies = SELF_BLENDED_EXTRAS  # checked against a detector's requires (validate.check_synthesis)
SYNTHESES.register(SELF_BLENDED, self_blended, description="Self-Blended Images (Shiohara & Yamasaki, CVPR 2022)")
