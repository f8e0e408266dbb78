"""Bi-granularity artifact masks and the BiG-Arts forgery-face augmentation.

Chen et al., "Watching the BiG artifacts: Exposing DeepFake videos via Bi-granularity
artifacts", Pattern Recognition 2023 (``/work/shared/seeds/big_arts--*.txt``).

Section 3.1 defines two binary masks for a fake crop x' and its pixel-aligned real crop x:

  M_In = Convex(p_in > γ),  p_in = |x' − x|         intrinsic-granularity artifacts
  M_Ex = D(M_In) − E(M_In)                           extrinsic-granularity artifacts (boundary)

For a real image both masks are empty. Section 3.3 adds two synthetic forgeries blended as
M̃ ⊙ A + (1 − M̃) ⊙ B into a landmark-matched real target B of another identity:

  (Real, Real)  M̃ = T(Convex(landmarks of A))           M_In = 0, M_Ex = boundary of M̃
  (Fake, Real)  M̃ = M' ⊙ T(M''), M' = expanded |A − A_real|, M'' = landmark hull of A
                                                         M_In = M̃, M_Ex = boundary of M̃

T is a random 2-D piecewise-affine distortion. Choices where the paper is silent are
marked "choice:" and listed in docs/recipes/big_arts.md.

Only numpy, scipy and PIL are used (scikit-image is a test-only dependency).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from dfbench.benchmark.frames import FrameSet

# --------------------------------------------------------------------------- polygons


def hull_vertices(points: np.ndarray) -> np.ndarray:
    """Convex-hull vertices (K, 2) as (x, y) of a point set (M, 2); K < 3 when degenerate.

    An empty set gives (0, 2); one point or collinear points give the segment's end points.
    """
    pts = np.unique(np.asarray(points, dtype=np.float64).reshape(-1, 2), axis=0)
    if len(pts) < 3:
        return pts
    try:
        hull = ConvexHull(pts)
    except QhullError:  # all points on one line: the hull is the segment between the extremes
        order = np.lexsort((pts[:, 1], pts[:, 0]))
        return pts[[order[0], order[-1]]]
    return pts[hull.vertices]


def fill_polygon(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 {0, 1} mask (H, W) of a convex polygon given by (x, y) vertices at pixel centres.

    The boundary pixels are included, so the hull of a filled pixel square is that square.
    Fewer than three vertices draw a point or a segment.
    """
    h, w = shape
    canvas = Image.new("L", (w, h), 0)
    pts = [(float(x), float(y)) for x, y in np.asarray(vertices, dtype=np.float64).reshape(-1, 2)]
    if pts:
        draw = ImageDraw.Draw(canvas)
        if len(pts) == 1:
            draw.point(pts, fill=1)
        elif len(pts) == 2:
            draw.line(pts, fill=1, width=1)
        else:
            draw.polygon(pts, fill=1, outline=1)
    return np.asarray(canvas, dtype=np.uint8)


def binary_hull_vertices(binary: np.ndarray) -> np.ndarray:
    """Hull vertices of the True pixels of a 2-D boolean map.

    Only each row's leftmost and rightmost pixel can be a hull vertex, so the hull is taken
    over at most 2·H points instead of every pixel.
    """
    rows = np.flatnonzero(binary.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 2))
    sub = binary[rows]
    left = sub.argmax(axis=1)
    right = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    pts = np.concatenate([np.stack([left, rows], 1), np.stack([right, rows], 1)])
    return hull_vertices(pts)


# --------------------------------------------------------------------------- Section 3.1


