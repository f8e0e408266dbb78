"""Fixed per-video statistics of the synthetic manipulations' traces (no learning).

They say how much of each trace a quality level keeps, independently of any detector:
the separability (ROC AUC) of fakes from their own targets' real videos by one number per
video. Both statistics look only at the fake's ground-truth mask, and a real video is
measured with the mask of a fake made from it (same frames, same geometry), so the mask
itself carries no information.

- ``seam_step``: coarse scale. The colour step across the mask's edge, in four bands of
  BAND_PX pixels (two inside, two outside the edge) along the top third of the seam (middle half of its width): the
  step between the near bands minus what the far bands' slope predicts, so the face's
  smooth shading gradient cancels. A shading/colour offset of the re-rendered region shows
  up as a step tens of pixels long.
- ``fine_energy``: fine scale. Log ratio of high-pass energy (grey level minus its Gaussian
  blur, σ 1 px) in the far band inside to that in the far band outside: grain added or
  sensor noise removed by a re-rendering, which heavy compression erases.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

BAND_PX = 4  # width of each band along the seam (pixels at 128² frames)


def _bands(mask: np.ndarray) -> list[np.ndarray]:
    """Bands of a binary mask (H, W), from the inside out: far inside, near inside, near
    outside, far outside (each BAND_PX wide), cut to the top third of the mask's rows and
    the middle half of its columns: below and beside a lower-face region the outside bands
    would leave the face (neck, hair, background), a difference every real video has too."""
    in1 = ndimage.binary_erosion(mask, iterations=BAND_PX)
    in2 = ndimage.binary_erosion(in1, iterations=BAND_PX)
    out1 = ndimage.binary_dilation(mask, iterations=BAND_PX)
    out2 = ndimage.binary_dilation(out1, iterations=BAND_PX)
    bands = [in1 & ~in2, mask & ~in1, out1 & ~mask, out2 & ~out1]
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    if len(rows):
        upper = np.arange(mask.shape[0])[:, None] < rows[0] + (rows[-1] - rows[0]) / 3
        middle = np.abs(np.arange(mask.shape[1])[None, :] - (cols[0] + cols[-1]) / 2) < (cols[-1] - cols[0]) / 4
        bands = [b & upper & middle for b in bands]
    return bands


def seam_step(frames: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of the norm of the RGB step across the mask's edge (levels).

    ``frames`` uint8 (T, H, W, 3); ``masks`` (T, H, W), nonzero = manipulated. Each band's
    colour is its median (a feature crossing a band, a nose or a brow, moves it little);
    the step is (near in − near out) − ((far in − near in) + (near out − far out)) / 2, zero
    for a linear shading ramp. Frames with an empty band are skipped; NaN when all are.
    """
    steps = []
    for frame, mask in zip(frames.astype(np.float32), masks > 0):
        bands = _bands(mask)
        if all(b.any() for b in bands):
            far_in, near_in, near_out, far_out = (np.median(frame[b], 0) for b in bands)
            step = (near_in - near_out) - ((far_in - near_in) + (near_out - far_out)) / 2
            steps.append(float(np.linalg.norm(step)))
    return float(np.mean(steps)) if steps else float("nan")


def fine_energy(frames: np.ndarray, masks: np.ndarray) -> float:
    """Mean over frames of log(high-pass energy in the far inside band / far outside band)."""
    ratios = []
    for frame, mask in zip(frames.astype(np.float32), masks > 0):
        far_in, _, _, far_out = _bands(mask)
        if not (far_in.any() and far_out.any()):
            continue
        grey = frame.mean(-1)
        high = (grey - ndimage.gaussian_filter(grey, 1.0)) ** 2
        ratios.append(float(np.log((high[far_in].mean() + 1e-3) / (high[far_out].mean() + 1e-3))))
    return float(np.mean(ratios)) if ratios else float("nan")


def separability(real: list[float], fake: list[float]) -> float:
    """ROC AUC of fakes vs reals by the statistic, folded to ≥ 0.5 (a trace may raise or lower
    it: NT's grain adds high-pass energy, F2F's resampling removes sensor noise)."""
    auc = float(roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake]))
    return max(auc, 1.0 - auc)
