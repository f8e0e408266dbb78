"""Partial face manipulation: landmark-located regions and region pasting into the aligned real frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import dfbench  # noqa: F401
from dfbench.benchmark import partial as P
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import TEST_TRANSFORMS
from dfbench.detectors.artifact_masks import face_hull_mask

SIZE = 64
# eyes 22 px apart on y = 24 → origin (32, 24), d = 22; nose (32, 33); mouth corners (24, 43), (40, 43)
LM = np.array([[21, 24], [43, 24], [32, 33], [24, 43], [40, 43]], dtype=np.float32)


def box(rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), np.uint8)
    m[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1
    return m


def test_eye_nose_mouth_boxes_match_hand_computed_extents() -> None:
    # eye:   x ∈ 32 ± 22·0.85 = [13.3, 50.7], y ∈ 24 ± 22·0.25 = [18.5, 29.5]
    np.testing.assert_array_equal(P.region_mask(LM, (SIZE, SIZE), "eye"), box((19, 29), (14, 50)))
    # nose:  x ∈ 32 ± 6.6, y ∈ [24 + 5.5, 24 + 22·(9/22 + 0.15)] = [29.5, 36.3]
    np.testing.assert_array_equal(P.region_mask(LM, (SIZE, SIZE), "nose"), box((30, 36), (26, 38)))
    # mouth: x ∈ 32 ± (8 + 4.4) = [19.6, 44.4], y ∈ 43 ± 5.5
    np.testing.assert_array_equal(P.region_mask(LM, (SIZE, SIZE), "mouth"), box((38, 48), (20, 44)))


def test_halves_split_the_face_region_at_the_nose() -> None:
    face = face_hull_mask(LM, (SIZE, SIZE), P.DEFAULT_FACE_SCALE).astype(bool)
    masks = {r: P.region_mask(LM, (SIZE, SIZE), r).astype(bool) for r in ("upper", "lower", "left", "right")}
    np.testing.assert_array_equal(masks["upper"] | masks["lower"], face)
    np.testing.assert_array_equal(masks["left"] | masks["right"], face)
    assert not (masks["upper"] & masks["lower"]).any() and not (masks["left"] & masks["right"]).any()
    rows, cols = np.nonzero(masks["upper"])
    assert rows.max() == 32 and np.nonzero(masks["lower"])[0].min() == 33  # nose tip at y = 33
    assert cols.min() < 20 and np.nonzero(masks["left"])[1].max() == 31  # nose tip at x = 32


def test_regions_follow_the_face_when_it_is_rotated() -> None:
    # rot90 (counter-clockwise) maps pixel (x, y) to (y, 63 − x); landmarks move the same way
    rotated = np.stack([LM[:, 1], SIZE - 1 - LM[:, 0]], axis=1)
    for region in P.PARTIAL_REGIONS:
        upright = P.region_mask(LM, (SIZE, SIZE), region)
        turned = P.region_mask(rotated, (SIZE, SIZE), region)
        if region in ("eye", "nose", "mouth"):
            np.testing.assert_array_equal(turned, np.rot90(upright), err_msg=region)
        else:  # halves of the face polygon: rasterising its rotated edges may differ by a pixel
            differ = int((turned != np.rot90(upright)).sum())
            assert differ <= 0.05 * upright.sum(), (region, differ, int(upright.sum()))
        assert turned.sum() > 0


def test_missing_landmarks_give_an_empty_region_and_bad_names_an_error() -> None:
    assert P.region_mask(np.full((5, 2), np.nan), (SIZE, SIZE), "eye").sum() == 0
    with pytest.raises(ConfigError, match="Unknown partial region"):
        P.region_mask(LM, (SIZE, SIZE), "ear")


def frames_with_pairs(seed: int = 0) -> FrameSet:
    rng = np.random.default_rng(seed)
    reals = rng.integers(0, 120, size=(3, SIZE, SIZE, 3), dtype=np.uint8)
    fakes = (reals + 100).astype(np.uint8)  # every pixel of a fake differs from its real
    images = np.concatenate([reals, fakes])
    meta = pd.DataFrame({"video_id": [f"r/{i}" for i in range(3)] + [f"f/{i}" for i in range(3)], "label": [0, 0, 0, 1, 1, 1]})
    landmarks = np.stack([LM + rng.uniform(-1, 1, (5, 2)).astype(np.float32) for _ in range(6)])
    landmarks[5] = np.nan  # a fake frame where no face was found
    extras = {
        "paired_real": np.concatenate([reals, reals]),
        "landmarks": landmarks,
        "mask": np.zeros((6, SIZE, SIZE), np.uint8),
    }
    return FrameSet(images, meta, extras)


@pytest.mark.parametrize("region", P.PARTIAL_REGIONS)
def test_pasting_changes_only_the_regions_pixels(region: str) -> None:
    frames = frames_with_pairs()
    out = TEST_TRANSFORMS.get("partial_region")(frames, region=region)
    np.testing.assert_array_equal(out.labels, frames.labels)
    np.testing.assert_array_equal(out.images[:3], frames.images[:3])  # reals unchanged
    for i in (3, 4):
        mask = P.region_mask(frames.extras["landmarks"][i], (SIZE, SIZE), region).astype(bool)
        assert mask.any()
        real, fake = frames.extras["paired_real"][i], frames.images[i]
        np.testing.assert_array_equal(out.images[i][~mask], real[~mask])  # outside: the real frame
        np.testing.assert_array_equal(out.images[i][mask], fake[mask])  # inside: the fake's pixels
        changed = (out.images[i] != real).any(-1)
        np.testing.assert_array_equal(changed, mask)
        assert out.meta.at[i, "partial_pixels"] == mask.sum()
        np.testing.assert_array_equal(out.extras["mask"][i], mask.astype(np.uint8) * 255)
    np.testing.assert_array_equal(out.images[5], frames.extras["paired_real"][5])  # no landmarks: nothing pasted
    assert out.meta.at[5, "partial_pixels"] == 0 and (out.meta["partial_region"] == region).all()
    np.testing.assert_array_equal(frames.images[3], (frames.extras["paired_real"][3] + 100).astype(np.uint8))  # input intact


def test_transform_declares_and_checks_its_required_extras() -> None:
    transform = TEST_TRANSFORMS.get("partial_region")
    assert transform.requires == frozenset({"paired_real", "landmarks"})
    frames = frames_with_pairs()
    bare = FrameSet(frames.images, frames.meta, {"landmarks": frames.extras["landmarks"]})
    with pytest.raises(ConfigError, match="paired_real"):
        transform(bare, region="eye")
    with pytest.raises(ConfigError, match="Unknown partial region"):
        transform(frames, region="forehead")


def test_protocol_spec_has_one_test_per_region() -> None:
    spec = yaml.safe_load((Path(P.__file__).parent / "protocols" / "partial_manipulation.yaml").read_text())
    whole, *partial = spec["tests"]
    assert whole["name"] == "CDF/whole" and "transform" not in whole  # the unmodified test set
    regions = [t["transform"]["params"]["region"] for t in partial]
    assert regions == list(P.PARTIAL_REGIONS)
    assert all(t["transform"]["name"] == "partial_region" for t in partial)
