"""PBNet: equations against hand computations, the frozen detector, the balanced offset set,
the registered detector and the compression_remedy procedure end to end (tiny, CPU)."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dfbench  # noqa: F401  (torchvision guard before timm)
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import PROCEDURES, RunContext, cell_key
from dfbench.benchmark.procedures_pbnet import bleach_plans, compression_remedy, frozen_and_config
from dfbench.benchmark.protocol import load_protocol, parse_protocol
from dfbench.benchmark.results import CELL_DONE_SUFFIX, CELLS_DIR, ResultsStore, cell_id
from dfbench.detectors import create_detector
from dfbench.detectors.pbnet import (
    BleachedDetector,
    DCGANGenerator,
    PBNetConfig,
    PixelBleach,
    balanced_offset_set,
    bleach_loss,
    features_and_logits,
    load_bleach,
    predicted_fake,
    prediction_sign,
    reconstruct_compensate,
    regularization_loss,
    remedy_loss,
    save_bleach,
    train_bleach,
)

SIZE = 32


def tiny_frames(quality: str, split: str, n_videos: int = 8, frames: int = 4, seed: int = 0) -> FrameSet:
    """Real: flat colour + noise; fake: + a checkerboard, fainter at c40 (compression)."""
    rng = np.random.default_rng([seed, sum(map(ord, quality + split))])
    amp = {"c23": 40.0, "c40": 8.0}.get(quality, 40.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    checker = (((yy + xx) % 2) * 2 - 1)[..., None]
    images, rows = [], []
    for v in range(n_videos):
        label = v % 2
        colour = rng.uniform(60, 190, 3)
        for f in range(frames):
            img = colour + rng.normal(0, 10, (SIZE, SIZE, 3)) + (amp * checker if label else 0)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            rows.append({"video_id": f"ffpp/{'FS' if label else 'youtube'}/{quality}/{split}{v}", "frame": f,
                         "label": label, "dataset": "ffpp", "method": "FaceSwap" if label else "youtube",
                         "quality": quality, "face_found": True})
    return FrameSet(np.stack(images), pd.DataFrame(rows))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions: one intra-op thread is faster than two on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted_erm(one_thread) -> object:
    torch.manual_seed(0)
    det = create_detector("erm", input_size=SIZE, epochs=1, batch_size=16)
    det.fit(tiny_frames("c23", "train"), tiny_frames("c23", "val"), seed=0)
    return det


def small_config(**overrides) -> PBNetConfig:
    return PBNetConfig.preset("mini", **{"input_size": SIZE, "epochs": 1, "batch_size": 8, "generator_width": 16, **overrides})


# --------------------------------------------------------------------------- equations
def test_prediction_sign_is_the_detectors_decision() -> None:
    logits = torch.tensor([[0.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    sign = prediction_sign(logits)
    assert sign.tolist() == [-1.0, 1.0, -1.0]  # I = +1 "real", −1 "fake"; tie = P(fake) 0.5 = "fake", as ACC
    assert predicted_fake(sign).tolist() == [1, 0, 1]


def test_recf_equals_formula_for_both_signs() -> None:
    phi = torch.tensor([[1.0, -2.0, 3.0], [1.0, -2.0, 3.0]])
    sign = prediction_sign(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # says fake (I = −1), says real (I = +1)
    out = reconstruct_compensate(phi, sign, m=0.7)
    # I = −1: −2φ − 0.7φ = −2.7φ ; I = +1: −2φ + 0.7φ = −1.3φ
    expected = torch.tensor([[-2.7, 5.4, -8.1], [-1.3, 2.6, -3.9]])
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.equal(reconstruct_compensate(phi, sign, m=0.0), -2 * phi)  # Eq. 3


def test_positive_offset_moves_predicted_fake_frames_further_as_table_viii_needs() -> None:
    """Table VIII: raising m lowers FP (real frames called fake) and raises FN. φ_tar = φ + Δφ*
    must therefore cross the origin further for a predicted-fake frame as m grows, and less far
    for a predicted-real one."""
    phi = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    sign = prediction_sign(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # [says fake, says real]
    target = {m: phi + reconstruct_compensate(phi, sign, m) for m in (-0.7, 0.0, 0.7)}
    reach = {m: (-t[:, 0] / phi[:, 0]).tolist() for m, t in target.items()}  # how far past the mirror origin
    assert reach[-0.7] == pytest.approx([0.3, 1.7]) and reach[0.0] == pytest.approx([1.0, 1.0])
    assert reach[0.7] == pytest.approx([1.7, 0.3])  # m = +0.7: FP candidates pushed 1.7×, FN candidates 0.3×


def test_remedy_loss_matches_hand_computation() -> None:
    phi_bl = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    phi_tar = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    # E = [1, 0]: pull √(3²+4²) = 5 ; push τ·√(1²+2²) ; both over √B, B = 2
    got = remedy_loss(phi_bl, phi_tar, torch.tensor([True, False]), tau=0.2)
    assert got.item() == pytest.approx((5 - 0.2 * math.sqrt(5)) / math.sqrt(2), rel=1e-6)
    # E = [1, 1]: pull √(25 + 4² + 3²) = √50, nothing pushed
    got = remedy_loss(phi_bl, phi_tar, torch.tensor([True, True]), tau=0.2)
    assert got.item() == pytest.approx(math.sqrt(50) / math.sqrt(2), rel=1e-5)


def test_remedy_loss_gradient_is_finite_without_errors() -> None:
    phi_bl = torch.tensor([[3.0, 4.0], [1.0, 2.0]], requires_grad=True)
    loss = remedy_loss(phi_bl, torch.zeros(2, 2), torch.tensor([False, False]), tau=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(-0.2 * math.sqrt(30) / math.sqrt(2), rel=1e-5)
    assert torch.isfinite(phi_bl.grad).all()


def test_regularization_loss_matches_hand_computation() -> None:
    bleached = torch.tensor([[0.1, 0.2], [0.5, 0.52]]).view(2, 1, 1, 2)
    original = torch.tensor([[0.4, 0.6], [0.5, 0.5]]).view(2, 1, 1, 2)
    # image 1: I_bl − I_0 = [−0.3, −0.4] → RMS √((0.09 + 0.16) / 2); image 2: [0, 0.02] → √(0.0004 / 2)
    expected = 50 * (math.sqrt(0.25 / 2) + math.sqrt(0.0004 / 2)) / 2
    assert regularization_loss(bleached, original, k=50.0).item() == pytest.approx(expected, rel=1e-5)


def test_regularization_loss_is_minimal_at_the_identity_bleach() -> None:
    """Eq. 6 as read here: 0 when the bleached image is the input (as printed, ‖k·I_bl − I_0‖ was
    49·RMS(I_0) there and minimal at I_0 / k, a near-black image)."""
    original = torch.rand(2, 3, 8, 8)
    assert regularization_loss(original, original, k=50.0).item() == pytest.approx(0.0, abs=1e-4)
    assert regularization_loss(original / 50, original, k=50.0).item() > 10.0
    # larger k: a larger penalty on the same bleach (k "alleviates the corruption", Sec. III-C2)
    bleached = (original + 0.05).clamp(0, 1)
    assert regularization_loss(bleached, original, 50.0) > regularization_loss(bleached, original, 5.0)


# --------------------------------------------------------------------------- networks
def test_generator_reaches_any_crop_size() -> None:
    for size in (32, 64, 299):
        out = DCGANGenerator(32, 8, size, width=16)(torch.zeros(2, 32, 8, 8))
        assert out.shape == (2, 3, size, size)
        assert out.abs().max() <= 1.0


def test_feature_projection_only_when_the_feature_does_not_reshape(fitted_erm) -> None:
    assert isinstance(PixelBleach(fitted_erm, small_config()).project, torch.nn.Linear)  # resnet10t: 512-d
    assert isinstance(PixelBleach(fitted_erm, small_config(), feature_dim=2048).project, torch.nn.Identity)


def test_zero_scale_bleach_returns_the_input(fitted_erm) -> None:
    bleach = PixelBleach(fitted_erm, small_config(bleach_scale=0.0)).eval()
    x = torch.rand(4, 3, SIZE, SIZE)
    out = bleach(x)
    assert torch.equal(out.bleached, x)
    live = PixelBleach(fitted_erm, small_config(bleach_scale=1.0)).eval()
    assert not torch.equal(live(x).bleached, x)  # the comparison can fail: a real bleach moves pixels


def test_features_and_logits_match_the_detector_methods(fitted_erm) -> None:
    x = fitted_erm.normalize(torch.rand(2, 3, SIZE, SIZE))
    phi, logits = features_and_logits(fitted_erm, x)
    assert torch.equal(phi, fitted_erm.features(x).flatten(1)) and torch.equal(logits, fitted_erm.logits(x))


def crops(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[0, 1] crops: a flat colour each + noise, mean brightness ≈ 0.5."""
    g = torch.Generator().manual_seed(0)
    colour = 0.25 + 0.5 * torch.rand(n, 3, 1, 1, generator=g)
    return (colour + 0.04 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1), torch.arange(n) % 2


