"""BiG-Arts: artifact masks, forgery augmentation, network, losses and training end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import dfbench  # noqa: F401  (installs the torchvision guard before timm)
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.detectors.artifact_masks import (
    ForgeryAugmenter,
    artifact_masks,
    extrinsic_mask,
    face_hull_mask,
    forgery_slots,
    identity_keys,
    intrinsic_mask,
    piecewise_affine_distort,
)
from dfbench.detectors.base import create_detector
from dfbench.detectors.big_arts import BalancedBatchSampler, BiGArtsConfig, BiGArtsNet, big_arts_losses

VARIANTS = ["big_arts", "big_arts_cls_only", "big_arts_in_only", "big_arts_ex_only"]
SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on the shared 2-core machine, two threads under load run ~10× slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


BASE_LANDMARKS = np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], dtype=np.float32)


def paired_frameset(n_ids: int = 4, per_id: int = 4, size: int = SIZE, seed: int = 0) -> FrameSet:
    """Reals of ``n_ids`` identities (``per_id`` frames each) and one fake per real frame.

    A fake is its real frame with the face hull replaced by another identity's face,
    brightened by 60 so that |x' − x| exceeds γ there; ``paired_real`` is the real frame.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    faces = []
    for _ in range(n_ids):
        img = 90 + 40 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xx + rng.uniform(1, 3) * yy))[..., None] * np.ones(3)
        faces.append(img + rng.uniform(-30, 30, 3))
    reals, fakes, lms, vids, labels, paired = [], [], [], [], [], []
    for k in range(n_ids):
        for _ in range(per_id):
            lm = BASE_LANDMARKS * size / SIZE + rng.uniform(-2, 2, size=(5, 2))
            real = np.clip(faces[k] + rng.normal(0, 2, (size, size, 1)), 0, 255).astype(np.uint8)
            hull = face_hull_mask(lm, (size, size), 1.6).astype(bool)
            fake = real.copy()
            fake[hull] = np.clip(faces[(k + 1) % n_ids][hull] + 60, 0, 255).astype(np.uint8)
            reals.append(real)
            fakes.append(fake)
            lms += [lm, lm]
            vids += [f"fix/real/raw/{k}", f"fix/fake/raw/{k}"]
            labels += [0, 1]
            paired += [real, real]
    images = np.stack([im for pair in zip(reals, fakes) for im in pair])
    meta = pd.DataFrame({"video_id": vids, "frame": np.repeat(np.arange(n_ids * per_id) % per_id, 2), "label": labels})
    extras = {"paired_real": np.stack(paired), "landmarks": np.stack(lms).astype(np.float32)}
    return FrameSet(images, meta, extras)


# --------------------------------------------------------------------------- masks (Section 3.1)
def test_intrinsic_mask_of_a_pasted_square_is_the_square() -> None:
    rng = np.random.default_rng(0)
    real = rng.integers(0, 100, size=(48, 48, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-3, 4, real.shape), 0, 255).astype(np.uint8)  # sub-γ noise
    fake[10:21, 14:31] = real[10:21, 14:31] + 120
    expected = np.zeros((48, 48), np.uint8)
    expected[10:21, 14:31] = 1
    np.testing.assert_array_equal(intrinsic_mask(fake, real, gamma=20), expected)


def test_intrinsic_mask_is_the_convex_hull_and_ignores_isolated_pixels() -> None:
    real = np.full((40, 40, 3), 50, np.uint8)
    fake = real.copy()
    fake[10:30, 10:15] = 200  # vertical bar of an L (x 10..14, y 10..29)
    fake[25:30, 10:30] = 200  # horizontal bar (x 10..29, y 25..29)
    m = intrinsic_mask(fake, real, gamma=20)
    # hull vertices (x, y): (10,10) (14,10) (29,25) (29,29) (10,29); edge (14,10)-(29,25) is y = x - 4
    assert m[20, 20] == 1  # (x=20, y=20): not in the L, inside the hull
    assert m[15, 25] == 0  # (x=25, y=15): above the edge, outside
    assert m[10:30, 10:15].all() and m[25:30, 10:30].all()
    fake[2, 37] = 255  # one stray pixel far away (compression noise over γ)
    assert intrinsic_mask(fake, real, gamma=20)[2, 37] == 0  # removed by the opening
    assert intrinsic_mask(fake, real, gamma=20, open_iterations=0)[2, 37] == 1  # paper's bare form keeps it


