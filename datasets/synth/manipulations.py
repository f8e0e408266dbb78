"""Five manipulation families analogous to FaceForensics++'s, each with a ground-truth mask.

Every family changes the target's real frames only inside a soft blending weight
``alpha`` (quantised to 1/255 steps); the ground-truth mask is ``alpha > 0``. Outside the
mask the fake's pixels therefore equal the target's real pixels exactly (before lossy
encoding), as in FF++ where fakes are composited into the original frames.

The artifact each family leaves (what a detector can learn) is chosen to behave like the
real method's, not to imitate its pixels:

- Deepfakes: identity swap re-synthesised at low resolution and up-sampled (up-sampling
  fingerprint, no sensor noise), source skin colour (colour mismatch), soft blend boundary.
- FaceSwap: the source's real face warped onto the target's face geometry with bilinear
  resampling, colour transfer, an almost hard mask edge.
- Face2Face: the target's own face with its eyes and mouth re-posed to the source's
  expression by a smooth warp (bilinear resampling traces, no identity change); the
  re-posed regions are rendered at 1/1.6 of the frame's resolution, lit a few levels off
  the frame and end at a narrow blend edge (coarse: the transfer boundary).
- NeuralTextures: the mouth and lower-face texture re-rendered: same geometry, but the
  camera noise is replaced by the renderer's fine grain (fine: c23 weakens it, heavy
  compression removes it, the "cross-quality collapse" the seed papers study), the texture has half the
  frame's resolution and the region's shading/colour is a few levels off, a seam along
  its outline (coarse: crf 40 weakens them but keeps them).
- FaceShifter: high-quality swap with matched colour, fresh sensor noise, wide feathered
  blend and a faint periodic generator fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from dfbench.datasets.synth.faces import (
    FaceCoords,
    Identity,
    Motion,
    Pose,
    face_coords,
    render_background,
    render_face,
    sensor_noise,
    to_uint8,
)

METHODS: tuple[str, ...] = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")

# Artifact strengths, kept in one place so the validity benchmark can be tuned against them.
DF_DOWNSCALE = 3.0  # Deepfakes decoder resolution = frame / this
DF_COLOR_JITTER = 5.0  # extra per-video colour offset of the swapped face (levels)
# NeuralTextures: the re-rendered lower face carries a fine random "render grain" instead of
# the camera's noise. A sinusoidal texture pattern (amplitude 6-12, period 4-8 px) was not
# learned by a small CNN from scratch in 10 epochs at any quality, and blurring the region
# was learned at every quality (softer lip edges survive crf 40). Grain of std 12 is learned
# at raw and c23 (AUC 1.0) and is washed out by crf 40 (AUC ~0.5): measured with
# benchmarks/synth_validity.py-style runs, 48 train / 16 test pairs, seeds 0 and 1.
# Generator version 4 lowers it to std 8: at std 12 crf 23 kept the grain whole, so a c23-trained
# ERM relied on it alone and collapsed at c40 like a raw-trained one (c23 -> c40 0.451 vs raw ->
# c40 0.444, mini, 3 seeds), whereas real c23 already weakens NT's fine trace (two_gen_bat Table
# II, ERM: raw -> c23 66.35, c23 -> c40 69.40). Mini, ERM, 3 seeds, video AUC, raw -> c40 /
# c23 -> c40 / c40 -> c40: std 8: 0.448 / 0.491 / 0.866; std 6: 0.646 / 0.737 / 0.813, but at
# std 6 the c23 model learned the half-resolution render instead of the grain and transferred
# to Deepfakes' (x3) and Face2Face's re-rendering whole (NT c23 -> DF 0.999, -> F2F 0.901;
# real FF++: 83.75 and 61.15), so std 8 it is (NT c23 -> DF 0.444).
NT_GRAIN_STD = 8.0  # levels (0..255)
NT_GRAIN_SIGMA = 0.5  # spatial correlation of the grain (pixels)
NT_REGION = (0.54, 0.43)  # half-width added to the mouth width, half-height (face units)
FSH_FINGERPRINT_AMPLITUDE = 1.2  # FaceShifter generator fingerprint (levels)
FSH_FINGERPRINT_PERIOD = 8.0
# Coarse traces (generator version 3): beside the fine grain, the re-rendered region of NT
# and F2F is off in shading/colour by a few levels (a step along the blend seam tens of
# pixels long), and NT's texture is rendered at half resolution (softened lip and mouth
# edges, a 2-6 px scale). H.264 at crf 40 weakens such traces but keeps them. Chosen from
# ERM/data properties only: an NT shading offset alone of norm 6, 12 or 18 levels was not
# learned at c40 (synth_validity-style in-memory ERM, 6 epochs, c40 -> c40 video AUC 0.50,
# 0.50, 0.52), so the half-resolution render was added (docs/synthetic.md).
NT_SHADE_SHIFT = 10.0  # NT: colour/shading offset of the re-rendered lower face
NT_DOWNSCALE = 2.0  # NT: the neural texture is rendered at frame / this and up-sampled
F2F_SHADE_SHIFT = 12.0  # F2F: illumination mismatch of the re-rendered mouth and eyes
# Generator version 4: Face2Face's re-rendered regions end at a blend edge (the weight is cut
# at this level of the smooth eye/mouth weights and feathered by 1.2 px, like NT's) and are
# rendered from the face model at frame / F2F_DOWNSCALE. Version 3's smooth weight and full-
# resolution warp were not learned even at c23 (ERM c23 -> c23 0.512, mini, 3 seeds); the cut
# edge alone neither (0.540); with the 1.6x render: 0.984 at c23, 0.824 at c40 (seed 0).
F2F_REGION_LEVEL = 0.3
F2F_DOWNSCALE = 1.6


@dataclass
class PairVideos:
    """Everything a manipulation needs about one (target, source) pair."""

    size: int
    target: Identity
    target_motion: Motion
    target_frames: np.ndarray  # float32 (T, H, W, 3): the target's real video (with noise)
    target_noise: np.ndarray  # the sensor noise in it (target_frames - target_noise = clean render)
    source: Identity
    source_motion: Motion
    source_frames: np.ndarray
    rng: np.random.Generator  # this fake video's own stream


Manipulation = Callable[[PairVideos], tuple[np.ndarray, np.ndarray]]


def _quantise(alpha: np.ndarray) -> np.ndarray:
    """Round to 1/255 so that ``alpha == 0`` exactly where the mask is empty."""
    return (np.rint(np.clip(alpha, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def _composite(real: np.ndarray, content: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alpha = _quantise(alpha)
    fake = real + alpha[..., None] * (content - real)
    return to_uint8(fake), (alpha > 0).astype(np.uint8) * 255


def shade_offset(rng: np.random.Generator, norm: float) -> np.ndarray:
    """A per-video RGB offset of the given norm: mostly brightness (the renderer's shading
    estimate is off), partly colour (its albedo is off), sign and hue drawn at random."""
    direction = np.array([1.0, 1.0, 1.0]) * rng.choice([-1.0, 1.0]) + rng.normal(0.0, 0.5, 3)
    return (norm * direction / np.linalg.norm(direction)).astype(np.float32)


def _ellipse(co: FaceCoords, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    """Hard 0/1 ellipse in face coordinates."""
    return ((((co.u - cu) / ru) ** 2 + ((co.v - cv) / rv) ** 2) < 1.0).astype(np.float32)


def _face_to_pixels(pose: Pose, identity: Identity, size: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixel (row, col) sampling coordinates of face-coordinate points (inverse of face_coords)."""
    a = identity.ax * pose.scale * size
    b = a * identity.ay_ratio
    xr, yr = u * a, v * b
    c, s = np.cos(pose.angle), np.sin(pose.angle)
    x = pose.cx * size + c * xr - s * yr - 0.5
    y = pose.cy * size + s * xr + c * yr - 0.5
    return np.stack([y, x])