def test_paper_preset_bleach_step_keeps_brightness_and_shrinks_the_bleach() -> None:
    """One Eq. 7 step at the paper preset's shapes (legacy_xception, 299 px, generator width 512,
    random init, batch 2). Stated range: mean(I_bl) / mean(I_0) within 1 ± 0.02 before and
    after the step; L_reg's gradient pushes about half of the pixels darker (40–60 %) and the
    step shrinks RMS(I_bl − I_0) by ≥ 5 %. Measured: mean ratio 0.997 → 0.998, 50 % darker, RMS
    0.073 → 0.061. Eq. 6 as printed fails all three: 0.997 → 0.968, 100 % darker, RMS
    0.073 → 0.073 (docs/recipes/pbnet.md, "Eq. 6 and the sign of I")."""
    cfg = PBNetConfig.preset("paper", pretrained=False, batch_size=2)
    assert (cfg.backbone, cfg.input_size, cfg.generator_width, cfg.reg_k) == ("legacy_xception", 299, 512, 50.0)
    torch.manual_seed(0)
    frozen = create_detector(cfg.base_detector, preset=cfg.base_preset, backbone=cfg.backbone, input_size=cfg.input_size,
                             pretrained=False, mean=cfg.mean, std=cfg.std)
    bleach = PixelBleach(frozen, cfg).train()
    x, y = crops(2, cfg.input_size)
    seen = {}
    hook = bleach.register_forward_hook(lambda module, args, out: seen.update(out=out))
    loss, logs = bleach_loss(bleach, x, y)
    hook.remove()
    out = seen["out"]
    (grad,) = torch.autograd.grad(regularization_loss(out.bleached, x, cfg.reg_k), out.bleached, retain_graph=True)
    opt = torch.optim.Adam(bleach.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():  # φ, I and Δφ* do not change (frozen detector, same crops): only the generator moved
        after = (x + bleach.generate(out.delta)).clamp(0, 1)
    before = out.bleached.detach()
    rms = {k: float((v - x).pow(2).mean().sqrt()) for k, v in (("before", before), ("after", after))}
    for image in (before, after):
        assert float(image.mean() / x.mean()) == pytest.approx(1.0, abs=0.02)
    assert 0.4 < float((grad > 0).float().mean()) < 0.6
    assert 0.0 < rms["after"] < 0.95 * rms["before"]
    assert logs["l_reg"] == pytest.approx(cfg.reg_k * rms["before"], rel=0.05)  # k · RMS, per image then averaged


# --------------------------------------------------------------------------- training
def test_balanced_offset_set_is_errors_plus_equal_correct_sample() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.8, 0.7, 0.6])  # FP at 0, FN at 4
    chosen = balanced_offset_set(labels, scores, np.random.default_rng(0))
    assert chosen.errors.tolist() == [0, 4]
    assert (chosen.n_fp, chosen.n_fn) == (1, 1)
    assert len(chosen.correct) == 2 and set(chosen.correct) <= {1, 2, 3, 5, 6, 7}
    assert chosen.indices.tolist() == sorted([0, 4, *chosen.correct.tolist()])
    again = balanced_offset_set(labels, scores, np.random.default_rng(0))
    assert again.indices.tolist() == chosen.indices.tolist()  # seeded
    # more errors than correct frames: every correct frame joins
    many = balanced_offset_set(labels, 1 - scores, np.random.default_rng(0))
    assert many.errors.tolist() == [1, 2, 3, 5, 6, 7] and many.correct.tolist() == [0, 4]


