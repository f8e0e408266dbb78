"""Face detection (batched MTCNN from facenet-pytorch), face choice, square boxes and crops.

Conventions:
- Boxes are (x1, y1, x2, y2) in frame pixels, floats; NaN rows mean "no face".
- One face per frame: the largest detected face (ties: the more confident). FF++-style
  videos centre on one subject, and its face is the largest; the detector's own
  probability threshold has already removed weak candidates.
- The crop is a square of side ``margin * max(w, h)`` centred on the face box. Where it
  reaches past the frame border it is **padded with black** rather than shifted inward, so
  the face stays centred and at the same scale in every frame and every quality.
- Crops are resized with PIL's bicubic filter, which widens its kernel when shrinking (antialiased).
- Detection is bounded by ``detect_size`` (default ``DETECT_SIZE`` = 360): MTCNN's
  cost grows with the pixel count of its image pyramid, and at full resolution most of it
  is spent on the finest levels, which look for faces far smaller than any FF++/DFDC face.
  ``FaceDetector`` runs the full-resolution pyramid *without* those levels: for a frame
  whose shorter side exceeds ``detect_size`` it leaves out the j finest levels
  (``pyramid_skip``: the j whose 0.709^j-downscaled copy has its shorter side nearest
  ``detect_size``; 720p → j = 2, 1080p → 3, 480p → 1), so the finest level searched is
  the first level of a 643 × 362 (720p) or 684 × 385 (1080p) copy (``detection_shape``),
  and the smallest face found is ``min_face_size`` (20) / 0.709^j pixels in the frame:
  40 px in 720p, 56 px in 1080p, while FF++ and DFDC faces are typically well over 100 px
  tall (a face under 60 px is also too small to be worth a 299 px crop). The kept levels
  and every R-Net and O-Net input are area-resampled from the full-resolution frame, as
  full-resolution MTCNN resamples them, so a face is found with full-resolution MTCNN's
  own computation and boxes and landmarks are already in frame pixels; crops are cut from
  the full-resolution frame. Resampling reads integral images (``area_resize``): bit for
  bit torch's area interpolation, at a cost that does not grow with the region resampled.
- Accuracy (issue #14: IoU >= 0.9 with full-resolution boxes on >= 95 % of frames).
  The earlier version ran facenet-pytorch's MTCNN on a swscale copy downscaled to the
  same size and scaled the boxes back: 85.4 % (720p) / 91.7 % (1080p) of frames reached
  IoU 0.9. Its misses were not frame-to-frame jitter that no detector could beat (the
  criterion compares two boxes of the *same* frame) but came from the copy: R-Net and
  O-Net saw windows cut on its coarser pixel grid (truncated to whole pixels) and
  resampled from other pixels, and their box regression turned that into box
  differences of a few percent. Reproducing the full-resolution inputs removes them:
  measured side by side in ``benchmarks/preprocess.py --iou-only`` (figures in
  docs/data.md), every box of the new detector has IoU 1.000 (three decimals) with
  full-resolution MTCNN's box, on all 48 frames at 720p and at 1080p (the copy: 85.4 % /
  91.7 % at IoU >= 0.9), and it took 0.66x / 0.80x the copy's detection time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

import dfbench  # noqa: F401  (arms the torchvision guard before facenet-pytorch imports torchvision)

if TYPE_CHECKING:  # torch is imported where detection runs: importing this module stays cheap
    import torch


@dataclass(frozen=True)
class Detections:
    """One chosen face per frame (NaN / False where none was found)."""

    boxes: np.ndarray  # float32 (F, 4) face boxes in frame pixels
    probs: np.ndarray  # float32 (F,)
    landmarks: np.ndarray  # float32 (F, 5, 2) in frame pixels
    face_found: np.ndarray  # bool (F,)


DETECT_SIZE = 360  # shorter side, in pixels, of MTCNN's finest pyramid level (see the module docstring)
PYRAMID_FACTOR = 0.709  # MTCNN's scale step between pyramid levels (facenet-pytorch's default)
# frames per pass of the cascade are capped so their integral images (4 bytes per pixel and
# channel) stay under 100 MB: 8 frames at 720p, 3 at 1080p (passes of 8 720p frames were
# measured no slower than of 17, and the buffer is kept for the detector's lifetime)
_INTEGRAL_PIXELS = 8_000_000


def pyramid_skip(height: int, width: int, detect_size: int) -> int:
    """How many of MTCNN's finest pyramid levels are skipped for a ``height`` × ``width``
    frame: the j >= 1 that brings the shorter side times ``PYRAMID_FACTOR`` ** j nearest
    ``detect_size`` on a log scale (720 → j = 2, 1080 → 3, 480 → 1); 0 when ``detect_size``
    is 0 (full resolution) or the frame is no larger than it."""
    short = min(height, width)
    if detect_size <= 0 or short <= detect_size:
        return 0
    return max(1, round(math.log(detect_size / short) / math.log(PYRAMID_FACTOR)))


def detection_shape(height: int, width: int, detect_size: int) -> tuple[int, int]:
    """(height, width) of the frame copy whose MTCNN pyramid equals the levels the detector
    keeps (``pyramid_skip``): 720 × 1280 → 362 × 643 (j = 2), 1080 × 1920 → 385 × 684
    (j = 3), 480 × 854 → 340 × 605 (j = 1); frames no larger than ``detect_size`` (or
    ``detect_size`` 0) are left as they are. Faces smaller than ``min_face_size`` pixels
    in this copy are not searched for."""
    steps = pyramid_skip(height, width, detect_size)
    if steps == 0:
        return height, width
    scale = PYRAMID_FACTOR**steps
    return max(1, round(height * scale)), max(1, round(width * scale))


def pyramid_scales(height: int, width: int, min_face_size: float, skip: int = 0) -> list[float]:
    """MTCNN's image-pyramid scales for a ``height`` × ``width`` frame without its ``skip``
    finest levels. The full pyramid is computed as facenet-pytorch computes it (the same
    floating-point steps), so the kept levels are exactly the full-resolution ones."""
    scale = 12.0 / min_face_size  # the 12-px P-Net window covers a min_face_size face
    shortest = min(height, width) * scale
    scales = []
    while shortest >= 12:
        scales.append(scale)
        scale *= PYRAMID_FACTOR
        shortest *= PYRAMID_FACTOR
    return scales[skip:]


def integral_image(frames: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Summed-area tables of uint8 frames (N, H, W, C): (N, H + 1, W + 1, C), entry [n, y, x]
    = the sum of ``frames[n, :y, :x]``. int32 whenever no sum can overflow it (255 · H · W <
    2³¹: frames up to 8.4 million pixels, i.e. 4K), else int64; integer sums are exact.

    ``out``, a tensor of that shape and dtype (or larger along N), is filled instead of a
    new one: on the 2-core test machine, first touching a fresh 30 MB-per-frame table cost
    more than the sums themselves (17 against 5 ms per 720p frame)."""
    import torch

    n, h, w, c = frames.shape
    dtype = torch.int32 if 255 * h * w < 2**31 else torch.int64
    if out is None:
        out = torch.empty((n, h + 1, w + 1, c), dtype=dtype, device=frames.device)
    table = out[:n]
    table[:, 0] = 0
    table[:, :, 0] = 0
    inner = table[:, 1:, 1:]
    # down the rows one row at a time, each step adding a whole uint8 row to the previous
    # sums (vectorised; widening and summing in one pass), where torch.cumsum over a
    # non-last dimension runs element by element (measured 4x slower); then along each row
    inner[:, 0].copy_(frames[:, 0])
    for y in range(1, h):
        torch.add(inner[:, y - 1], frames[:, y], out=inner[:, y])
    torch.cumsum(inner, dim=2, out=inner)
    return table