def test_extrinsic_mask_is_a_band_of_width_two_r() -> None:
    m_in = np.zeros((60, 60), np.uint8)
    m_in[20:40, 16:36] = 1
    expected = np.zeros_like(m_in)
    expected[17:43, 13:39] = 1  # dilated by r = 3
    expected[23:37, 19:33] = 0  # minus the eroded square
    ex = extrinsic_mask(m_in, radius=3)
    np.testing.assert_array_equal(ex, expected)
    assert ex.sum() == 26 * 26 - 14 * 14
    # a region touching the image border gets no band along that border
    side = np.zeros((60, 60), np.uint8)
    side[20:40, 0:20] = 1
    ex = extrinsic_mask(side, radius=3)
    assert ex[30, 0] == 0 and ex[30, 17] == 1 and ex[30, 22] == 1 and ex[30, 16] == 0


def test_real_frames_have_empty_masks_and_the_cache_is_per_frameset() -> None:
    frames = paired_frameset(n_ids=2, per_id=2)
    cache = artifact_masks(frames, gamma=20, open_iterations=0)
    assert artifact_masks(frames, gamma=20, open_iterations=0) is cache
    assert artifact_masks(frames, gamma=20, open_iterations=1) is not cache
    assert artifact_masks(paired_frameset(n_ids=2, per_id=2), gamma=20, open_iterations=0) is not cache
    m_in, m_ex = cache.masks(np.arange(len(frames)), radius=2)
    reals, fakes = frames.labels == 0, frames.labels == 1
    assert m_in[reals].sum() == 0 and m_ex[reals].sum() == 0
    for i in np.flatnonzero(fakes):  # a fake's M_In is the hull of where it differs from its pair
        changed = np.abs(frames.images[i].astype(int) - frames.extras["paired_real"][i].astype(int)).max(-1) > 20
        assert m_in[i][changed].all() and m_ex[i].sum() > 0
        np.testing.assert_array_equal(m_ex[i], extrinsic_mask(m_in[i], 2))


def test_piecewise_affine_distortion_with_equal_offsets_is_a_shift() -> None:
    class ConstantOffsets:
        def uniform(self, low, high, size):
            out = np.empty(size)
            out[..., 0], out[..., 1] = 2.0, -1.0  # every control point moves by (dx, dy) = (2, -1)
            return out

    mask = np.zeros((20, 20), np.uint8)
    mask[5:12, 6:10] = 1
    out = piecewise_affine_distort(mask, ConstantOffsets(), grid=4, magnitude=0.1)
    expected = np.zeros_like(mask)
    expected[6:13, 4:8] = 1  # out[y, x] = mask[y - 1, x + 2]
    np.testing.assert_array_equal(out, expected)
    still = piecewise_affine_distort(mask, np.random.default_rng(0), grid=4, magnitude=0.0)
    np.testing.assert_array_equal(still, mask)
    moved = piecewise_affine_distort(mask, np.random.default_rng(0), grid=4, magnitude=0.1)
    assert (moved != mask).any() and abs(int(moved.sum()) - int(mask.sum())) < mask.sum()


# --------------------------------------------------------------------------- augmentation (Section 3.3)
def _augmenter(frames: FrameSet) -> ForgeryAugmenter:
    return ForgeryAugmenter(frames, gamma=20, open_iterations=1, band_frac=0.03, hull_scale=2.0, distort_grid=4, distort_magnitude=0.03)


def test_identity_of_a_fake_is_the_video_of_its_paired_real() -> None:
    frames = paired_frameset(n_ids=3, per_id=2)
    keys = identity_keys(frames)
    for i in range(0, len(frames), 2):  # rows alternate real, fake-of-that-real
        assert keys[i + 1] == keys[i]
    assert len(set(keys[frames.labels == 0])) == 3


def test_nearest_real_is_the_landmark_nearest_frame_of_another_identity() -> None:
    frames = paired_frameset(n_ids=3, per_id=2)
    aug = _augmenter(frames)
    lm = frames.extras["landmarks"].reshape(len(frames), -1).astype(float)
    ids = identity_keys(frames)
    for i in range(len(frames)):
        others = [j for j in np.flatnonzero(frames.labels == 0) if ids[j] != ids[i]]
        best = min(others, key=lambda j: np.linalg.norm(lm[j] - lm[i]))
        assert aug.nearest_real(i) == best


def test_real_real_forgery_is_a_label_one_blend_without_intrinsic_artifacts() -> None:
    frames = paired_frameset()
    aug = _augmenter(frames)
    forgery = aug.real_real(np.random.default_rng(1))
    assert forgery is not None
    a, b = forgery.source, forgery.target
    assert frames.labels[a] == 0 and frames.labels[b] == 0 and identity_keys(frames)[a] != identity_keys(frames)[b]
    blended = (forgery.image != frames.images[b]).any(-1)
    assert blended.any()
    region = forgery.m_ex.astype(bool) | blended  # the blend mask lies inside D(M̃)
    np.testing.assert_array_equal(forgery.image[~region], frames.images[b][~region])
    assert forgery.m_in.sum() == 0 and forgery.m_ex.sum() > 0  # Fig. 4(a): M_In black


