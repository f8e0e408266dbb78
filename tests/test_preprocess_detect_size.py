"""Face detection bounded by ``detect_size`` (MTCNN's full-resolution pyramid without its
finest levels, every input resampled from the full-resolution frame through integral
images); its agreement with facenet-pytorch's full-resolution MTCNN; its place in the
crop-cache key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.preprocess.cache import CACHE_FORMAT_VERSION, CropCache, CropParams
from dfbench.benchmark.preprocess.faces import (
    DETECT_SIZE,
    FaceDetector,
    area_resize,
    box_iou,
    detection_shape,
    integral_image,
    pyramid_scales,
    pyramid_skip,
    resize_frames,
)
from dfbench.benchmark.preprocess.fixture import render_wide_frames, wide_frame_shifts
from dfbench.benchmark.preprocess.pipeline import ensure_crops
from dfbench.datasets.ffpp import FaceForensicsPP


def test_detection_shape_hand_values() -> None:
    assert DETECT_SIZE == 360
    # whole MTCNN pyramid steps (0.709 ** j), the j nearest 360 px on the shorter side
    assert detection_shape(720, 1280, 360) == (362, 643)  # 0.709 ** 2 = 0.5027
    assert detection_shape(1080, 1920, 360) == (385, 684)  # 0.709 ** 3 = 0.3564 (385 nearer than 273)
    assert detection_shape(1920, 1080, 360) == (684, 385)  # portrait: the shorter side is the width
    assert detection_shape(480, 854, 360) == (340, 605)  # 0.709 ** 1
    assert detection_shape(240, 320, 360) == (240, 320)  # never enlarged
    assert detection_shape(1080, 1920, 0) == (1080, 1920)  # 0 = full resolution


def test_pyramid_skips_the_finest_levels_of_the_full_pyramid() -> None:
    assert [pyramid_skip(720, 1280, 360), pyramid_skip(1080, 1920, 360), pyramid_skip(240, 320, 360)] == [2, 3, 0]
    assert pyramid_skip(1080, 1920, 0) == 0
    full = pyramid_scales(720, 1280, 20)
    # facenet-pytorch's pyramid: 12/20 = 0.6, then x0.709 while the shorter side stays >= 12 px
    np.testing.assert_allclose(full[:3], [0.6, 0.6 * 0.709, 0.6 * 0.709**2])
    assert len(full) == 11 and 720 * full[-1] >= 12 > 720 * full[-1] * 0.709
    assert pyramid_scales(720, 1280, 20, skip=2) == full[2:]  # the very same floats, not recomputed
    # the finest level kept is the copy's first level: 720 * 0.6 * 0.709 ** 2 ≈ 362 * 0.6
    assert int(720 * full[2] + 1) == int(362 * 0.6 + 1) == 218


def _frames(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8))


def test_integral_image_hand_values_and_reused_buffer() -> None:
    frames = _frames((2, 5, 7, 3))
    table = integral_image(frames)
    assert table.shape == (2, 6, 8, 3) and table.dtype == torch.int32
    np.testing.assert_array_equal(table[:, 1:, 1:].numpy(), frames.numpy().astype(np.int64).cumsum(1).cumsum(2))
    assert (table[:, 0] == 0).all() and (table[:, :, 0] == 0).all()
    assert int(table[1, 2, 3, 1]) == int(frames[1, :2, :3, 1].sum())  # hand: sum of a 2 x 3 block
    buffer = torch.full((3, 6, 8, 3), -1, dtype=torch.int32)  # stale content must not leak
    again = integral_image(frames, buffer)
    assert again.data_ptr() == buffer.data_ptr() and torch.equal(again, table)


@pytest.mark.parametrize("size", [(24, 24), (48, 48), (13, 40), (77, 131), (218, 387)])
def test_area_resampling_matches_torch_area_interpolation_bit_for_bit(size: tuple[int, int]) -> None:
    """MTCNN resamples with interpolate(mode="area"); the integral-image version must give
    the same floats, or the cascade would not reproduce full-resolution MTCNN."""
    frames = _frames((2, 77, 131, 3), seed=1)
    planar = frames.permute(0, 3, 1, 2).float()
    table = integral_image(frames)
    assert torch.equal(resize_frames(table, size), F.interpolate(planar, size=size, mode="area"))
    # regions of different frames and sizes, as R-Net and O-Net cut them
    image, r0, r1 = torch.tensor([1, 0, 1]), torch.tensor([0, 5, 70]), torch.tensor([77, 40, 71])
    c0, c1 = torch.tensor([3, 0, 100]), torch.tensor([50, 131, 131])
    out = area_resize(table, image, (r0, r1), (c0, c1), size)
    for k in range(3):
        region = planar[image[k] : image[k] + 1, :, r0[k] : r1[k], c0[k] : c1[k]]
        assert torch.equal(out[k : k + 1], F.interpolate(region, size=size, mode="area"))


def test_full_resolution_detection_equals_facenet_mtcnn(one_torch_thread) -> None:
    """detect_size=0 runs the whole pyramid: boxes, probabilities and landmarks are
    facenet-pytorch's own ``MTCNN.detect`` results (to 0.01 px here)."""
    frames = np.stack([f for photo in ("astronaut", "grace") for f in render_wide_frames(photo, 448, 252, 2)])
    detector = FaceDetector(detect_size=0)
    ours = detector.detect(frames)
    boxes, probs, marks = detector.mtcnn.detect(frames, landmarks=True)
    assert ours.face_found.all()
    for j in range(len(frames)):
        b = np.asarray(boxes[j], np.float32)
        best = int(np.lexsort((-np.asarray(probs[j], np.float32), -(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))[0])
        np.testing.assert_allclose(ours.boxes[j], b[best], atol=1e-2)
        np.testing.assert_allclose(ours.landmarks[j], np.asarray(marks[j], np.float32)[best], atol=1e-2)
        assert abs(ours.probs[j] - float(probs[j][best])) < 1e-5


def test_only_the_pyramid_levels_at_or_below_the_detection_size_run() -> None:
    detector = FaceDetector(detect_size=360)
    seen = []
    detector.mtcnn.pnet.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape[2:])))
    detector.detect(np.zeros((1, 1080, 1920, 3), np.uint8))
    # 1080p: the three finest levels (0.6, 0.425, 0.301) are left out; the first kept one is
    # 0.6 * 0.709 ** 3 = 0.2139 → 231 × 411, the copy's own first level (385 * 0.6 + 1)
    assert seen[0] == (231, 411) and len(seen) == 12 - 3  # 648 * 0.709 ** k >= 12 for k <= 11
    assert seen == [(int(1080 * s + 1), int(1920 * s + 1)) for s in pyramid_scales(1080, 1920, 20, skip=3)]


