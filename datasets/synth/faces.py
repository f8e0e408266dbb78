"""Procedural face identities, their motion, and a vectorised NumPy renderer.

Nothing here is downloaded: an identity is a handful of numbers drawn from a seeded RNG
(face shape, skin tone, eyes, brows, nose, mouth, hair, skin texture, background), and a
frame is drawn analytically from the identity and a per-frame pose. The drawing follows the
recipe MTCNN accepts (see ENVIRONMENT.md, "Faces without downloads"): a shaded skin-toned
ellipse with mild texture, dark almond eyes without white sclera, brows, a nose wedge and,
above all, a mouth.

Everything is expressed in *face coordinates* ``(u, v)``: the pixel grid rotated and scaled
into the face's frame, where the face ellipse is the unit circle and ``v`` points down.
Manipulations reuse these coordinates to place masks and to re-render one identity's face
at another identity's pose (an identity swap is just a hybrid identity drawn at the
target's pose).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

# Camera sensor noise (std, in 0..255 levels) added to every real frame. Fixed for all
# identities so that noise level is never an identity cue; manipulations that re-render
# pixels remove or change it, which is part of what a detector can learn.
SENSOR_NOISE_STD = 2.0


@dataclass(frozen=True)
class Identity:
    """One synthetic person: shape, colours and features (face-coordinate units)."""

    ax: float  # horizontal face semi-axis, as a fraction of the frame size
    ay_ratio: float  # vertical semi-axis / horizontal semi-axis
    jaw: float  # narrowing of the lower face (0 = ellipse)
    skin: tuple[float, float, float]
    eye_x: float
    eye_y: float
    eye_w: float
    eye_h: float
    eye_color: tuple[float, float, float]
    brow_gap: float
    brow_t: float
    brow_tilt: float
    nose_top: float
    nose_bottom: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    mouth_h: float
    lip_color: tuple[float, float, float]
    hair_line: float
    hair_color: tuple[float, float, float]
    texture: tuple[tuple[float, float, float, float], ...]  # (fu, fv, phase, amplitude) sinusoids
    bg_a: tuple[float, float, float]
    bg_b: tuple[float, float, float]
    bg_angle: float
    bg_blobs: tuple[tuple[float, float, float, float, float, float], ...]  # x, y, r, rgb

    def swapped_with(self, source: Identity, skin_mix: float = 1.0) -> Identity:
        """This face's outline and place with ``source``'s inner face (eyes, brows, nose,
        mouth, skin texture); skin colour moves from ours to the source's by ``skin_mix``.

        This is what an identity-swap generator aims to produce: the target's head and
        pose with the source's facial identity.
        """
        skin = tuple(float((1 - skin_mix) * a + skin_mix * b) for a, b in zip(self.skin, source.skin))
        return replace(
            self,
            skin=skin,  # type: ignore[arg-type]
            eye_x=source.eye_x,
            eye_y=source.eye_y,
            eye_w=source.eye_w,
            eye_h=source.eye_h,
            eye_color=source.eye_color,
            brow_gap=source.brow_gap,
            brow_t=source.brow_t,
            brow_tilt=source.brow_tilt,
            nose_top=source.nose_top,
            nose_bottom=source.nose_bottom,
            nose_w=source.nose_w,
            mouth_y=source.mouth_y,
            mouth_w=source.mouth_w,
            mouth_h=source.mouth_h,
            lip_color=source.lip_color,
            texture=source.texture,
        )


@dataclass(frozen=True)
class Pose:
    """Where and how the face appears in one frame."""

    cx: float  # face centre, fraction of frame width
    cy: float  # face centre, fraction of frame height
    angle: float  # in-plane rotation, radians
    scale: float
    eye_open: float  # 1 = open, ~0.1 = closed (blink)
    mouth_open: float  # 0 = closed .. 1 = wide open
    light_x: float  # light direction (towards the viewer is +z)
    light_y: float
    gain: float  # global brightness factor (lighting change)


def _color(rng: np.random.Generator, base: np.ndarray, jitter: float) -> tuple[float, float, float]:
    c = np.clip(base + rng.normal(0.0, jitter, 3), 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw one identity. Ranges keep every feature inside the face and MTCNN-friendly."""
    # skin tones from dark to light along a warm axis, with a little hue jitter
    t = rng.uniform(0.0, 1.0)
    skin = (1 - t) * np.array([95.0, 62.0, 45.0]) + t * np.array([236.0, 198.0, 172.0])
    skin_c = _color(rng, skin, 6.0)
    dark = rng.uniform(18, 50)
    eye_color = _color(rng, np.array([dark * 1.1, dark * 0.85, dark * 0.7]), 3.0)
    hair_v = rng.uniform(15, 120)
    hair_color = _color(rng, np.array([hair_v * 1.0, hair_v * 0.8, hair_v * 0.6]), 5.0)
    lip = np.array(skin_c) * rng.uniform(0.45, 0.6) + np.array([30.0, -4.0, -4.0])
    lip_c = _color(rng, lip, 4.0)
    texture = tuple(
        (
            float(rng.uniform(4, 14) * rng.choice([-1, 1])),
            float(rng.uniform(4, 14)),
            float(rng.uniform(0, 2 * np.pi)),
            float(rng.uniform(0.6, 1.6)),
        )
        for _ in range(6)
    )
    blobs = tuple(
        (
            float(rng.uniform(0, 1)),
            float(rng.uniform(0, 1)),
            float(rng.uniform(0.1, 0.3)),
            *_color(rng, rng.uniform(40, 220, 3), 0.0),
        )
        for _ in range(3)
    )
    ax = float(rng.uniform(0.2, 0.25))
    return Identity(
        ax=ax,
        ay_ratio=float(rng.uniform(1.2, 1.38)),
        jaw=float(rng.uniform(0.08, 0.3)),
        skin=skin_c,
        eye_x=float(rng.uniform(0.33, 0.41)),
        eye_y=float(rng.uniform(-0.16, -0.06)),
        eye_w=float(rng.uniform(0.13, 0.17)),
        eye_h=float(rng.uniform(0.055, 0.08)),
        eye_color=eye_color,
        brow_gap=float(rng.uniform(0.12, 0.17)),
        brow_t=float(rng.uniform(0.03, 0.055)),
        brow_tilt=float(rng.uniform(-0.08, 0.08)),
        nose_top=float(rng.uniform(-0.02, 0.06)),
        nose_bottom=float(rng.uniform(0.25, 0.33)),
        nose_w=float(rng.uniform(0.08, 0.12)),
        mouth_y=float(rng.uniform(0.47, 0.56)),
        mouth_w=float(rng.uniform(0.24, 0.32)),
        mouth_h=float(rng.uniform(0.045, 0.07)),
        lip_color=lip_c,
        hair_line=float(rng.uniform(-0.62, -0.45)),
        hair_color=hair_color,
        texture=texture,
        bg_a=_color(rng, rng.uniform(30, 230, 3), 0.0),
        bg_b=_color(rng, rng.uniform(30, 230, 3), 0.0),
        bg_angle=float(rng.uniform(0, 2 * np.pi)),
        bg_blobs=blobs,
    )