def test_fake_real_forgery_masks_are_bounded_by_difference_and_landmark_hulls() -> None:
    frames = paired_frameset()
    aug = _augmenter(frames)
    a = int(np.flatnonzero(frames.labels == 1)[3])
    forgery = aug.fake_real(a, np.random.default_rng(2))
    assert forgery is not None and forgery.source == a and frames.labels[forgery.target] == 0
    mask = forgery.m_in.astype(bool)
    assert mask.any() and not (mask & ~aug.masks.intrinsic(a).astype(bool)).any()  # M̃ ⊆ M'
    np.testing.assert_array_equal(forgery.image[mask], frames.images[a][mask])
    np.testing.assert_array_equal(forgery.image[~mask], frames.images[forgery.target][~mask])
    np.testing.assert_array_equal(forgery.m_ex, extrinsic_mask(forgery.m_in, aug.radius))
    with pytest.raises(ValueError):
        aug.fake_real(int(np.flatnonzero(frames.labels == 0)[0]), np.random.default_rng(0))


def test_forgery_slots_split_the_fakes_in_thirds() -> None:
    labels = np.array([0, 1] * 16)
    orig, rr, fr = forgery_slots(labels)
    assert (len(orig), len(rr), len(fr)) == (5, 5, 6)
    assert set(np.concatenate([orig, rr, fr])) == set(np.flatnonzero(labels == 1))


def test_balanced_batches_are_half_real_and_seeded() -> None:
    labels = np.array([0] * 30 + [1] * 10)
    sampler = BalancedBatchSampler(labels, batch_size=8, real_fraction=0.5, seed=4)
    batches = list(sampler)
    assert len(batches) == 5
    for batch in batches:
        assert len(batch) == 8 and int(labels[batch].sum()) == 4
    assert batches == list(BalancedBatchSampler(labels, 8, 0.5, seed=4))
    assert batches != list(BalancedBatchSampler(labels, 8, 0.5, seed=5))


def test_training_batch_holds_forgeries_with_masks_and_jpeg() -> None:
    frames = paired_frameset()
    det = create_detector("big_arts", preset="mini", batch_size=16)
    det.ensure_built()
    loader = det.train_loader(frames, seed=0, epoch=0)
    batch = next(iter(loader))
    made = det.make_batch(batch, np.random.default_rng(0))
    labels, kind = made["labels"], made["kind"]
    assert int((labels == 1).sum()) == 8
    assert int((kind == 1).sum()) == 2 and int((kind == 2).sum()) == 4  # thirds of 8 fakes: 2 / 2 / 4
    assert (labels[kind > 0] == 1).all()
    assert made["m_in"][labels == 0].sum() == 0 and made["m_ex"][labels == 0].sum() == 0
    assert made["m_in"][kind == 1].sum() == 0 and all(made["m_ex"][k].sum() > 0 for k in np.flatnonzero(kind > 0))
    assert all(made["m_in"][k].sum() > 0 for k in np.flatnonzero(kind == 2))
    raw = batch["image"].permute(0, 2, 3, 1).numpy()
    untouched = kind == 0
    assert (made["images"][untouched] != raw[untouched]).any()  # JPEG 75–100 applied
    plain = create_detector("big_arts", preset="mini", batch_size=16, jpeg_prob=0.0)
    plain.train_loader(frames, seed=0, epoch=0)
    again = plain.make_batch(batch, np.random.default_rng(0))
    np.testing.assert_array_equal(again["images"][untouched], raw[untouched])


# --------------------------------------------------------------------------- network and losses (Section 3.2)
@pytest.mark.parametrize("size", [32, 64])
def test_decoders_predict_masks_at_the_input_size(size: int) -> None:
    cfg = BiGArtsConfig.preset("mini", input_size=size)
    net = BiGArtsNet(cfg).eval()
    with torch.no_grad():
        out = net.forward_all(torch.randn(2, 3, size, size))
    assert out["logits"].shape == (2, 2)
    assert out["in_logits"].shape == (2, 1, size, size) and out["ex_logits"].shape == (2, 1, size, size)
    assert len(net.intrinsic.blocks) == 5 and len(net.extrinsic.blocks) == 5
    with torch.no_grad():
        torch.testing.assert_close(net(torch.ones(1, 3, size, size)), net.forward_all(torch.ones(1, 3, size, size))["logits"])


def test_ablations_build_only_their_branches() -> None:
    def branches(name: str) -> tuple[bool, bool]:
        net = create_detector(name).build()
        return net.intrinsic is not None, net.extrinsic is not None

    assert branches("big_arts") == (True, True)
    assert branches("big_arts_cls_only") == (False, False)
    assert branches("big_arts_in_only") == (True, False)
    assert branches("big_arts_ex_only") == (False, True)


