"""Face detection on a downscaled copy of each frame (``detect_size``), mapped back to full
resolution; its place in the crop-cache key."""

from __future__ import annotations

import numpy as np
import pytest

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.preprocess.cache import CACHE_FORMAT_VERSION, CropCache, CropParams
from dfbench.benchmark.preprocess.faces import DETECT_SIZE, FaceDetector, box_iou, detection_shape, downscale
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


def test_downscale_averages_the_pixels_each_output_pixel_covers() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 12, 3)).astype(np.uint8)
    small = downscale(frames, (4, 6))
    means = frames.reshape(2, 4, 2, 6, 2, 3).astype(float).mean(axis=(2, 4))  # 2×2 blocks
    assert small.shape == (2, 4, 6, 3) and np.abs(small - means).max() <= 0.5
    assert downscale(frames, (8, 12)) is frames  # already at the size: no copy
    assert downscale(np.zeros((1, 720, 1280, 3), np.uint8), (362, 643)).shape == (1, 362, 643, 3)


def test_boxes_and_landmarks_are_mapped_back_to_frame_pixels() -> None:
    detector = FaceDetector(detect_size=360)
    seen = []

    class Stub:  # stands in for MTCNN: one face at fixed detection-pixel coordinates
        def detect(self, batch, landmarks=True):
            seen.append(batch.shape)
            box = np.array([[100.0, 50.0, 200.0, 170.0]])
            lm = np.array([[[120.0, 90.0], [180.0, 90.0], [150.0, 120.0], [125.0, 150.0], [175.0, 150.0]]])
            return [box] * len(batch), [np.array([0.99])] * len(batch), [lm] * len(batch)

    detector.mtcnn = Stub()
    det = detector.detect(np.zeros((3, 1080, 1920, 3), np.uint8))
    assert seen == [(3, 385, 684, 3)]  # MTCNN saw the 0.709 ** 3 copy
    sx, sy = 1920 / 684, 1080 / 385
    np.testing.assert_allclose(det.boxes[0], [100 * sx, 50 * sy, 200 * sx, 170 * sy], rtol=1e-6)
    np.testing.assert_allclose(det.landmarks[2][0], [120 * sx, 90 * sy], rtol=1e-6)
    assert det.face_found.all()


def test_box_iou_hand_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_iou(a, b), [1.0, 50 / 150, 0.0])


@pytest.mark.parametrize("width, height", [(1280, 720), (1920, 1080)])
def test_downscaled_detection_matches_full_resolution(width: int, height: int, one_torch_thread) -> None:
    """Real photos rendered at 720p / 1080p: the boxes found on the downscaled copy, mapped
    back, overlap the full-resolution boxes closely and are not systematically smaller or
    larger. Measured by ``benchmarks/preprocess.py --iou-only --iou-frames 24`` (48 frames):
    median IoU 0.966 (720p) / 0.952 (1080p), least 0.812 / 0.883, box-size ratio 0.992 /
    1.005; 85.4 % / 91.7 % of frames reach IoU 0.9, short of the issue's 95 %, because
    MTCNN's box jitters by a few percent from frame to frame even at full resolution (see
    docs/data.md). The four frames here are deterministic: their least IoU is 0.87."""
    frames = np.stack([f for photo in ("astronaut", "grace") for f in render_wide_frames(photo, width, height, 3)[::2]])
    full = FaceDetector(detect_size=0).detect(frames)
    small = FaceDetector().detect(frames)
    assert full.face_found.all() and small.face_found.all()
    iou = box_iou(full.boxes, small.boxes)
    assert (iou >= 0.85).all() and np.median(iou) >= 0.93, iou
    # no scale bias: box sides agree on average to within 4 % (measured within 1 %)
    side = lambda b: np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))  # noqa: E731
    assert abs(np.mean(side(small.boxes) / side(full.boxes)) - 1) < 0.04
    # landmarks agree to a few percent of the face width
    face_w = full.boxes[:, 2] - full.boxes[:, 0]
    assert (np.abs(full.landmarks - small.landmarks).max(axis=(1, 2)) < 0.05 * face_w).all()


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
    assert CACHE_FORMAT_VERSION == 2
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
    assert (tmp_path / "cache" / "v2" / "crops").is_dir()