def _sample(img: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear resampling of an (H, W, 3) image at (2, H, W) pixel coordinates."""
    return np.stack(
        [ndimage.map_coordinates(img[..., ch], coords, order=1, mode="nearest") for ch in range(3)], axis=-1
    )


def _resize(img: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.fromarray(img[..., ch], mode="F").resize(size, resample)) for ch in range(3)],
        axis=-1,
    )


def deepfakes(p: PairVideos) -> tuple[np.ndarray, np.ndarray]:
    hybrid = p.target.swapped_with(p.source, skin_mix=0.5)  # half-corrected colour
    offset = p.rng.normal(0.0, DF_COLOR_JITTER, 3).astype(np.float32)
    bg = render_background(p.target, p.size)
    low = max(8, int(round(p.size / DF_DOWNSCALE)))
    fakes, masks = [], []
    for t in range(len(p.target_motion)):
        pose = p.target_motion.pose(t)
        swapped = render_face(hybrid, pose, p.size, background=bg) + offset
        # the autoencoder works at low resolution; its output is up-sampled into the frame
        small = _resize(swapped, (low, low), Image.Resampling.BOX)
        swapped = _resize(small, (p.size, p.size), Image.Resampling.BILINEAR)
        co = face_coords(p.target, pose, p.size)
        alpha = ndimage.gaussian_filter(_ellipse(co, 0.0, 0.02, 0.86, 0.9), sigma=0.06 * co.a_px)
        f, m = _composite(p.target_frames[t], swapped, alpha)
        fakes.append(f)
        masks.append(m)
    return np.stack(fakes), np.stack(masks)


def faceswap(p: PairVideos) -> tuple[np.ndarray, np.ndarray]:
    fakes, masks = [], []
    for t in range(len(p.target_motion)):
        pose_t, pose_s = p.target_motion.pose(t), p.source_motion.pose(t)
        co = face_coords(p.target, pose_t, p.size)
        # fit the source face onto the target's face geometry (a landmark-driven warp)
        warped = _sample(p.source_frames[t], _face_to_pixels(pose_s, p.source, p.size, co.u, co.v))
        region = _ellipse(co, 0.0, 0.1, 0.8, 0.78)
        alpha = ndimage.gaussian_filter(region, sigma=0.6)  # graphics blend: nearly hard edge
        inside = region > 0
        if inside.sum() > 16:
            # colour transfer: match the warped face's per-channel mean/std to the target's
            src, dst = warped[inside], p.target_frames[t][inside]
            warped = (warped - src.mean(0)) / (src.std(0) + 1e-3) * dst.std(0) + dst.mean(0)
        f, m = _composite(p.target_frames[t], warped, alpha)
        fakes.append(f)
        masks.append(m)
    return np.stack(fakes), np.stack(masks)


def face2face(p: PairVideos) -> tuple[np.ndarray, np.ndarray]:
    tgt = p.target
    # a per-video sub-pixel expression offset so every frame is resampled, as a re-rendered
    # expression would be even when the source's expression matches the target's
    base_lift = p.rng.uniform(0.01, 0.02) * p.rng.choice([-1.0, 1.0])
    # coarse trace: the re-rendered mouth and eyes are lit by the estimated illumination,
    # which is a few levels off the real frame's (a shading step along the transfer boundary)
    shade = shade_offset(np.random.default_rng(p.rng.integers(2**63)), F2F_SHADE_SHIFT)
    low = max(8, int(round(p.size / F2F_DOWNSCALE)))
    fakes, masks = [], []
    for t in range(len(p.target_motion)):
        pose_t = p.target_motion.pose(t)
        co = face_coords(tgt, pose_t, p.size)
        u, v = co.u, co.v
        w_mouth = np.exp(-((u / 0.42) ** 2 + ((v - tgt.mouth_y) / 0.2) ** 2))
        w_eyes = sum(
            np.exp(-(((u - side * tgt.eye_x) / 0.22) ** 2 + ((v - tgt.eye_y) / 0.14) ** 2))
            for side in (-1.0, 1.0)
        )
        # mouth: stretch vertically about its centre towards the source's mouth opening;
        # eyes: lids follow the source's blinks. (face units; inverse map = where to sample)
        gain = float(
            np.clip(1.0 + 0.6 * (p.source_motion.mouth_open[t] - p.target_motion.mouth_open[t]), 0.6, 1.6)
        )
        dv_mouth = (v - tgt.mouth_y) * (1.0 - 1.0 / gain) + base_lift
        blink = p.source_motion.eye_open[t] - p.target_motion.eye_open[t]
        dv_eyes = -(v - tgt.eye_y) * 0.5 * blink + base_lift * 0.5
        v_src = v - w_mouth * dv_mouth - w_eyes * dv_eyes
        warped = _sample(p.target_frames[t], _face_to_pixels(pose_t, tgt, p.size, u, v_src)) + shade
        # coarse trace: the face model renders the re-posed regions with less resolution than
        # the frame (softened lid and lip edges, a few pixels wide), as NT's texture does
        warped = _resize(_resize(warped, (low, low), Image.Resampling.BOX), (p.size, p.size), Image.Resampling.BILINEAR)
        # the transfer boundary: the re-rendered regions end at an edge, feathered by ~1 px
        region = (np.maximum(w_mouth, w_eyes) > F2F_REGION_LEVEL).astype(np.float32)
        alpha = ndimage.gaussian_filter(region, sigma=1.2)
        f, m = _composite(p.target_frames[t], warped, alpha)
        fakes.append(f)
        masks.append(m)
    return np.stack(fakes), np.stack(masks)


def neuraltextures(p: PairVideos) -> tuple[np.ndarray, np.ndarray]:
    tgt = p.target
    shade = shade_offset(np.random.default_rng(p.rng.integers(2**63)), NT_SHADE_SHIFT)
    low = max(8, int(round(p.size / NT_DOWNSCALE)))
    fakes, masks = [], []
    for t in range(len(p.target_motion)):
        pose_t = p.target_motion.pose(t)
        co = face_coords(tgt, pose_t, p.size)
        # the re-rendered region: mouth, lips and the surrounding lower face (like NT's masks)
        region = _ellipse(co, 0.0, tgt.mouth_y - 0.04, tgt.mouth_w + NT_REGION[0], NT_REGION[1])
        alpha = ndimage.gaussian_filter(region, sigma=1.2)
        real = p.target_frames[t]
        # the neural renderer reproduces the region's geometry and shading but not the camera
        # noise: its output carries its own fine grain, which lives at the highest frequencies
        # and is discarded by heavy compression
        clean = real - p.target_noise[t]
        # coarse trace: the neural texture has less resolution than the frame, so the region's
        # edges (lips, mouth opening) are softened at a scale of a few pixels, which crf 40 keeps
        clean = _resize(_resize(clean, (low, low), Image.Resampling.BOX), (p.size, p.size), Image.Resampling.BILINEAR)
        grain = ndimage.gaussian_filter(p.rng.normal(0.0, 1.0, real.shape[:2]).astype(np.float32), NT_GRAIN_SIGMA)
        grain *= NT_GRAIN_STD / float(grain.std() + 1e-6)
        # coarse trace: the renderer's shading/colour of the region is off by a few levels,
        # which the narrow blend turns into a seam along the region's outline
        f, m = _composite(real, clean + grain[..., None] + shade, alpha)
        fakes.append(f)
        masks.append(m)
    return np.stack(fakes), np.stack(masks)


def faceshifter(p: PairVideos) -> tuple[np.ndarray, np.ndarray]:
    hybrid = p.target.swapped_with(p.source, skin_mix=0.3)  # adaptive blending matches colour
    bg = render_background(p.target, p.size)
    ys, xs = np.mgrid[0 : p.size, 0 : p.size].astype(np.float32)
    k = 2 * np.pi / FSH_FINGERPRINT_PERIOD
    fingerprint = FSH_FINGERPRINT_AMPLITUDE * np.cos(k * xs) * np.cos(k * ys)
    fakes, masks = [], []
    for t in range(len(p.target_motion)):
        pose = p.target_motion.pose(t)
        content = render_face(hybrid, pose, p.size, background=bg)
        content += 0.8 * sensor_noise(p.rng, p.size)  # the generator's noise is a little weaker
        content += fingerprint[..., None]
        co = face_coords(p.target, pose, p.size)
        alpha = ndimage.gaussian_filter(_ellipse(co, 0.0, 0.02, 0.84, 0.88), sigma=0.12 * co.a_px)
        f, m = _composite(p.target_frames[t], content, alpha)
        fakes.append(f)
        masks.append(m)
    return np.stack(fakes), np.stack(masks)


MANIPULATIONS: dict[str, Manipulation] = {
    "Deepfakes": deepfakes,
    "Face2Face": face2face,
    "FaceSwap": faceswap,
    "NeuralTextures": neuraltextures,
    "FaceShifter": faceshifter,
}