def difference_map(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """p_in = |x' − x| per pixel, (H, W) int16 on the 0–255 scale.

    choice: the paper writes |x' − x| for colour images without naming a channel reduction;
    a pixel counts as changed when any colour channel changed, i.e. the maximum over channels.
    """
    diff = np.abs(fake.astype(np.int16) - real.astype(np.int16))
    return diff.max(axis=-1) if diff.ndim == 3 else diff


def intrinsic_vertices(fake: np.ndarray, real: np.ndarray, gamma: float, open_iterations: int = 1) -> np.ndarray:
    """Hull vertices of M_In = Convex(p_in > γ) (Section 3.1), (K, 2) as (x, y).

    choice: ``open_iterations`` rounds of a 3×3 binary opening remove isolated pixels that
    compression noise pushes over γ before the hull is taken (a convex hull is spanned by
    its outermost points, so one stray pixel would inflate it); 0 is the paper's bare form.
    """
    changed = difference_map(fake, real) > gamma
    if open_iterations > 0 and changed.any():
        changed = ndimage.binary_opening(changed, structure=np.ones((3, 3), bool), iterations=open_iterations)
    return binary_hull_vertices(changed)


def intrinsic_mask(fake: np.ndarray, real: np.ndarray, gamma: float, open_iterations: int = 1) -> np.ndarray:
    """M_In (H, W) uint8 {0, 1}: the convex hull of the pixels where the fake differs by more than γ."""
    return fill_polygon(intrinsic_vertices(fake, real, gamma, open_iterations), fake.shape[:2])


def extrinsic_mask(m_in: np.ndarray, radius: int) -> np.ndarray:
    """M_Ex = D(M_In) − E(M_In) (Section 3.1), uint8 {0, 1}.

    D and E use a (2r+1)×(2r+1) square, so the boundary band is 2r pixels wide: r outside
    and r inside the region. choice: the image border counts as continuing the mask
    (``mode="nearest"``), so a region touching the border gets no band along the border,
    where nothing was blended.
    """
    if radius < 1:
        raise ValueError(f"extrinsic band radius must be >= 1 pixel, got {radius}")
    m = np.asarray(m_in, dtype=np.uint8)
    size = 2 * radius + 1
    dilated = ndimage.maximum_filter(m, size=size, mode="nearest")
    eroded = ndimage.minimum_filter(m, size=size, mode="nearest")
    return (dilated - eroded).astype(np.uint8)


def band_radius(image_size: int, frac: float) -> int:
    """The dilation/erosion radius in pixels for a crop side: ``max(1, round(frac · side))``."""
    return max(1, int(round(frac * image_size)))


# --------------------------------------------------------------------------- landmark hulls


def face_hull_vertices(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """The face region from MTCNN's 5 landmarks: their hull scaled by ``scale`` about its centroid.

    choice: the paper takes the convex hull of Dlib's 68 landmarks, which reaches from the
    brows to the chin. MTCNN gives only eyes, nose tip and mouth corners (the inner face);
    scaling their hull by 2 about the landmarks' mean covers about the same area. Returns
    (0, 2) when a landmark is missing (NaN: no face in the frame).
    """
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if lm.size == 0 or not np.isfinite(lm).all():
        return np.zeros((0, 2))
    centre = lm.mean(axis=0)
    return hull_vertices(centre + scale * (lm - centre))


def face_hull_mask(landmarks: np.ndarray, shape: tuple[int, int], scale: float) -> np.ndarray:
    """uint8 {0, 1} mask of ``face_hull_vertices``."""
    return fill_polygon(face_hull_vertices(landmarks, scale), shape)


def piecewise_affine_distort(mask: np.ndarray, rng: np.random.Generator, grid: int, magnitude: float) -> np.ndarray:
    """T(M): a random 2-D piecewise-affine warp of a binary mask (Section 3.3).

    A (grid+1)×(grid+1) lattice of control points spans the image; each point moves by a
    uniform offset in ±magnitude·side. Every lattice cell is split into two triangles and
    the displacement is interpolated affinely inside each triangle, so the map is affine
    per triangle and continuous across them. The output samples the input at p + d(p)
    (nearest pixel; outside the image counts as 0).
    """
    h, w = mask.shape
    amp = magnitude * max(h, w)
    disp = rng.uniform(-amp, amp, size=(grid + 1, grid + 1, 2))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    gx = xs / max(w - 1, 1) * grid
    gy = ys / max(h - 1, 1) * grid
    cx = np.minimum(np.floor(gx).astype(int), grid - 1)
    cy = np.minimum(np.floor(gy).astype(int), grid - 1)
    u, v = gx - cx, gy - cy  # local coordinates in the cell, [0, 1]
    d00, d10 = disp[cy, cx], disp[cy, cx + 1]  # (row, col) lattice: d10 = one step in x
    d01, d11 = disp[cy + 1, cx], disp[cy + 1, cx + 1]
    lower = (u + v <= 1.0)[..., None]  # triangle (00, 10, 01) or (11, 01, 10)
    uu, vv = u[..., None], v[..., None]
    d_lower = d00 + uu * (d10 - d00) + vv * (d01 - d00)
    d_upper = d11 + (1 - uu) * (d01 - d11) + (1 - vv) * (d10 - d11)
    d = np.where(lower, d_lower, d_upper)
    sx = np.rint(xs + d[..., 0]).astype(int)
    sy = np.rint(ys + d[..., 1]).astype(int)
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    out = np.zeros_like(mask)
    out[inside] = mask[sy[inside], sx[inside]]
    return out


def blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """M̃ ⊙ A + (1 − M̃) ⊙ B with a binary mask (Section 3.3).

    choice: the paper's blending equation uses M̃ as it is (no feathering is mentioned), so
    the blend is a hard paste.
    """
    return np.where(mask[..., None].astype(bool), source, target)


# --------------------------------------------------------------------------- per-FrameSet cache


class ArtifactMaskCache:
    """M_In / M_Ex of every frame of one FrameSet, computed on first use and kept in memory.

    A fake's M_In comes from its ``paired_real`` extra (the crop cache keeps the pair pixel
    aligned); a real's masks are empty. Only the hull vertices are stored per frame (a
    few numbers), the masks are rasterised when asked for.
    """

    def __init__(self, frames: FrameSet, gamma: float, open_iterations: int) -> None:
        if "paired_real" not in frames.extras:
            raise ValueError("artifact masks need the FrameSet extra 'paired_real'")
        self._frames = weakref.ref(frames)
        self.gamma = gamma
        self.open_iterations = open_iterations
        self.shape = frames.images.shape[1:3]
        self._labels = frames.labels
        self._vertices: dict[int, np.ndarray] = {}

    def vertices(self, i: int) -> np.ndarray:
        i = int(i)
        if i not in self._vertices:
            if self._labels[i] == 0:
                self._vertices[i] = np.zeros((0, 2))
            else:
                frames = self._frames()
                if frames is None:
                    raise RuntimeError("the FrameSet of this mask cache no longer exists")
                self._vertices[i] = intrinsic_vertices(
                    np.asarray(frames.images[i]), np.asarray(frames.extras["paired_real"][i]), self.gamma, self.open_iterations
                )
        return self._vertices[i]

    def intrinsic(self, i: int) -> np.ndarray:
        return fill_polygon(self.vertices(i), self.shape)

    def masks(self, indices: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(M_In, M_Ex) for the given frames, each uint8 (B, H, W)."""
        m_in = np.stack([self.intrinsic(i) for i in indices]) if len(indices) else np.zeros((0, *self.shape), np.uint8)
        m_ex = np.stack([extrinsic_mask(m, radius) for m in m_in]) if len(m_in) else m_in.copy()
        return m_in, m_ex


_CACHES: weakref.WeakKeyDictionary[FrameSet, dict[tuple[float, int], ArtifactMaskCache]] = weakref.WeakKeyDictionary()


def artifact_masks(frames: FrameSet, gamma: float, open_iterations: int = 1) -> ArtifactMaskCache:
    """The (shared, lazily filled) mask cache of a FrameSet for these mask parameters."""
    per_frames = _CACHES.setdefault(frames, {})
    key = (float(gamma), int(open_iterations))
    if key not in per_frames:
        per_frames[key] = ArtifactMaskCache(frames, gamma, open_iterations)
    return per_frames[key]


# --------------------------------------------------------------------------- Section 3.3


def identity_keys(frames: FrameSet) -> np.ndarray:
    """One integer per frame naming the real video whose background the frame shows.

    A real frame belongs to its own video; a fake frame to the real video of its
    ``paired_real`` crop, found by content so that no loader naming convention is assumed.
    choice: the paper picks targets "of other identities"; a real video stands for one
    identity here (two videos of one person count as two).
    """

    def fingerprint(img: np.ndarray) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(np.asarray(img)[::4, ::4]).tobytes(), digest_size=16).digest()

    labels = frames.labels
    video_ids = frames.meta["video_id"].astype(str).to_numpy()
    codes = {v: k for k, v in enumerate(dict.fromkeys(video_ids))}
    keys = np.array([codes[v] for v in video_ids], dtype=np.int64)
    owner = {fingerprint(frames.images[i]): keys[i] for i in np.flatnonzero(labels == 0)}
    paired = frames.extras["paired_real"]
    for i in np.flatnonzero(labels == 1):
        keys[i] = owner.get(fingerprint(paired[i]), keys[i])
    return keys


@dataclass(frozen=True)
class Forgery:
    """One augmented training image (label 1) with its artifact masks."""

    image: np.ndarray  # uint8 (H, W, 3)
    m_in: np.ndarray  # uint8 (H, W) {0, 1}
    m_ex: np.ndarray  # uint8 (H, W) {0, 1}
    source: int  # frame index of A
    target: int  # frame index of B


class ForgeryAugmenter:
    """(Real, Real) and (Fake, Real) forgeries built from one training FrameSet (Section 3.3)."""

    def __init__(
        self,
        frames: FrameSet,
        *,
        gamma: float,
        open_iterations: int,
        band_frac: float,
        hull_scale: float,
        distort_grid: int,
        distort_magnitude: float,
        min_pixels: int = 16,
    ) -> None:
        missing = sorted({"paired_real", "landmarks"} - set(frames.extras))
        if missing:
            raise ValueError(f"forgery augmentation needs FrameSet extras {missing}")
        self.frames = frames
        self.masks = artifact_masks(frames, gamma, open_iterations)
        self.radius = band_radius(frames.image_size, band_frac)
        self.hull_scale = hull_scale
        self.distort_grid = distort_grid
        self.distort_magnitude = distort_magnitude
        self.min_pixels = min_pixels
        self.shape = frames.images.shape[1:3]
        labels = frames.labels
        self.landmarks = np.asarray(frames.extras["landmarks"], dtype=np.float64).reshape(len(frames), -1)
        finite = np.isfinite(self.landmarks).all(axis=1)
        self.identity = identity_keys(frames)
        self.real_pool = np.flatnonzero((labels == 0) & finite)
        self.fake_pool = np.flatnonzero((labels == 1) & finite)

    def nearest_real(self, i: int) -> int | None:
        """B: the real frame of another identity whose landmarks are nearest (Euclidean) to frame i's."""
        if not np.isfinite(self.landmarks[i]).all():
            return None
        pool = self.real_pool[self.identity[self.real_pool] != self.identity[i]]
        if pool.size == 0:
            return None
        dist = np.linalg.norm(self.landmarks[pool] - self.landmarks[i], axis=1)
        return int(pool[int(np.argmin(dist))])

    def _distorted_hull(self, i: int, rng: np.random.Generator) -> np.ndarray:
        hull = face_hull_mask(self.landmarks[i].reshape(-1, 2), self.shape, self.hull_scale)
        return piecewise_affine_distort(hull, rng, self.distort_grid, self.distort_magnitude)

    def _finish(self, a: int, b: int, mask: np.ndarray, intrinsic: bool) -> Forgery | None:
        if int(mask.sum()) < self.min_pixels:
            return None  # nothing would be blended: not a forgery
        image = blend(np.asarray(self.frames.images[a]), np.asarray(self.frames.images[b]), mask)
        m_in = mask.copy() if intrinsic else np.zeros_like(mask)
        return Forgery(image=image, m_in=m_in, m_ex=extrinsic_mask(mask, self.radius), source=a, target=b)

    def real_real(self, rng: np.random.Generator) -> Forgery | None:
        """(Real, Real): a random real A blended into its landmark-nearest real B of another identity.

        M̃ = T(Convex(landmarks of A)); no synthesis happened, so M_In is empty (Fig. 4a).
        Returns None when the training set has no second real identity.
        """
        if self.real_pool.size == 0:
            return None
        a = int(rng.choice(self.real_pool))
        b = self.nearest_real(a)
        if b is None:
            return None
        return self._finish(a, b, self._distorted_hull(a, rng), intrinsic=False)

    def fake_real(self, a: int, rng: np.random.Generator) -> Forgery | None:
        """(Fake, Real): fake frame A blended into its landmark-nearest real B of another identity.

        M' = the convex hull of |A − A_real| > γ (the "expanded" difference, = M_In of A),
        M'' = the landmark hull of A, M̃ = M' ⊙ T(M''); M_In = M̃ (Fig. 4b). Returns None
        when A has no landmarks, no other identity exists, or M̃ is (nearly) empty.
        """
        if self.frames.labels[a] != 1:
            raise ValueError(f"frame {a} is not fake")
        b = self.nearest_real(a)
        if b is None:
            return None
        mask = self.masks.intrinsic(a) & self._distorted_hull(a, rng)
        return self._finish(int(a), b, mask, intrinsic=True)


def forgery_slots(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a batch's fake positions into thirds: (original, (Real, Real), (Fake, Real)).

    Section 4.1: "33% are directly sampled from the fake videos, 33% are sampled using
    (Real, Real) approach and rest are sampled using (Fake, Real)".
    """
    fakes = np.flatnonzero(np.asarray(labels) == 1)
    third = len(fakes) // 3
    return fakes[:third], fakes[third : 2 * third], fakes[2 * third :]