def test_frozen_detector_is_bit_identical_after_bleach_training(fitted_erm, tmp_path: Path) -> None:
    before = {k: {n: t.clone() for n, t in s.items()} for k, s in fitted_erm.inference_state().items()}
    cfg = small_config(epochs=2)
    torch.manual_seed(0)  # train_bleach seeds 0 before building its bleach: same initial weights
    probe = PixelBleach(fitted_erm, cfg)
    bleach = train_bleach(fitted_erm, tiny_frames("c40", "train"), tiny_frames("c40", "val"), cfg, seed=0,
                          checkpoint_dir=tmp_path)
    after = fitted_erm.inference_state()
    for key, state in before.items():
        for name, tensor in state.items():
            assert torch.equal(tensor, after[key][name]), f"{key}.{name} changed"
    assert not any(p.requires_grad for p in fitted_erm.model.parameters())
    assert not fitted_erm.model.training
    assert bleach.stats["n_errors"] > 0 and len(bleach.report.history) == 2
    # the bleach itself did learn (same initial weights, moved by training)
    assert any(not torch.equal(a, b) for a, b in zip(probe.state_dict().values(), bleach.state_dict().values()))
    # save → load round trip, bound to the detector's weights
    save_bleach(bleach, tmp_path / "b.pt", seed=0)
    again = load_bleach(tmp_path / "b.pt", fitted_erm, config=cfg, seed=0)
    frames = tiny_frames("c40", "test")
    assert np.array_equal(again.predict(frames), bleach.predict(frames))
    assert load_bleach(tmp_path / "b.pt", fitted_erm, config=cfg, seed=1) is None


