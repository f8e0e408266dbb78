"""Fixed per-video statistics of the synthetic manipulations' traces (no learning).

They say how much of each trace a quality level keeps, independently of any detector: the
separability (ROC AUC) of fakes from their own targets' real videos by one number per
video. Every statistic looks only at the fake's ground-truth mask, and a real video is
measured with the mask of a fake made from it (same frames, same geometry), so the mask
itself carries no information. Each is a log ratio of something inside the region to the
same thing just outside it, which cancels most of what varies between identities and
between compression levels.

- ``fine_energy`` (scale ~1 px): high-pass energy (grey level minus its Gaussian blur,
  σ 1 px) inside the region over outside: grain added, or sensor noise removed, by a
  re-rendering. Heavy compression erases it.
- ``mid_energy`` (scale 2-6 px): band-pass energy (difference of Gaussian blurs σ 1.5 and
  σ 3 px) inside over outside: detail lost by a face or texture rendered at a lower
  resolution than the frame (softened lips, eye and mouth edges).
- ``seam_step`` (scale: the region, tens of px): median gradient magnitude (σ 2 px blur,
  RGB) on the blend seam over that in bands either side of it, along the upper half of the
  seam: a shading/colour offset of the re-rendered region is a step all along its outline.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

BAND_PX = 4  # band width and distance from the mask's edge (pixels at 128² frames)


def _inside_outside(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask eroded by BAND_PX (where the blend weight is already high) and a BAND_PX
    wide ring BAND_PX outside it (clear of the seam, whose edge would add energy)."""
    inside = ndimage.binary_erosion(mask, iterations=BAND_PX)
    near = ndimage.binary_dilation(mask, iterations=BAND_PX)
    return inside, ndimage.binary_dilation(near, iterations=BAND_PX) & ~near


def _energy_ratio(frames: np.ndarray, masks: np.ndarray, sigmas: tuple[float, float | None]) -> float:
    ratios = []
    for frame, mask in zip(frames.astype(np.float32), masks > 0):
        inside, outside = _inside_outside(mask)
        if not (inside.any() and outside.any()):
            continue
        grey = frame.mean(-1)
        wide = ndimage.gaussian_filter(grey, sigmas[1]) if sigmas[1] else grey
        band = (wide - ndimage.gaussian_filter(grey, sigmas[0])) ** 2
        ratios.append(float(np.log((band[inside].mean() + 1e-3) / (band[outside].mean() + 1e-3))))
    return float(np.mean(ratios)) if ratios else float("nan")


def fine_energy(frames: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of log(high-pass energy inside / outside); ``frames`` uint8
    (T, H, W, 3), ``masks`` (T, H, W) nonzero = manipulated. NaN when no frame has both."""
    return _energy_ratio(frames, masks, (1.0, None))


def mid_energy(frames: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of log(band-pass energy (σ 1.5 − σ 3 blur) inside / outside)."""
    return _energy_ratio(frames, masks, (3.0, 1.5))


def seam_step(frames: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of log(median gradient on the seam / median gradient beside it).

    The seam is the 2-px line BAND_PX inside the mask's edge (where a narrow blend ramps
    up); beside it, the 2-px lines 6 px further in and 2 px outside the edge, together. Only the upper
    half of the mask's rows counts: below and beside a lower-face region the lines would
    cross the face's own outline, which every real video has too.
    """
    values = []
    for frame, mask in zip(frames.astype(np.float32), masks > 0):
        e4 = ndimage.binary_erosion(mask, iterations=BAND_PX)
        seam = e4 & ~ndimage.binary_erosion(e4, iterations=2)
        deep = ndimage.binary_erosion(e4, iterations=6)
        inner = deep & ~ndimage.binary_erosion(deep, iterations=2)
        near = ndimage.binary_dilation(mask, iterations=2)
        outer = ndimage.binary_dilation(near, iterations=2) & ~near
        rows = np.nonzero(mask.any(1))[0]
        if len(rows):
            upper = np.arange(mask.shape[0])[:, None] < (rows[0] + rows[-1]) / 2
            seam, inner, outer = seam & upper, inner & upper, outer & upper
        beside = inner | outer
        if not (seam.any() and beside.any()):
            continue
        grad = np.sqrt(
            sum(
                ndimage.gaussian_filter(frame[..., c], 2.0, order=(0, 1)) ** 2
                + ndimage.gaussian_filter(frame[..., c], 2.0, order=(1, 0)) ** 2
                for c in range(3)
            )
        )
        values.append(float(np.log((np.median(grad[seam]) + 1e-3) / (np.median(grad[beside]) + 1e-3))))
    return float(np.mean(values)) if values else float("nan")


STATISTICS = {"seam": seam_step, "mid": mid_energy, "fine": fine_energy}


def separability(real: list[float], fake: list[float]) -> float:
    """ROC AUC of fakes vs reals by a statistic, folded to ≥ 0.5 (a trace may raise or lower
    it: NT's grain adds high-pass energy, a low-resolution render removes band-pass energy)."""
    auc = float(roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake]))
    return max(auc, 1.0 - auc)


def paired_separability(real: list[float], fake: list[float]) -> float:
    """Fraction of (real, fake) pairs, in order (each fake with its own target's real video),
    where the fake's statistic is on its side of the real's (ties count half), folded to
    ≥ 0.5: the identity's own variation cancels, so a trace too faint for one threshold
    over all identities still shows."""
    diff = np.asarray(fake, float) - np.asarray(real, float)
    frac = float(np.mean((diff > 0) + 0.5 * (diff == 0)))
    return max(frac, 1.0 - frac)
