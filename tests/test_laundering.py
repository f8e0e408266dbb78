"""Laundering operators: identity at zero strength, damage rising with strength, hand-computed cases."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import dfbench  # noqa: F401
from dfbench.benchmark import laundering as L
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet

PROTOCOL = Path(L.__file__).parent / "protocols" / "laundering.yaml"


def natural_images(n: int = 6, size: int = 64, seed: int = 1) -> np.ndarray:
    """Smooth colour fields and soft blobs with luminance texture (chroma varies slowly, as in faces)."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        img = np.zeros((size, size, 3))
        for c in range(3):
            img[..., c] = 120 + 50 * np.sin(2 * np.pi * (r.uniform(0.5, 2) * xx + r.uniform(0.5, 2) * yy) + r.uniform(0, 6))
        for _ in range(4):
            cx, cy, rad = r.uniform(0.2, 0.8), r.uniform(0.2, 0.8), r.uniform(0.05, 0.2)
            img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad**2))[..., None] * r.uniform(-50, 50, 3)
        img += r.normal(0, 6, (size, size, 1))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


IMAGES = natural_images()
# strengths from least to most damage, as in the protocol
LADDERS = {
    "jpeg": [100, 90, 80, 70, 60],
    "h264": [5, 10, 15, 20, 25, 30],
    "gaussian_blur": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
    "resize": [1.0, 0.9, 0.7, 0.5, 0.3, 0.1],
    "gaussian_noise": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
}


@pytest.mark.parametrize("op,value", [("gaussian_blur", 0.0), ("resize", 1.0), ("gaussian_noise", 0.0)])
def test_zero_strength_is_the_identity(op: str, value: float) -> None:
    out = L.LAUNDERING_OPERATORS[op](IMAGES, value, np.random.default_rng(0))
    np.testing.assert_array_equal(out, IMAGES)
    assert out is not IMAGES


@pytest.mark.parametrize("op,value", [("jpeg", 100), ("h264", 5)])
def test_mildest_codec_setting_is_near_identity(op: str, value: float) -> None:
    out = L.LAUNDERING_OPERATORS[op](IMAGES, value, np.random.default_rng(0))
    assert out.shape == IMAGES.shape and out.dtype == np.uint8
    assert 35.0 < L.psnr(out, IMAGES) < float("inf")  # a real encode, but barely lossy


@pytest.mark.parametrize("op", sorted(LADDERS))
def test_damage_rises_with_strength(op: str) -> None:
    values = [L.psnr(L.LAUNDERING_OPERATORS[op](IMAGES, v, np.random.default_rng(0)), IMAGES) for v in LADDERS[op]]
    assert all(b <= a for a, b in zip(values, values[1:])), values
    assert values[-1] < values[0] - 5.0, values  # the strongest setting does clearly more damage


def test_operators_do_not_modify_their_input() -> None:
    before = IMAGES.copy()
    for op, ladder in LADDERS.items():
        L.LAUNDERING_OPERATORS[op](IMAGES, ladder[-1], np.random.default_rng(0))
    np.testing.assert_array_equal(IMAGES, before)


def test_blur_of_an_impulse_is_the_3x3_gaussian_kernel() -> None:
    img = np.zeros((1, 7, 7, 3), np.uint8)
    img[0, 3, 3] = 255
    out = L.gaussian_blur(img, 0.5)[0, ..., 0].astype(float)
    w1 = np.exp(-1 / (2 * 0.25))  # tap at distance 1 relative to the centre tap (σ = 0.5)
    w = np.array([w1, 1.0, w1]) / (1 + 2 * w1)
    expected = np.zeros((7, 7))
    expected[2:5, 2:5] = np.rint(255 * np.outer(w, w))
    np.testing.assert_array_equal(out, expected)


def test_resize_of_a_checkerboard_at_half_scale_averages_it() -> None:
    board = ((np.indices((8, 8)).sum(0) % 2) * 255).astype(np.uint8)
    img = np.repeat(board[None, ..., None], 3, axis=-1)
    out = L.resize(img, 0.5)  # each half-scale pixel averages a 2×2 cell: 127.5 → 128
    assert (out == 128).all()
    assert L.resize(img, 0.02).shape == img.shape  # at least one pixel is kept