def test_box_iou_hand_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(a, b), [1.0, 50 / 150, 0.0])


@pytest.mark.parametrize("width, height", [(1280, 720), (1920, 1080)])
def test_bounded_detection_matches_full_resolution_mtcnn(width: int, height: int, one_torch_thread) -> None:
    """Issue #14's criterion on real photos rendered at 720p / 1080p: the box of the default
    detector (detect_size 360) has IoU >= 0.9 with facenet-pytorch's full-resolution MTCNN
    box on the same frame. Measured by ``benchmarks/preprocess.py --iou-only`` on 48 frames
    per resolution: 100 % of frames, least IoU 1.000 (three decimals), because the levels left out
    never yield the chosen box on these faces and all other inputs are resampled exactly as
    full-resolution MTCNN resamples them (the swscale copy used before reached 85 % / 92 %).
    Four frames per resolution here."""
    frames = np.stack([f for photo in ("astronaut", "grace") for f in render_wide_frames(photo, width, height, 3)[::2]])
    bounded = FaceDetector().detect(frames)
    boxes, probs = FaceDetector(detect_size=0).mtcnn.detect(frames)
    full = np.stack([
        np.asarray(b, np.float32)[np.lexsort((-np.asarray(p, np.float32), -(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))[0]]
        for b, p in zip(boxes, probs)
    ])
    assert bounded.face_found.all()
    iou = box_iou(full, bounded.boxes)
    assert (iou >= 0.9).all(), iou
    np.testing.assert_allclose(bounded.boxes, full, atol=0.05)  # not just close: the same boxes


def test_wide_frame_shifts_follow_the_rendered_face() -> None:
    # at the window's own size the frames are the window itself: frame t is frame 0 moved
    # by (-2t, -t) pixels, exactly
    frames = render_wide_frames("astronaut", 448, 252, 3)
    np.testing.assert_array_equal(wide_frame_shifts("astronaut", 448, 252, 3), [[0, 0], [-2, -1], [-4, -2]])
    assert np.array_equal(frames[1][:-1, :-2], frames[0][1:, 2:])
    assert np.array_equal(frames[2][:-2, :-4], frames[0][2:, 4:])
    # scaled to the frame size; a triangle wave of period 32 (17 distinct positions)
    shifts = wide_frame_shifts("grace", 1920, 1080, 34)
    np.testing.assert_allclose(shifts[1], [-2 * 1920 / 896, -1080 / 504])
    np.testing.assert_allclose(shifts[16], 16 * shifts[1])
    np.testing.assert_allclose(shifts[17], shifts[15])
    np.testing.assert_allclose(shifts[32], shifts[0])
    assert len(np.unique(shifts, axis=0)) == 17


def test_detect_size_is_part_of_the_cache_key(ffpp_fixture, tmp_path, one_torch_thread) -> None:
    assert CACHE_FORMAT_VERSION == 3
    with pytest.raises(ConfigError, match="detect_size"):
        CropParams(detect_size=32)
    a, b = CropParams(frames=4, size=32), CropParams(frames=4, size=32, detect_size=0)
    cache = CropCache(tmp_path / "cache")
    assert cache.box_key("id", a) != cache.box_key("id", b)
    assert cache.crop_key("v", "r", None, a) != cache.crop_key("v", "r", None, b)
    assert a.key_fields()["detect_size"] == 360 and a.detection_fields()["detect_size"] == 360
    # entries made with one detection size are not reused for another
    adapter = FaceForensicsPP(ffpp_fixture.root)
    index = adapter.build_index()
    rows = index[(index["video_id"] == "ffpp/youtube/c23/000")]
    kw = dict(cache=cache, real_methods=adapter.real_methods, qualities=adapter.qualities, pool=index, progress=False)
    first, _ = ensure_crops(rows, params=a, **kw)
    again, _ = ensure_crops(rows, params=a, **kw)
    other, _ = ensure_crops(rows, params=b, **kw)
    assert first.processed == 1 and first.detected_references == 1
    assert again.cached == 1 and again.processed == 0
    assert other.processed == 1 and other.detected_references == 1
    assert (tmp_path / "cache" / "v3" / "crops").is_dir()