@dataclass(frozen=True)
class Motion:
    """Per-frame pose parameters of one video (arrays of length ``n_frames``)."""

    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    eye_open: np.ndarray
    mouth_open: np.ndarray
    light_x: np.ndarray
    light_y: np.ndarray
    gain: np.ndarray

    def __len__(self) -> int:
        return len(self.cx)

    def pose(self, t: int) -> Pose:
        return Pose(
            cx=float(self.cx[t]),
            cy=float(self.cy[t]),
            angle=float(self.angle[t]),
            scale=float(self.scale[t]),
            eye_open=float(self.eye_open[t]),
            mouth_open=float(self.mouth_open[t]),
            light_x=float(self.light_x[t]),
            light_y=float(self.light_y[t]),
            gain=float(self.gain[t]),
        )


def _smooth_wave(rng: np.random.Generator, t: np.ndarray, n_terms: int = 3) -> np.ndarray:
    """A smooth random signal in about [-1, 1]: a few sinusoids of random period and phase."""
    out = np.zeros_like(t)
    for _ in range(n_terms):
        period = rng.uniform(0.6, 2.5)  # in units of the whole video
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return out / n_terms


def random_motion(rng: np.random.Generator, n_frames: int) -> Motion:
    """Head drift, small rotation and zoom, blinks, talking mouth and a lighting change."""
    t = np.linspace(0.0, 1.0, n_frames)
    cx0, cy0 = rng.uniform(0.45, 0.55), rng.uniform(0.47, 0.54)
    drift = rng.uniform(-0.04, 0.04, 2)
    cx = cx0 + drift[0] * (t - 0.5) + 0.015 * _smooth_wave(rng, t)
    cy = cy0 + drift[1] * (t - 0.5) + 0.012 * _smooth_wave(rng, t)
    angle = np.deg2rad(rng.uniform(-4, 4) + 5.0 * _smooth_wave(rng, t))
    scale = rng.uniform(0.95, 1.05) * (1 + 0.04 * _smooth_wave(rng, t))
    eye_open = np.ones(n_frames)
    # blinks: a short dip of the eye height, about one per 12 frames
    for _ in range(max(1, n_frames // 12)):
        at = rng.integers(0, n_frames)
        for k, level in ((-1, 0.55), (0, 0.12), (1, 0.55)):
            if 0 <= at + k < n_frames:
                eye_open[at + k] = min(eye_open[at + k], level)
    mouth_open = np.clip(0.45 + 0.55 * _smooth_wave(rng, t * rng.uniform(2, 4)), 0.0, 1.0)
    light_angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-0.8, 0.8) * t
    light_strength = rng.uniform(0.25, 0.5)
    gain = rng.uniform(0.92, 1.05) + rng.uniform(-0.08, 0.08) * t
    return Motion(
        cx=cx,
        cy=cy,
        angle=angle,
        scale=scale,
        eye_open=eye_open,
        mouth_open=mouth_open,
        light_x=light_strength * np.cos(light_angle),
        light_y=light_strength * np.sin(light_angle),
        gain=gain,
    )


@dataclass(frozen=True)
class FaceCoords:
    """Face coordinates of every pixel of one frame."""

    u: np.ndarray  # (H, W)
    v: np.ndarray
    px: float  # one pixel, in face units (for anti-aliased edges)
    a_px: float  # horizontal semi-axis in pixels
    b_px: float  # vertical semi-axis in pixels


def face_coords(
    identity: Identity, pose: Pose, size: int, window: tuple[int, int, int, int] | None = None
) -> FaceCoords:
    """Face coordinates of every pixel, or of the pixels in ``window`` = (row0, row1, col0, col1)."""
    r0, r1, c0, c1 = window if window is not None else (0, size, 0, size)
    ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float32) + 0.5
    a = identity.ax * pose.scale * size
    b = a * identity.ay_ratio
    dx, dy = xs - pose.cx * size, ys - pose.cy * size
    c, s = np.cos(pose.angle), np.sin(pose.angle)
    xr = c * dx + s * dy
    yr = -s * dx + c * dy
    return FaceCoords(u=xr / a, v=yr / b, px=float(1.0 / min(a, b)), a_px=float(a), b_px=float(b))