def _bins(start: torch.Tensor, stop: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-resampling bins of regions [start, stop) (each (K,)) resized to n: output pixel i
    covers [floor(i·L/n), ceil((i+1)·L/n)) of a region of length L, as torch's adaptive
    average pooling (``interpolate(mode="area")``) bins it. Returns (K, n) starts and stops."""
    import torch

    i = torch.arange(n, device=start.device)
    length = (stop - start)[:, None]
    return start[:, None] + i * length // n, start[:, None] + ((i + 1) * length + n - 1) // n


def _means(total: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Bin sums (K, h, w, C) → means (K, C, h, w): divided by the bin's height, then by its
    width, the order torch's pooling kernel divides in (so results agree bit for bit).
    The means stay in channels-last memory order (a permuted view, not copied): MTCNN's
    convolutions run faster on it (P-Net measured 1.7x on CPU), with outputs equal to
    ~1e-6 of the channels-first ones."""
    mean = total.float() / rows[..., None].float() / cols[..., None].float()
    return mean.permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=64)
def _frame_corners(h1: int, w1: int, c: int, size: tuple[int, int], device: str) -> tuple[torch.Tensor, ...]:
    """Flat indices into one frame's integral image (h1 × w1 × c) of the four bin corners of
    every output pixel of a whole-frame resize to ``size``, and the bins' heights and widths.
    The same for every frame of a size and every call, so built once (a pyramid has ~10)."""
    import torch

    zero = torch.zeros(1, dtype=torch.long, device=device)
    r0, r1 = (b[0] for b in _bins(zero, zero + h1 - 1, size[0]))
    c0, c1 = (b[0] for b in _bins(zero, zero + w1 - 1, size[1]))
    channel = torch.arange(c, device=device)

    def at(r: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        return ((r[:, None] * w1 + col[None, :]) * c)[..., None] + channel

    return at(r1, c1), at(r0, c1), at(r1, c0), at(r0, c0), (r1 - r0)[:, None], (c1 - c0)[None, :]


def resize_frames(table: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Whole frames resized to ``size`` = (height, width) by area averaging, from their
    integral images: float32 (N, C, height, width), equal bit for bit to
    ``interpolate(frames, size, mode="area")`` on CPU, MTCNN's pyramid resampling. Four
    lookups per output pixel, whatever the frame's resolution."""
    import torch

    n, h1, w1, c = table.shape
    a, b, d, e, heights, widths = _frame_corners(h1, w1, c, tuple(size), str(table.device))
    total = torch.stack([(f.take(a) - f.take(b)) - (f.take(d) - f.take(e)) for f in table.reshape(n, -1)])
    return _means(total, heights[None], widths[None])


def area_resize(
    table: torch.Tensor,
    image: torch.Tensor,
    rows: tuple[torch.Tensor, torch.Tensor],
    cols: tuple[torch.Tensor, torch.Tensor],
    size: tuple[int, int],
) -> torch.Tensor:
    """Regions of frames resized to ``size`` = (height, width) by area averaging, from the
    frames' integral images ``table`` (``integral_image``).

    Region k is rows ``[rows[0][k], rows[1][k])`` × columns ``[cols[0][k], cols[1][k])`` of
    frame ``image[k]``. Returns float32 (K, C, height, width), equal bit for bit to
    ``interpolate(region, size, mode="area")`` on CPU, as MTCNN resamples its R-Net and
    O-Net inputs; four lookups per output pixel, whatever the region's size (this is what
    makes cutting them from the full-resolution frame cheap)."""
    _, h1, w1, c = table.shape
    r0, r1 = _bins(rows[0].long(), rows[1].long(), size[0])  # (K, height)
    c0, c1 = _bins(cols[0].long(), cols[1].long(), size[1])  # (K, width)
    import torch

    base = image.long()[:, None, None] * h1
    channel = torch.arange(c, device=table.device)
    flat = table.reshape(-1)

    def at(r: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        return flat.take((((base + r[:, :, None]) * w1 + col[:, None, :]) * c)[..., None] + channel)

    total = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)  # (K, height, width, C)
    return _means(total, (r1 - r0)[:, :, None], (c1 - c0)[:, None, :])


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125  # MTCNN's input scaling


def _windows(boxes: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, ...]:
    """MTCNN's crop window of each box, clipped to the frame as facenet-pytorch's ``pad``
    clips it (coordinates truncated to integers, 1-based starts): (rows start, rows stop,
    columns start, columns stop, non-empty)."""
    b = boxes[:, :4].trunc().int()
    x0, y0 = b[:, 0].clamp(min=1) - 1, b[:, 1].clamp(min=1) - 1
    x1, y1 = b[:, 2].clamp(max=width), b[:, 3].clamp(max=height)
    return y0, y1, x0, x1, (y1 > y0) & (x1 > x0)


def _in_chunks(net: torch.nn.Module, data: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, ...]:
    """``net(data)`` in chunks of 512, as facenet-pytorch feeds its R-Net and O-Net (same sums)."""
    import torch

    outs = [net(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


class FaceDetector:
    """Batched MTCNN (facenet-pytorch's networks and weights, its three-stage cascade).
    ``detect(frames)`` takes uint8 (F, H, W, 3) frames of one size and returns boxes and
    landmarks in their pixels.

    ``detect_size`` (shorter side; 0 = full resolution) bounds the image pyramid: its
    ``pyramid_skip`` finest levels are left out, so the finest level searched is the one
    MTCNN would build first from a copy of the frame downscaled to ``detection_shape``,
    and the smallest face found is ``min_face_size`` pixels in that copy. Every level kept,
    and every R-Net and O-Net input, is area-resampled from the full-resolution frame,
    exactly as full-resolution MTCNN resamples it. The levels left out are where
    full-resolution MTCNN spends most of its time (they look for faces far smaller than
    any FF++/DFDC face); what they would find of a face as large as the kept levels find
    is, on the photo fixture, never the chosen box, so boxes equal the full-resolution
    boxes (see the module docstring and ``benchmarks/preprocess.py``).

    The resampling reads each frame's integral image (``area_resize``): a pyramid level
    or a network input costs a few lookups per output pixel rather than a pass over the
    region it covers, which makes the full-resolution inputs cheaper than facenet-pytorch's
    own per-candidate resizing of a downscaled copy.
    """

    def __init__(
        self,
        *,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        min_face_size: int = 20,
        batch_size: int = 32,
        device: str = "cpu",
        detect_size: int = DETECT_SIZE,
    ) -> None:
        import torch
        from facenet_pytorch import MTCNN  # heavy import; only when detection is needed

        self.batch_size = batch_size
        self.detect_size = detect_size
        self.thresholds = tuple(float(t) for t in thresholds)
        self.min_face_size = min_face_size
        self.device = torch.device(device)
        self._buffer: torch.Tensor | None = None  # integral images, reused (see _table)
        # only its networks (and their bundled weights) are used; the cascade is ours
        self.mtcnn = MTCNN(
            keep_all=True,
            thresholds=list(thresholds),
            min_face_size=min_face_size,
            factor=PYRAMID_FACTOR,
            post_process=False,
            device=device,
        )

    def detect(self, frames: np.ndarray) -> Detections:
        n = len(frames)
        boxes = np.full((n, 4), np.nan, np.float32)
        probs = np.zeros(n, np.float32)
        landmarks = np.full((n, 5, 2), np.nan, np.float32)
        found = np.zeros(n, bool)
        if n == 0 or min(frames.shape[1:3]) < 12:
            # MTCNN's pyramid needs 12 px; smaller frames crash inside it (no face can be found)
            return Detections(boxes, probs, landmarks, found)
        import torch

        height, width = frames.shape[1:3]
        scales = pyramid_scales(height, width, self.min_face_size, pyramid_skip(height, width, self.detect_size))
        per_pass = self._per_pass(height, width)
        for start in range(0, n, per_pass):
            part = np.ascontiguousarray(frames[start : start + per_pass])
            if not part.flags.writeable:  # torch wants writable memory, though it only reads it here
                part = part.copy()
            chunk = torch.from_numpy(part).to(self.device)
            with torch.no_grad():
                fb, fl, image = (t.cpu().numpy() for t in self._cascade(chunk, scales))
            for j in range(len(chunk)):
                mine = np.flatnonzero(image == j)
                if len(mine) == 0:
                    continue
                b = fb[mine]
                area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
                best = mine[int(np.lexsort((-b[:, 4], -area))[0])]  # largest first, then most confident
                boxes[start + j] = fb[best, :4]
                probs[start + j] = fb[best, 4]
                landmarks[start + j] = fl[best]
                found[start + j] = True
        return Detections(boxes, probs, landmarks, found)

    def _table(self, frames: torch.Tensor) -> torch.Tensor:
        """A buffer for the integral images of ``frames``, kept between calls (see
        ``integral_image``: a fresh one costs more to touch than to fill)."""
        import torch

        n, h, w, c = frames.shape
        dtype = torch.int32 if 255 * h * w < 2**31 else torch.int64
        shape = (h + 1, w + 1, c)
        buffer = self._buffer
        if buffer is None or buffer.shape[1:] != shape or len(buffer) < n or buffer.device != frames.device:
            buffer = self._buffer = torch.empty((max(n, self._per_pass(h, w)), *shape), dtype=dtype, device=frames.device)
        return buffer

    def _per_pass(self, height: int, width: int) -> int:
        return max(1, min(self.batch_size, _INTEGRAL_PIXELS // (height * width)))

    def _cascade(self, frames: torch.Tensor, scales: Sequence[float]) -> tuple[torch.Tensor, ...]:
        """MTCNN's three stages on uint8 frames (N, H, W, 3) over the pyramid ``scales``,
        step for step as facenet-pytorch's ``detect_face`` runs them (same thresholds, NMS,
        box regression and squaring), with every image read through ``area_resize``.
        Returns (boxes (K, 5) as x1, y1, x2, y2, probability; landmarks (K, 5, 2); frame of
        each box (K,)), in frame pixels."""
        import torch
        from facenet_pytorch.models.utils.detect_face import (
            batched_nms_numpy,
            bbreg,
            generateBoundingBox,
            rerec,
        )
        from torchvision.ops.boxes import batched_nms

        n, height, width = frames.shape[:3]
        table = integral_image(frames, self._table(frames))

        # stage 1: P-Net over the pyramid; candidates merged within each level, then across
        found, frame_of = [], []
        for scale in scales:
            level = resize_frames(table, (int(height * scale + 1), int(width * scale + 1)))
            reg, prob = self.mtcnn.pnet(_normalise(level))
            cand, image = generateBoundingBox(reg, prob[:, 1], scale, self.thresholds[0])
            keep = batched_nms(cand[:, :4], cand[:, 4], image, 0.5)
            found.append(cand[keep])
            frame_of.append(image[keep])
        cand, image = torch.cat(found), torch.cat(frame_of)
        keep = batched_nms(cand[:, :4], cand[:, 4], image, 0.7)
        cand, image = cand[keep], image[keep]
        side = (cand[:, 2:4] - cand[:, 0:2]).repeat(1, 2)  # P-Net's offsets are in window sizes
        boxes = rerec(torch.cat([cand[:, :4] + cand[:, 5:9] * side, cand[:, 4:5]], dim=1))
        points = torch.zeros((0, 5, 2), device=frames.device)

        def inputs(boxes: torch.Tensor, image: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
            y0, y1, x0, x1, ok = _windows(boxes, height, width)
            crops = area_resize(table, image[ok], (y0[ok], y1[ok]), (x0[ok], x1[ok]), (size, size))
            return _normalise(crops), boxes[ok], image[ok]

        # stage 2: R-Net on 24 × 24 crops rejects and refines
        if len(boxes):
            crops, boxes, image = inputs(boxes, image, 24)
        if len(boxes):  # (none left when every window fell outside the frame)
            reg, prob = _in_chunks(self.mtcnn.rnet, crops)
            ok = prob[:, 1] > self.thresholds[1]
            boxes = torch.cat([boxes[ok, :4], prob[ok, 1:2]], dim=1)
            image, reg = image[ok], reg[ok]
            keep = batched_nms(boxes[:, :4], boxes[:, 4], image, 0.7)
            boxes = rerec(bbreg(boxes[keep], reg[keep]))
            image = image[keep]

        # stage 3: O-Net on 48 × 48 crops: final boxes, probabilities and landmarks
        if len(boxes):
            crops, boxes, image = inputs(boxes, image, 48)
        if len(boxes):
            reg, marks, prob = _in_chunks(self.mtcnn.onet, crops)
            ok = prob[:, 1] > self.thresholds[2]
            boxes = torch.cat([boxes[ok, :4], prob[ok, 1:2]], dim=1)
            image, reg, marks = image[ok], reg[ok], marks[ok]
            # landmarks are fractions of the O-Net box (before its regression), 1-based like it
            w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
            h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
            points = torch.stack([w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2)
            boxes = bbreg(boxes, reg)
            keep = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image, 0.7, "Min")
            boxes, image, points = boxes[keep], image[keep], points[keep]
        return boxes, points, image


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a[i]`` and ``b[i]`` (both (N, 4)); NaN rows give NaN."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def fill_missing(face_found: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """For each frame, the position (in the sample) of the frame whose box it uses: itself
    when a face was found, else the nearest frame (by frame index; earlier wins ties) with
    a face. Returns -1 everywhere when no frame has a face."""
    found_pos = np.flatnonzero(face_found)
    if len(found_pos) == 0:
        return np.full(len(face_found), -1, np.int64)
    idx = np.asarray(frame_indices, np.int64)
    dist = np.abs(idx[:, None] - idx[found_pos][None, :])
    return found_pos[np.argmin(dist, axis=1)]  # argmin returns the first (earlier) on ties


def square_boxes(face_boxes: np.ndarray, margin: float) -> np.ndarray:
    """Square crop boxes of side ``margin * max(w, h)`` centred on each face box."""
    b = np.asarray(face_boxes, np.float64)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = margin * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _integer_box(box: np.ndarray) -> tuple[int, int, int]:
    """(x0, y0, side) on the pixel grid; the same float box always gives the same pixels."""
    x0, y0 = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
    side = max(1, int(np.floor(box[2] - box[0] + 0.5)))
    return x0, y0, side


def crop_frame(frame: np.ndarray, box: np.ndarray, size: int, resample: int = Image.Resampling.BICUBIC) -> np.ndarray:
    """Crop the square ``box`` from ``frame`` (padding with black past the border) and
    resize it to ``size`` × ``size``. Works for RGB (H, W, 3) and single-channel (H, W)."""
    x0, y0, side = _integer_box(box)
    height, width = frame.shape[:2]
    # the square is cut in numpy, zeros (black padding) where it reaches past the border, so
    # PIL gets only the patch: handing it the whole frame cost a full-frame copy per crop
    patch = np.zeros((side, side, *frame.shape[2:]), np.uint8)
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y0 + side, height), min(x0 + side, width)
    if bottom > top and right > left:
        patch[top - y0 : bottom - y0, left - x0 : right - x0] = frame[top:bottom, left:right]
    image = Image.fromarray(patch)
    if side != size:
        image = image.resize((size, size), resample=resample)
    return np.asarray(image, dtype=np.uint8)


def landmarks_to_crop(landmarks: np.ndarray, crop_boxes: np.ndarray, size: int) -> np.ndarray:
    """Landmarks from frame pixels to the pixels of the resized crops."""
    out = np.empty_like(landmarks, dtype=np.float32)
    for i, box in enumerate(crop_boxes):
        x0, y0, side = _integer_box(box)
        out[i] = (landmarks[i] - np.array([x0, y0], np.float32)) * (size / side)
    return out