def test_losses_with_zero_outputs_equal_log_two_per_term() -> None:
    n, s = 3, 8
    out = {"logits": torch.zeros(n, 2), "in_logits": torch.zeros(n, 1, s, s), "ex_logits": torch.zeros(n, 1, s, s)}
    m = torch.randint(0, 2, (n, s, s)).float()
    losses = big_arts_losses(out, torch.tensor([0, 1, 1]), m, 1 - m)
    for value in losses.values():  # σ(0) = 1/2 → −log(1/2) per pixel and per image
        assert value.item() == pytest.approx(math.log(2), abs=1e-6)
    cfg = BiGArtsConfig()
    total = cfg.lambda_in * losses["in"] + cfg.lambda_ex * losses["ex"] + cfg.lambda_cls * losses["cls"]
    assert total.item() == pytest.approx(31 * math.log(2), abs=1e-5)  # Eq. (2) with 15, 15, 1


def _step_losses(frames: FrameSet, rows: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, BiGArtsNet]:
    det = create_detector("big_arts", preset="mini")
    det.ensure_built()
    det.augmenter(frames)
    batch = {k: torch.stack([frames[int(i)][k] for i in rows]) for k in ("image", "label", "index")}
    made = det.make_batch(batch, np.random.default_rng(0))
    x = det.preprocess(torch.from_numpy(made["images"]).permute(0, 3, 1, 2))
    t_in, t_ex = det._mask_targets(made["m_in"]), det._mask_targets(made["m_ex"])
    losses = big_arts_losses(det.model.forward_all(x), torch.from_numpy(made["labels"]), t_in, t_ex)
    return losses, t_in, t_ex, det.model


def test_all_three_losses_are_nonzero_on_a_fake_batch() -> None:
    frames = paired_frameset()
    losses, t_in, t_ex, net = _step_losses(frames, np.flatnonzero(frames.labels == 1)[:6])
    assert set(losses) == {"cls", "in", "ex"} and all(v.item() > 0 for v in losses.values())
    assert t_in.sum() > 0 and t_ex.sum() > 0
    (15 * losses["in"] + 15 * losses["ex"] + losses["cls"]).backward()
    assert net.intrinsic.head.weight.grad.abs().sum() > 0 and net.extrinsic.head.weight.grad.abs().sum() > 0


def test_real_images_have_zero_mask_targets_and_the_mask_losses_still_apply() -> None:
    frames = paired_frameset()
    losses, t_in, t_ex, net = _step_losses(frames, np.flatnonzero(frames.labels == 0)[:6])
    assert t_in.sum() == 0 and t_ex.sum() == 0
    assert losses["in"].item() > 0 and losses["ex"].item() > 0
    (losses["in"] + losses["ex"]).backward()
    assert net.intrinsic.head.weight.grad.abs().sum() > 0 and net.extrinsic.head.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- config and training
def test_paper_preset_holds_the_papers_hyperparameters() -> None:
    cfg = BiGArtsConfig.preset("paper")
    assert (cfg.backbone, cfg.input_size, cfg.batch_size, cfg.epochs) == ("resnet18", 256, 32, 1200)
    assert (cfg.optimizer, cfg.lr, cfg.betas, cfg.cosine_t_max) == ("adam", 1e-3, (0.9, 0.999), 40)
    assert (cfg.lambda_in, cfg.lambda_ex, cfg.lambda_cls) == (15.0, 15.0, 1.0)
    assert cfg.jpeg_quality == (75, 100) and cfg.real_fraction == 0.5
    mini = BiGArtsConfig.preset("mini")
    assert (mini.backbone, mini.input_size, mini.batch_size) == ("resnet10t", 64, 32)


def test_training_without_pairs_or_landmarks_is_refused() -> None:
    frames = paired_frameset(n_ids=2, per_id=2)
    bare = FrameSet(frames.images, frames.meta, {"paired_real": frames.extras["paired_real"]})
    with pytest.raises(ConfigError, match="landmarks"):
        create_detector("big_arts").fit(bare, bare)


def test_unknown_backbone_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        create_detector("big_arts", backbone="no_such_net").build()


@pytest.mark.parametrize("name", VARIANTS)
def test_each_variant_trains_end_to_end_and_predicts_probabilities(name: str) -> None:
    frames = paired_frameset()  # 32 frames of 64×64 with paired_real + landmarks
    det = create_detector(name, preset="mini", epochs=2, max_steps_per_epoch=2)
    report = det.fit(frames, frames, seed=0)
    assert report.epochs_run == 2 and len(report.history) == 2
    logs = report.history[0]
    assert ("loss_in" in logs) == det.config.intrinsic_branch and ("loss_ex" in logs) == det.config.extrinsic_branch
    assert logs["forgeries"] > 0 and np.isfinite(logs["loss"])
    scores = det.predict(frames)
    assert scores.shape == (len(frames),) and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