def test_noise_is_seeded_and_has_the_requested_sigma() -> None:
    grey = np.full((4, 32, 32, 3), 128, np.uint8)
    a = L.gaussian_noise(grey, 5.0, np.random.default_rng(7))
    b = L.gaussian_noise(grey, 5.0, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    residual = a.astype(float) - 128  # σ in levels of the 0–255 scale
    assert abs(residual.std() - 5.0) < 0.15 and abs(residual.mean()) < 0.15


def test_noise_sigma_half_moves_a_third_of_the_pixels_by_one_level() -> None:
    """The protocol's strongest noise, σ = 0.5 levels, after rounding to whole levels:
    P(|n| > 0.5) = P(|z| > 1) = 0.3173 of the pixels change, by ±1 almost always (P(|z| > 3)
    = 0.0027 by ±2); RMS change √(0.3146 + 4 · 0.0027) = 0.570 levels. On the [0, 1] scale
    the same σ moved pixels by 92 levels RMS."""
    grey = np.full((4, 64, 64, 3), 128, np.uint8)
    d = L.gaussian_noise(grey, 0.5, np.random.default_rng(0)).astype(float) - 128
    assert abs((d != 0).mean() - 0.3173) < 0.012
    assert abs(np.sqrt((d**2).mean()) - 0.570) < 0.02
    assert np.abs(d).max() <= 3
    assert L.psnr(L.gaussian_noise(IMAGES, 0.5, np.random.default_rng(0)), IMAGES) > 50.0
    weak = L.gaussian_noise(grey, 0.1, np.random.default_rng(0)).astype(float) - 128
    assert (weak != 0).mean() < 1e-3  # σ = 0.1 level: P(|z| > 5) ≈ 6e-7, rounds back to the input


def test_h264_encodes_each_video_as_its_own_sequence() -> None:
    ids = ["v/a"] * 3 + ["v/b"] * 3
    grouped = L.h264(IMAGES, 23, video_ids=ids)
    np.testing.assert_array_equal(grouped[:3], L.h264(IMAGES[:3], 23))
    np.testing.assert_array_equal(grouped[3:], L.h264(IMAGES[3:], 23))
    np.testing.assert_array_equal(grouped, L.h264(IMAGES, 23, video_ids=ids))  # deterministic
    odd = L.h264(IMAGES[:2, :33, :31], 10)  # odd sides are padded for yuv420p and cropped back
    assert odd.shape == (2, 33, 31, 3) and L.psnr(odd, IMAGES[:2, :33, :31]) > 30


def test_launder_frameset_passes_video_ids_to_video_operators() -> None:
    meta = pd.DataFrame({"video_id": ["v/a"] * 3 + ["v/b"] * 3, "label": [0, 0, 0, 1, 1, 1]})
    frames = FrameSet(IMAGES, meta, {"landmarks": np.zeros((6, 5, 2), np.float32)})
    out = L.launder(frames, "h264", 23, np.random.default_rng(0))
    np.testing.assert_array_equal(out.images, L.h264(IMAGES, 23, video_ids=meta["video_id"].tolist()))
    assert out.meta.equals(frames.meta) and set(out.extras) == {"landmarks"}
    with pytest.raises(ConfigError, match="Unknown laundering operator"):
        L.launder(frames, "sharpen", 1, np.random.default_rng(0))


@pytest.mark.parametrize("op,bad", [("jpeg", 0), ("jpeg", 101), ("h264", 52), ("gaussian_blur", -0.1), ("resize", 0.0), ("resize", 1.5), ("gaussian_noise", -1)])
def test_out_of_range_strength_is_a_config_error(op: str, bad: float) -> None:
    with pytest.raises(ConfigError):
        L.LAUNDERING_OPERATORS[op](IMAGES[:1], bad, np.random.default_rng(0))


def test_operators_have_the_registry_signature() -> None:
    for fn in L.LAUNDERING_OPERATORS.values():
        params = list(inspect.signature(fn).parameters)
        assert params[:3] == ["images", "value", "rng"]


def test_protocol_spec_names_known_operators_with_valid_values() -> None:
    spec = yaml.safe_load(PROTOCOL.read_text())
    assert spec["name"] == "laundering" and spec["procedure"] == "train_test"
    ops = {t["perturbation"]["op"]: t["perturbation"]["values"] for t in spec["tests"]}
    assert set(ops) == set(L.LAUNDERING_OPERATORS)
    assert ops["jpeg"] == [60, 70, 80, 90, 100] and ops["h264"] == [5, 10, 15, 20, 25, 30]
    for op, values in ops.items():
        for v in values:  # every value the protocol will ask for is accepted
            assert L.LAUNDERING_OPERATORS[op](IMAGES[:1, :16, :16], v, np.random.default_rng(0)).shape == (1, 16, 16, 3)


# --------------------------------------------------------------------------- scoring in blocks
BLOCK_VALUES = {"jpeg": 70, "h264": 25, "gaussian_blur": 0.4, "resize": 0.5, "gaussian_noise": 0.5, "random_jpeg": 60}


def test_video_blocks_cut_between_whole_videos() -> None:
    from dfbench.benchmark.procedures import video_blocks

    ids = ["a", "a", "b", "b", "b", "c", "d", "d"]
    assert [b.tolist() for b in video_blocks(ids, 3)] == [[0, 1], [2, 3, 4], [5, 6, 7]]
    assert [b.tolist() for b in video_blocks(ids, 2)] == [[0, 1], [2, 3, 4], [5], [6, 7]]  # one long video stays whole
    assert [b.tolist() for b in video_blocks(ids, 100)] == [list(range(8))]
    assert video_blocks([], 4) == []
    with pytest.raises(ValueError, match="not consecutive"):
        video_blocks(["a", "b", "a"], 4)


@pytest.mark.parametrize("op", sorted(BLOCK_VALUES))
def test_every_perturbation_gives_the_same_images_block_by_block(op: str) -> None:
    """score_in_blocks perturbs a block of whole videos at a time with one generator: every
    registered operator must give exactly what one call on the whole set gives."""
    from dfbench.benchmark import perturbations_qad  # noqa: F401  (registers random_jpeg)
    from dfbench.benchmark.procedures import PERTURBATIONS, video_blocks

    operator = PERTURBATIONS.get(op)
    images = natural_images(n=9, size=32, seed=4)
    ids = [f"v{i // 3}" for i in range(9)]
    kwargs = (lambda rows: {"video_ids": [ids[i] for i in rows]}) if "video_ids" in inspect.signature(operator).parameters else (lambda rows: {})
    whole = operator(images, BLOCK_VALUES[op], np.random.default_rng([0, 7]), **kwargs(range(9)))
    rng = np.random.default_rng([0, 7])
    blocks = [operator(images[rows], BLOCK_VALUES[op], rng, **kwargs(rows)) for rows in video_blocks(ids, 4)]
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_score_in_blocks_equals_scoring_the_whole_perturbed_set(monkeypatch) -> None:
    from dfbench.benchmark.procedures import PERTURBATIONS, score_in_blocks
    from dfbench.testing import fitted_tiny_detector

    detector, frames = fitted_tiny_detector("erm")  # 8 videos × 2 frames
    noise = PERTURBATIONS.get("gaussian_noise")
    whole = detector.predict(FrameSet(noise(frames.images, 0.5, np.random.default_rng(3)), frames.meta))
    sizes = []
    predict = detector.predict
    monkeypatch.setattr(detector, "predict", lambda block, **kw: sizes.append(len(block)) or predict(block, **kw))
    scored, scores = score_in_blocks(detector, frames, perturbation=noise, value=0.5, rng=np.random.default_rng(3), max_frames=5)
    assert sizes == [4, 4, 4, 4] and max(sizes) <= 5  # whole videos of 2 frames, never more than 5 frames at once
    np.testing.assert_allclose(scores, whole, atol=1e-6)
    assert scored.meta["video_id"].tolist() == frames.meta["video_id"].tolist()


def test_every_registered_perturbation_is_checked_block_by_block() -> None:
    from dfbench.benchmark import perturbations_qad  # noqa: F401
    from dfbench.benchmark.procedures import PERTURBATIONS

    # dfbench's own operators (other tests register throw-away ones in the same registry)
    shipped = {n for n in PERTURBATIONS.names() if PERTURBATIONS.get(n).__module__.startswith("dfbench.")}
    assert shipped == set(BLOCK_VALUES)