def face_box(identity: Identity, pose: Pose, size: int) -> tuple[float, float, float, float]:
    """The generator's own face box (x1, y1, x2, y2) in pixels: brows to chin, cheek to cheek.

    An axis-aligned box around the rotated face ellipse; close to what MTCNN reports.
    """
    a = identity.ax * pose.scale * size
    b = a * identity.ay_ratio
    c, s = abs(np.cos(pose.angle)), abs(np.sin(pose.angle))
    half_w = np.hypot(a * c, b * s)
    half_h = np.hypot(a * s, b * c)
    cx, cy = pose.cx * size, pose.cy * size
    return (float(cx - half_w), float(cy - half_h), float(cx + half_w), float(cy + half_h))


def _edge(f: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased coverage of the region ``f < 0`` (``f`` ~ signed distance in face units)."""
    return np.clip(0.5 - f / (1.25 * px), 0.0, 1.0)


def _over(img: np.ndarray, alpha: np.ndarray, color: np.ndarray | tuple[float, ...]) -> None:
    """Composite ``color`` (RGB or per-pixel (H, W, 3)) over ``img`` in place."""
    col = np.asarray(color, dtype=np.float32)
    img += alpha[..., None] * (col - img)


def face_region(identity: Identity, coords: FaceCoords) -> np.ndarray:
    """Coverage (H, W) of the face ellipse (with its narrower jaw)."""
    u, v = coords.u, coords.v
    u_eff = u / (1.0 - identity.jaw * np.clip(v, 0.0, 1.0) ** 2)
    return _edge(np.sqrt(u_eff**2 + v**2) - 1.0, coords.px)


def render_background(identity: Identity, size: int) -> np.ndarray:
    """The identity's static backdrop: a two-colour gradient with a few blurred blobs."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    g = np.clip(0.5 + (np.cos(identity.bg_angle) * (xs - 0.5) + np.sin(identity.bg_angle) * (ys - 0.5)), 0, 1)
    img = (1 - g)[..., None] * np.array(identity.bg_a, np.float32) + g[..., None] * np.array(
        identity.bg_b, np.float32
    )
    for x, y, r, *rgb in identity.bg_blobs:
        d = np.sqrt((xs - x) ** 2 + (ys - y) ** 2)
        alpha = 0.6 * np.clip(1 - d / r, 0, 1) ** 1.5
        _over(img, alpha.astype(np.float32), rgb)
    return img


def render_face(
    identity: Identity,
    pose: Pose,
    size: int,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """Draw one clean frame (float32 (H, W, 3), 0..255, no sensor noise)."""
    frame = (
        (render_background(identity, size) if background is None else background).astype(np.float32).copy()
    )
    # Only the window around the head (down to the frame's bottom edge, for the neck) can
    # change, so the features are drawn on that view alone: about half the pixels.
    x1, y1, x2, y2 = face_box(identity, pose, size)
    margin = 0.2 * (x2 - x1)
    window = (
        max(0, int(np.floor(y1 - margin))),
        size,
        max(0, int(np.floor(x1 - margin))),
        min(size, int(np.ceil(x2 + margin))),
    )
    img = frame[window[0] : window[1], window[2] : window[3]]  # a view: drawing edits `frame`
    co = face_coords(identity, pose, size, window)
    u, v, px = co.u, co.v, co.px
    skin = np.array(identity.skin, np.float32)

    # neck (behind the face), slightly shaded
    neck = _edge(np.maximum(np.abs(u) - 0.55, 0.5 - v), px) * (v < 3.5)
    _over(img, neck, skin * 0.78)
    # hair behind the head: an enlarged ellipse, upper part only
    hair_back = _edge(np.sqrt((u / 1.1) ** 2 + ((v + 0.08) / 1.12) ** 2) - 1.0, px) * _edge(v - 0.05, px)
    _over(img, hair_back, identity.hair_color)

    face = face_region(identity, co)
    # Lambert shading on a sphere-like surface, light direction varies per frame
    r2 = np.clip(u**2 + v**2, 0.0, 1.0)
    nz = np.sqrt(1.0 - r2)
    lx, ly = pose.light_x, pose.light_y
    lz = np.sqrt(max(1e-3, 1.0 - lx * lx - ly * ly))
    shade = 0.62 + 0.42 * np.clip(u * lx + v * ly + nz * lz, 0.0, 1.0)
    tex = np.zeros_like(u)
    for fu, fv, ph, amp in identity.texture:
        tex += amp * np.sin(fu * u + fv * v + ph)
    skin_px = skin[None, None, :] * shade[..., None] + tex[..., None]
    _over(img, face, skin_px)

    # fringe: hair over the forehead above a wavy hair line
    fringe = face * _edge(v - (identity.hair_line + 0.05 * np.cos(4.0 * u)), px)
    _over(img, fringe, identity.hair_color)

    # brows: thick arcs over each eye
    for side in (-1.0, 1.0):
        du = u - side * identity.eye_x
        arch = (
            identity.eye_y
            - identity.brow_gap
            - 0.05 * (1 - (du / identity.eye_w) ** 2)
            + side * identity.brow_tilt * du
        )
        f = np.maximum(np.abs(v - arch) - identity.brow_t, np.abs(du) - identity.eye_w * 1.1)
        _over(img, _edge(f, px), identity.hair_color)

    # eyes: dark almonds (no white sclera), height follows blinks
    eh = identity.eye_h * max(pose.eye_open, 0.08)
    for side in (-1.0, 1.0):
        du = (u - side * identity.eye_x) / identity.eye_w
        dv = v - identity.eye_y
        half_h = eh * np.clip(1 - du**2, 0.0, 1.0)
        f = np.maximum(np.abs(dv) - half_h, (np.abs(du) - 1.0) * identity.eye_w)
        _over(img, _edge(f, px), identity.eye_color)
        # a darker lid crease above the eye makes it read as an eye even mid-blink
        crease = np.maximum(np.abs(dv + half_h + 0.018) - 0.01, (np.abs(du) - 0.9) * identity.eye_w)
        _over(img, 0.6 * _edge(crease, px), np.array(identity.eye_color) * 0.9)

    # nose: a wedge darker on the side away from the light, and two nostrils
    h = identity.nose_bottom - identity.nose_top
    frac = np.clip((v - identity.nose_top) / h, 0, 1)
    wedge = np.maximum(
        np.maximum(np.abs(u) - identity.nose_w * frac, identity.nose_top - v), v - identity.nose_bottom
    )
    side_dark = np.where(u * lx < 0, 0.72, 0.86).astype(np.float32)
    _over(img, 0.8 * _edge(wedge, px), skin[None, None, :] * (side_dark * shade)[..., None])
    for side in (-1.0, 1.0):
        f = (
            np.sqrt(
                ((u - side * identity.nose_w * 0.55) / 0.045) ** 2 + ((v - identity.nose_bottom) / 0.022) ** 2
            )
            - 1
        )
        _over(img, 0.85 * _edge(f * 0.022, px), skin * 0.35)

    # mouth: lips, and a dark opening that follows the talking motion
    mw, mh = identity.mouth_w, identity.mouth_h
    opening = 0.065 * pose.mouth_open
    du = u / mw
    dv = v - identity.mouth_y
    lip_half = (mh + opening) * np.clip(1 - du**2, 0, 1) ** 0.7
    f = np.maximum(np.abs(dv) - lip_half, (np.abs(du) - 1) * mw)
    _over(img, _edge(f, px), identity.lip_color)
    inner_half = np.maximum(opening * 0.8, 0.012) * np.clip(1 - (du / 0.85) ** 2, 0, 1) ** 0.7
    f_in = np.maximum(np.abs(dv) - inner_half, (np.abs(du) - 0.85) * mw)
    _over(img, _edge(f_in, px), np.array([45.0, 18.0, 20.0]))

    frame *= pose.gain
    return frame


def sensor_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Per-frame camera noise, slightly spatially correlated like a demosaiced sensor."""
    n = rng.normal(0.0, 1.0, (size, size, 3)).astype(np.float32)
    n = ndimage.gaussian_filter(n, sigma=(0.5, 0.5, 0))
    return n * (SENSOR_NOISE_STD / float(n.std() + 1e-6))


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_video(
    identity: Identity, motion: Motion, size: int, noise_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The identity's real video: (frames float32 (T, H, W, 3) clean + noise, noise (T, H, W, 3)).

    The noise is returned too so that manipulations can keep the target's exact sensor
    noise outside the region they change.
    """
    bg = render_background(identity, size)
    frames = np.empty((len(motion), size, size, 3), np.float32)
    noise = np.empty_like(frames)
    for t in range(len(motion)):
        noise[t] = sensor_noise(noise_rng, size)
        frames[t] = render_face(identity, motion.pose(t), size, background=bg) + noise[t]
    return frames, noise
