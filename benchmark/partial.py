"""Partial face manipulation test sets (BiG-Arts Section 4.3, Fig. 8, Table 7).

For every fake test frame one facial region of the fake — eye, nose, mouth, lower, upper,
left or right — is pasted into the pixel-aligned real frame of its target video
(``paired_real``); the result is a fake (label 1) in which only that region was
manipulated. Real frames pass through unchanged (label 0).

Regions are located from MTCNN's 5 landmarks in a face-aligned frame: origin at the eye
midpoint, u along the line from the image-left to the image-right eye, v perpendicular
to it towards the mouth, both in units of the inter-ocular distance d (so regions follow
the face's scale and roll). With u_n, v_n the nose tip and v_m the mouth corners' mean:

  eye    u ∈ [u_le − 0.35, u_re + 0.35],  v ∈ [−0.25, 0.25]          (both eyes, one band)
  nose   u ∈ [u_n − 0.3, u_n + 0.3],      v ∈ [0.25, max(v_n + 0.15, 0.45)]
  mouth  u ∈ [u_ml − 0.2, u_mr + 0.2],    v ∈ [v_m − 0.25, v_m + 0.25]
  upper / lower   the face region with v < v_n / v ≥ v_n   (split at the nose tip)
  left / right    the face region with u < u_n / u ≥ u_n   (image left / right)

The face region is the landmark hull scaled ×2 about its centroid, as in the BiG-Arts
augmentation (``dfbench.detectors.artifact_masks.face_hull_mask``). The paper draws its
regions from Dlib's 68 landmarks without giving their extents; these boxes are this
benchmark's definition (docs/recipes/big_arts.md). When the mouth would lie above the
eyes (a face rolled past 90°) u and v are both flipped so that v points to the mouth.

Importing this module registers ``partial_region`` in
``dfbench.benchmark.procedures.TEST_TRANSFORMS`` (listed in ``dfbench.benchmark.extensions``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import TEST_TRANSFORMS
from dfbench.detectors.artifact_masks import face_hull_mask

PARTIAL_REGIONS: tuple[str, ...] = ("eye", "nose", "mouth", "lower", "upper", "left", "right")
DEFAULT_FACE_SCALE = 2.0


def _face_coordinates(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Per-pixel face coordinates (u, v) in units of d, and the landmarks' own (u, v)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    le, re = lm[:2][np.argsort(lm[:2, 0], kind="stable")]
    d = float(np.linalg.norm(re - le))
    if d <= 0:
        raise ValueError("the two eye landmarks coincide")
    origin = (le + re) / 2.0
    ax_u = (re - le) / d
    ax_v = np.array([-ax_u[1], ax_u[0]])  # u turned by +90° in image coordinates (y down)
    if (lm[3:].mean(axis=0) - origin) @ ax_v < 0:  # v must point to the mouth (faces rolled ≥ 90°)
        le, re, ax_u, ax_v = re, le, -ax_u, -ax_v
    mouth = lm[3:][np.argsort((lm[3:] - origin) @ ax_u, kind="stable")]
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xs - origin[0], ys - origin[1]
    u = (dx * ax_u[0] + dy * ax_u[1]) / d
    v = (dx * ax_v[0] + dy * ax_v[1]) / d

    def uv(p: np.ndarray) -> tuple[float, float]:
        q = p - origin
        return float(q @ ax_u / d), float(q @ ax_v / d)

    (u_le, _), (u_re, _) = uv(le), uv(re)
    u_n, v_n = uv(lm[2])
    (u_ml, v_ml), (u_mr, v_mr) = uv(mouth[0]), uv(mouth[1])
    marks = {"u_le": u_le, "u_re": u_re, "u_n": u_n, "v_n": v_n, "u_ml": u_ml, "u_mr": u_mr, "v_m": (v_ml + v_mr) / 2}
    return u, v, marks


def region_mask(landmarks: np.ndarray, shape: tuple[int, int], region: str, face_scale: float = DEFAULT_FACE_SCALE) -> np.ndarray:
    """uint8 {0, 1} mask (H, W) of one facial region; empty when the landmarks are missing (NaN)."""
    if region not in PARTIAL_REGIONS:
        raise ConfigError(f"Unknown partial region {region!r}; choose one of {list(PARTIAL_REGIONS)}.")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2):
        raise ValueError(f"partial regions need MTCNN's 5 landmarks (5, 2), got {lm.shape}")
    if not np.isfinite(lm).all():
        return np.zeros(shape, dtype=np.uint8)
    u, v, m = _face_coordinates(lm, shape)
    if region == "eye":
        inside = (u >= m["u_le"] - 0.35) & (u <= m["u_re"] + 0.35) & (np.abs(v) <= 0.25)
    elif region == "nose":
        inside = (np.abs(u - m["u_n"]) <= 0.3) & (v >= 0.25) & (v <= max(m["v_n"] + 0.15, 0.45))
    elif region == "mouth":
        inside = (u >= m["u_ml"] - 0.2) & (u <= m["u_mr"] + 0.2) & (np.abs(v - m["v_m"]) <= 0.25)
    else:
        face = face_hull_mask(lm, shape, face_scale).astype(bool)
        half = {"upper": v < m["v_n"], "lower": v >= m["v_n"], "left": u < m["u_n"], "right": u >= m["u_n"]}[region]
        inside = face & half
    return inside.astype(np.uint8)


def paste_region(fake: np.ndarray, real: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The real image with the fake's pixels where ``mask`` is set."""
    return np.where(mask[..., None].astype(bool), fake, real)