def test_registered_pbnet_fits_both_stages_and_round_trips(tmp_path: Path) -> None:
    det = create_detector("pbnet", input_size=SIZE, epochs=1, batch_size=8, generator_width=16)
    assert isinstance(det, BleachedDetector) and det.config.offset_m == 0.7
    assert create_detector("pbnet_m0").config.offset_m == 0.0
    report = det.fit(tiny_frames("c40", "train"), tiny_frames("c40", "val"), seed=0, checkpoint_dir=tmp_path / "ck")
    assert report.epochs_run == 1 and (tmp_path / "ck" / "base" / "train_state.pt").exists()
    frames = tiny_frames("c40", "test")
    scores = det.predict(frames)
    assert scores.shape == (len(frames),) and np.all((scores >= 0) & (scores <= 1))
    # the bleached score is the frozen detector's score of the bleached image
    x = det.base.resize(torch.from_numpy(frames.images).permute(0, 3, 1, 2).float() / 255)
    direct = det.base.predict(torch.from_numpy((det.bleach.bleach_images(x).detach() * 255).round().byte().numpy()))
    assert np.abs(direct - scores).max() < 0.05  # up to 8-bit re-quantisation of the bleached image
    det.save(tmp_path / "pbnet.pt")
    loaded = create_detector("pbnet", input_size=SIZE, generator_width=16).load(tmp_path / "pbnet.pt")
    assert np.allclose(loaded.predict(frames), scores, atol=1e-6)
    # from_parts: wrapping the fitted base and its bleach scores the same
    assert np.allclose(BleachedDetector.from_parts(det.base, det.bleach).predict(frames), scores, atol=1e-6)


# --------------------------------------------------------------------------- procedure
SPEC = {
    "name": "compression_remedy_tiny", "version": 1, "procedure": "compression_remedy",
    "metrics": ["auc", "acc"], "frames": {"train": 4, "test": 4},
    "trainings": [{"name": "FS/c23", "data": [{"dataset": "ffpp", "methods": ["FaceSwap"], "qualities": ["c23"]}]}],
    "tests": [{"name": "FS/c40", "data": [{"dataset": "ffpp", "methods": ["FaceSwap"], "qualities": ["c40"]}]}],
    "options": {"bleaches": [{"variant": "detector+bleach", "qualities": ["c40"]},
                             {"variant": "detector+bleach/c23", "qualities": ["c23"], "trainings": ["FS/c23"]}]},
}