class PartialRegionTransform:
    """Test-set transform: reals unchanged (label 0) plus region-pasted fakes (label 1).

    Called as ``transform(frames, region="mouth")``; registered as ``partial_region``.
    Rows keep their order and metadata; the output metadata gains ``partial_region`` and
    ``partial_pixels`` (pasted pixels per frame, 0 for reals and for frames without
    landmarks), and a ``mask`` extra, when present, becomes the pasted region's mask.
    """

    requires: frozenset[str] = frozenset({"paired_real", "landmarks"})

    def check_params(self, *, region: str, face_scale: float = DEFAULT_FACE_SCALE) -> None:
        """The spec's ``params``, checked before a run loads any data."""
        if region not in PARTIAL_REGIONS:
            raise ConfigError(f"transform partial_region: unknown region {region!r}; choose one of {list(PARTIAL_REGIONS)}.")

    def __call__(self, frames: FrameSet, *, region: str, face_scale: float = DEFAULT_FACE_SCALE) -> FrameSet:
        missing = sorted(self.requires - set(frames.extras))
        if missing:
            raise ConfigError(f"The partial_region transform needs frame data {missing}; load the test set with them.")
        if region not in PARTIAL_REGIONS:
            raise ConfigError(f"Unknown partial region {region!r}; choose one of {list(PARTIAL_REGIONS)}.")
        images = np.array(frames.images, copy=True)
        paired = frames.extras["paired_real"]
        landmarks = frames.extras["landmarks"]
        shape = images.shape[1:3]
        labels = frames.labels
        pixels = np.zeros(len(frames), dtype=np.int64)
        region_masks = np.zeros((len(frames), *shape), dtype=np.uint8)
        for i in np.flatnonzero(labels == 1):
            mask = region_mask(landmarks[i], shape, region, face_scale)
            images[i] = paste_region(images[i], np.asarray(paired[i]), mask)
            region_masks[i] = mask
            pixels[i] = int(mask.sum())
        meta = frames.meta.copy()
        meta["partial_region"] = region
        meta["partial_pixels"] = pixels
        extras: Mapping[str, np.ndarray] = dict(frames.extras)
        if "mask" in extras:
            extras = {**extras, "mask": region_masks * np.uint8(255)}
        return FrameSet(images, meta, extras, {**frames.attrs, "partial_region": region})


partial_region = PartialRegionTransform()
TEST_TRANSFORMS.register("partial_region", partial_region)