def make_ctx(tmp_path: Path, store: ResultsStore, loads: list) -> RunContext:
    def loader(data, split, per_video, requires):
        (quality,) = data[0].qualities
        loads.append((quality, split))
        return tiny_frames(quality, split, frames=per_video)

    return RunContext(
        spec=parse_protocol(SPEC, "test"), detector_name="erm", preset="mini", seed=0, device="cpu",
        run_dir=tmp_path, frame_loader=loader, store=store,
        detector_overrides={"input_size": SIZE, "epochs": 1, "batch_size": 16}, log=lambda msg: None,
        run_meta={"protocol": SPEC["name"], "detector": "erm", "seed": 0},
    )


def test_procedure_scores_detector_and_bleach_variants(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(PBNetConfig, "PRESETS", {**PBNetConfig.PRESETS, "mini": {
        **PBNetConfig.PRESETS["mini"], "epochs": 1, "batch_size": 8, "generator_width": 16}})
    assert PROCEDURES.get("compression_remedy") is compression_remedy
    store, loads = ResultsStore(tmp_path / "results"), []
    compression_remedy(make_ctx(tmp_path, store, loads))
    rows = store.read_run(tmp_path)
    assert len(rows) == 3 * 2 * 2  # 3 variants × (auc, acc) × (frame, video)
    assert set(rows["variant"]) == {"detector", "detector+bleach", "detector+bleach/c23"}
    acc = rows[(rows.metric == "acc") & (rows.level == "frame")].set_index("variant")
    assert acc.loc["detector+bleach", "bleach_quality"] == "c40"
    assert acc.loc["detector+bleach/c23", "bleach_quality"] == "c23"
    assert (acc["fp"] + acc["fn"] + acc["value"] * (acc["n_real"] + acc["n_fake"])).round().eq(acc["n_real"] + acc["n_fake"]).all()
    # the detector trained at c23, bleaches at c40 and c23 training splits, tests at c40
    assert ("c23", "train") in loads and ("c40", "train") in loads and ("c40", "test") in loads
    preds = store.read_predictions(tmp_path)
    det_scores = preds[preds["variant"] == "detector"]["score"].to_numpy()
    bl_scores = preds[preds["variant"] == "detector+bleach"]["score"].to_numpy()
    assert len(det_scores) == len(bl_scores) > 0
    assert not np.array_equal(det_scores, bl_scores)
    assert (tmp_path / "work" / "pbnet" / "FS_c23--detector+bleach" / "bleach.pt").exists()
    # a rerun with every cell done does nothing; with one cell missing it reuses model and bleach
    loads.clear()
    compression_remedy(make_ctx(tmp_path, store, loads))
    assert loads == []
    key = cell_key("FS/c23", "FS/c40", "detector+bleach")
    (tmp_path / CELLS_DIR / f"{cell_id(key)}{CELL_DONE_SUFFIX}").unlink()  # as if it never finished
    compression_remedy(make_ctx(tmp_path, store, loads))
    assert loads == [("c40", "test")]
    preds = store.read_predictions(tmp_path)
    again = preds[preds["variant"] == "detector+bleach"]["score"].to_numpy()
    assert np.allclose(again, bl_scores, atol=1e-6)


def test_pbnet_detector_contributes_its_base_and_config(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, ResultsStore(tmp_path / "results"), [])
    ctx.detector_name, ctx.detector_overrides = "pbnet_m0", {"input_size": SIZE}
    frozen, config = frozen_and_config(ctx)
    assert frozen.name == "erm" and frozen.config.input_size == SIZE and config.offset_m == 0.0


def test_shipped_protocol_validates() -> None:
    spec = load_protocol("compression_remedy")
    assert spec.procedure == "compression_remedy" and len(spec.trainings) == 4
    plans = bleach_plans(spec.options, [t.name for t in spec.trainings], spec.name)
    assert [(p.variant, p.qualities) for p in plans] == [("detector+bleach", ("c40",)), ("detector+bleach/c23", ("c23",))]
    assert load_protocol("compression_remedy", preset="paper").frames_test == 300
    with pytest.raises(Exception, match="unknown training"):
        bleach_plans({"bleaches": [{"variant": "x", "qualities": ["c40"], "trainings": ["nope"]}]}, ["FS/c23"], "p")


def test_interrupted_bleach_resumes_to_the_same_weights_with_every_rng(fitted_erm, tmp_path: Path, caplog) -> None:
    """Issue #18 item 7: the bleach loop is the shared epoch loop; its checkpoint holds the
    torch, NumPy and Python RNG states (as Detector.fit's does) and a resumed run ends where an
    uninterrupted one does."""
    cfg = small_config(epochs=2)
    train, val = tiny_frames("c40", "train"), tiny_frames("c40", "val")
    whole = train_bleach(fitted_erm, train, val, cfg, seed=0)

    class Stop(Exception):
        pass

    def stop_in_epoch_2(label, step, total):
        if label.startswith("bleach epoch 2/"):
            raise Stop

    with pytest.raises(Stop):
        train_bleach(fitted_erm, train, val, cfg, seed=0, checkpoint_dir=tmp_path, progress=stop_in_epoch_2)
    saved = torch.load(tmp_path / "bleach_state.pt", weights_only=True)
    assert saved["next_epoch"] == 1 and set(saved["rng"]) == {"torch", "numpy", "python"}
    caplog.set_level("INFO", logger="dfbench")
    caplog.clear()
    resumed = train_bleach(fitted_erm, train, val, cfg, seed=0, checkpoint_dir=tmp_path)
    assert resumed.report.resumed_from_epoch == 1 and len(resumed.report.history) == 2
    # a notice, then one log line for the one epoch left (the shared epoch_line format)
    messages = [r.getMessage() for r in caplog.records if r.name == "dfbench.detectors.pbnet"]
    assert messages[0] == f"resuming the bleach from {tmp_path / 'bleach_state.pt'}: 1 of 2 epochs done"
    assert len(messages) == 2 and messages[1].startswith("bleach epoch 2/2: train loss ")
    assert f"val video AUC {resumed.report.history[1]['val_video_auc']:.4f}, lr {cfg.lr:.2e}, " in messages[1]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_procedure_loads_validation_with_validation_requires(tmp_path: Path, monkeypatch) -> None:
    """Issue #18 item 7: compression_remedy trains through the shared RunContext.train_model,
    so validation frames come without training-only extras (as train_test loads them)."""
    from dfbench.detectors.base import Detector

    class Stop(Exception):
        pass

    seen = []
    monkeypatch.setattr(Detector, "requires", frozenset({"qualities", "landmarks"}))
    monkeypatch.setattr(RunContext, "fit", lambda self, det, name, train, val: (_ for _ in ()).throw(Stop()))
    ctx = make_ctx(tmp_path, ResultsStore(tmp_path / "results"), [])
    inner = ctx.frame_loader

    def loader(data, split, per_video, requires):
        seen.append((split, requires))
        return inner(data, split, per_video, requires)

    ctx.frame_loader = loader
    with pytest.raises(Stop):
        compression_remedy(ctx)
    assert seen == [("train", ("landmarks", "qualities")), ("val", ("landmarks",))]


def test_bleach_trains_in_the_frozen_detectors_precision_with_fp32_losses(fitted_erm, monkeypatch) -> None:
    """Issue #14: the bleach step runs under the frozen detector's autocast (bf16 here, on the
    CPU), its losses stay fp32, and no loss value is read back to the host inside a step."""
    from dfbench.detectors import pbnet as pbnet_module
    from dfbench.testing import _float_reads

    frozen = copy.deepcopy(fitted_erm)
    frozen.config = dataclasses.replace(frozen.config, precision="bf16")
    seen, reads = [], []
    real_loss = pbnet_module.bleach_loss

    def spied(bleach, x, labels):
        with _float_reads(reads):
            loss, logs = real_loss(bleach, x, labels)
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), loss.dtype))
        return loss, logs

    monkeypatch.setattr(pbnet_module, "bleach_loss", spied)
    bleach = train_bleach(frozen, tiny_frames("c40", "train"), tiny_frames("c40", "val"), small_config(), seed=0)
    assert bleach.report.precision == "bf16"
    assert seen and all(on and dtype == torch.bfloat16 and loss == torch.float32 for on, dtype, loss in seen)
    assert not reads, reads
    logs = bleach.report.history[0]
    assert all(np.isfinite(logs[k]) for k in ("loss", "l_rem", "l_reg", "l_ce"))
    assert np.all(np.isfinite(bleach.predict(tiny_frames("c40", "test"))))
