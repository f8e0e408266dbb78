"""PIM / SAM / DualFlat (detectors/gradient_regularization.py) against hand computations of
the paper's equations (Eqs. 6, 7, 9, 12, 14; Algorithm 1), on a tiny resnet10t."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.detectors.base import Detector, DetectorConfig, create_detector
from dfbench.detectors.gradient_regularization import (
    GradientRegularizationConfig,
    PerturbationInjectionModule,
    find_shallow_layers,
)

SIZE = 32
EPS = 1e-5


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster and avoids oversubscribing shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_detector(name: str, **overrides) -> Detector:
    torch.manual_seed(0)
    det = create_detector(name, input_size=SIZE, **overrides)
    det.ensure_built()
    det.setup_training()
    det.model.train()
    return det


def make_batch(n: int = 8, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g),
        "label": torch.tensor([0, 1] * (n // 2)),
    }


def record_step(det: Detector) -> dict[str, list[torch.Tensor]]:
    """Replace the optimiser step by a recorder of the weights and gradients it would use."""
    seen: dict[str, list[torch.Tensor]] = {}

    def step(*args, **kwargs):
        params = list(det.model.parameters())
        seen["params"] = [p.detach().clone() for p in params]
        seen["grads"] = [p.grad.detach().clone() for p in params]

    det.optimizers["model"].step = step
    return seen


def hand_reference(model, x, y, stage_name, r, r_prime, delta=None, epsilon=None):
    """Eqs. 6-7, 9 and Eq. 14's weight ascent written out directly, on a copy of the model.

    Returns g1 = ∇θ L, g2 = ∇θ L(f'), g3 = ∇θ L(θ + ε), Δ and ε by the hand formulas. g2 and g3
    are taken at ``delta`` / ``epsilon`` when given (the recipe's realised values, checked
    against the hand Δ, ε separately): resnet10t's max-pool makes gradients jump under
    weight changes of 1e-7, so float-rounding differences in ε would blur the comparison.
    """
    model = copy.deepcopy(model)
    params = list(model.parameters())
    stage = model.get_submodule(stage_name)
    g1 = torch.autograd.grad(F.cross_entropy(model(x), y), params)

    def eq7_hook(d_mu, d_sigma):
        def hook(module, inputs, f):
            mu = f.mean(dim=(2, 3), keepdim=True)
            sigma = (((f - mu) ** 2).mean(dim=(2, 3), keepdim=True) + EPS).sqrt()
            f_norm = (f - mu) / sigma  # Eq. 6
            return f_norm * (sigma + d_sigma.view(1, -1, 1, 1)) + (mu + d_mu.view(1, -1, 1, 1))  # Eq. 7

        return stage.register_forward_hook(hook)

    probe = {}
    h = stage.register_forward_hook(lambda m, i, o: probe.update(c=o.shape[1]))
    model(x)
    h.remove()
    d_mu = torch.zeros(probe["c"], requires_grad=True)
    d_sigma = torch.zeros(probe["c"], requires_grad=True)
    h = eq7_hook(d_mu, d_sigma)
    g_mu, g_sigma = torch.autograd.grad(F.cross_entropy(model(x), y), (d_mu, d_sigma))
    h.remove()
    norm = torch.sqrt((g_mu**2).sum() + (g_sigma**2).sum())
    hand_delta = (r * g_mu / norm, r * g_sigma / norm)  # Eq. 9
    h = eq7_hook(*(hand_delta if delta is None else delta))
    g2 = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    h.remove()
    gnorm = torch.sqrt(sum((g**2).sum() for g in g1))
    hand_epsilon = [r_prime * g / gnorm for g in g1]  # Eq. 14: ε = r′ ∇θL / ‖∇θL‖
    with torch.no_grad():
        for p, e in zip(params, hand_epsilon if epsilon is None else epsilon):
            p.add_(e)
    g3 = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    return g1, g2, g3, hand_delta, hand_epsilon


def assert_grads_close(a, b, atol=1e-5, rtol=1e-4):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=atol, rtol=rtol)


# ----------------------------------------------------------------------------- PIM
def test_pim_with_r_zero_gives_exactly_the_erm_gradient():
    batch = make_batch()
    pim = make_detector("pim", r=0.0)
    erm = Detector(DetectorConfig.preset("mini", backbone="resnet10t", input_size=SIZE))
    erm.model = copy.deepcopy(pim.model)
    loss = F.cross_entropy(erm.model(erm.preprocess(batch["image"])), batch["label"])
    erm_grads = torch.autograd.grad(loss, list(erm.model.parameters()))
    seen = record_step(pim)
    pim.training_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(seen["grads"], erm_grads))
    # and with r = 0.1 the gradient is a different one (the test can fail)
    pim01 = make_detector("pim", r=0.1)
    seen01 = record_step(pim01)
    pim01.training_step(batch)
    assert not all(torch.allclose(a, b) for a, b in zip(seen01["grads"], erm_grads))


def test_pim_delta_has_norm_r_along_the_statistics_gradient_and_g2_matches_hand():
    batch = make_batch()
    det = make_detector("pim")  # r = 0.1, alpha = 1
    x, y = det.preprocess(batch["image"]), batch["label"]
    before = copy.deepcopy(det.model)
    seen = record_step(det)
    logs = det.training_step(batch)
    assert det.pim.names == ["layer1.0"]  # resnet10t: layer1 has one block
    ((d_mu, d_sigma),) = det.last_delta
    _, g2, _, delta, _ = hand_reference(before, x, y, "layer1.0", 0.1, 0.05, delta=det.last_delta[0])
    assert d_mu.shape == d_sigma.shape == (64,)  # resnet10t layer1: 64 channels, shared over the batch
    assert torch.sqrt((d_mu**2).sum() + (d_sigma**2).sum()).item() == pytest.approx(0.1, rel=1e-5)
    assert logs["delta_norm"] == pytest.approx(0.1, rel=1e-5)
    torch.testing.assert_close(d_mu, delta[0], atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(d_sigma, delta[1], atol=1e-6, rtol=1e-4)
    cosine = torch.dot(torch.cat([d_mu, d_sigma]), torch.cat(delta)) / 0.1**2
    assert cosine.item() == pytest.approx(1.0, abs=1e-5)  # along ∇_{μ,σ} L
    assert_grads_close(seen["grads"], g2)  # alpha = 1: Eq. 12 keeps only L(f')


def test_eq7_perturbed_features_match_hand_formula():
    det = make_detector("pim")
    model = det.model
    pim = PerturbationInjectionModule(model)
    assert pim.names == ["layer1.0"]
    (stage,) = pim.modules
    g = torch.Generator().manual_seed(3)
    d_mu, d_sigma = torch.randn(64, generator=g) * 0.3, torch.randn(64, generator=g) * 0.3
    raw, out = {}, {}
    h1 = stage.register_forward_hook(lambda m, i, o: raw.update(f=o.detach().clone()))
    with pim.inject([(d_mu, d_sigma)]):
        h2 = stage.register_forward_hook(lambda m, i, o: out.update(f=o.detach().clone()))
        model(det.preprocess(make_batch()["image"]))
    h1.remove(), h2.remove()
    f = raw["f"]
    mu = f.mean(dim=(2, 3), keepdim=True)
    sigma = (((f - mu) ** 2).mean(dim=(2, 3), keepdim=True) + EPS).sqrt()
    expected = (f - mu) / sigma * (sigma + d_sigma.view(1, -1, 1, 1)) + (mu + d_mu.view(1, -1, 1, 1))
    torch.testing.assert_close(out["f"], expected, atol=1e-5, rtol=1e-5)
    # per-channel statistics of f' are (μ + Δμ, σ + Δσ) up to ε
    new_mu = out["f"].mean(dim=(2, 3))
    torch.testing.assert_close(new_mu, (mu.squeeze() + d_mu).expand_as(new_mu), atol=1e-4, rtol=1e-4)


def test_inference_output_identical_with_and_without_the_module():
    det = make_detector("pim")
    plain = copy.deepcopy(det.model).eval()
    model = det.model.eval()
    x = det.preprocess(make_batch()["image"])
    pim = det.pim
    reference = plain(x)
    assert torch.equal(model(x), reference)
    big = torch.full((64,), 0.5)
    with pim.inject([(big, big)]):
        assert torch.equal(model(x), reference)  # eval: the hook does nothing
        model.train()
        perturbed = model(x)
        model.eval()
    assert not torch.allclose(perturbed, plain.train()(x))  # training mode: it does perturb
    assert not any(m._forward_hooks for m in pim.modules)  # no hook survives outside a training step


# ----------------------------------------------------------------------------- SAM, DualFlat
def test_sam_restores_weights_before_the_step_and_uses_the_ascended_gradient():
    batch = make_batch()
    det = make_detector("sam")
    assert det.pim is None
    before = [p.detach().clone() for p in det.model.parameters()]
    x, y = det.preprocess(batch["image"]), batch["label"]
    model_before = copy.deepcopy(det.model)
    seen = record_step(det)
    det.training_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(seen["params"], before))  # θ restored exactly
    g1, _, g3, _, hand_eps = hand_reference(model_before, x, y, "layer1", 0.1, 0.05, epsilon=det.last_epsilon)
    eps_norm = torch.sqrt(sum((e**2).sum() for e in det.last_epsilon)).item()
    assert eps_norm == pytest.approx(0.05, rel=1e-5)
    assert_grads_close(det.last_epsilon, hand_eps, atol=1e-8, rtol=1e-5)
    assert_grads_close(seen["grads"], g3)  # beta = 1: the gradient at θ + r′ g/‖g‖
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g3, g1))


def test_dualflat_gradient_is_eq14_mixture():
    batch = make_batch()
    det = make_detector("dualflat")
    cfg = det.config
    assert (cfg.alpha, cfg.beta, cfg.r, cfg.r_prime) == (0.1, 0.1, 0.1, 0.05)
    x, y = det.preprocess(batch["image"]), batch["label"]
    before = copy.deepcopy(det.model)
    seen = record_step(det)
    det.training_step(batch)
    g1, g2, g3, delta, eps = hand_reference(
        before, x, y, det.pim.names[0], cfg.r, cfg.r_prime, delta=det.last_delta[0], epsilon=det.last_epsilon
    )
    assert_grads_close(det.last_delta[0], delta, atol=1e-6)
    assert_grads_close(det.last_epsilon, eps, atol=1e-8)
    expected = [0.8 * a + 0.1 * b + 0.1 * c for a, b, c in zip(g1, g2, g3)]
    assert_grads_close(seen["grads"], expected)


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_frames() -> FrameSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(32, SIZE, SIZE, 3), dtype=np.uint8)
    video = np.arange(32) // 4  # 8 videos of 4 frames
    labels = video % 2
    images[labels == 1, :4] = 255  # a learnable cue
    meta = pd.DataFrame({"video_id": [f"v{v}" for v in video], "label": labels, "frame": np.arange(32) % 4})
    return FrameSet(images, meta)


@pytest.mark.parametrize("name", ["pim", "sam", "dualflat"])
def test_recipe_trains_end_to_end_and_predicts_probabilities(name, tiny_frames):
    det = create_detector(name, input_size=SIZE, epochs=2, batch_size=8, max_steps_per_epoch=2)
    report = det.fit(tiny_frames, tiny_frames, seed=0)
    assert report.epochs_run == 2 and len(report.history) == 2
    assert np.isfinite(report.history[-1]["loss"])
    scores = det.predict(tiny_frames)
    assert scores.shape == (32,) and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    # the inference network is the bare backbone: a plain Detector with its weights agrees exactly
    plain = Detector(DetectorConfig.preset("mini", backbone="resnet10t", input_size=SIZE))
    plain.load_inference_state(det.inference_state())
    np.testing.assert_array_equal(plain.predict(tiny_frames), scores)


# ----------------------------------------------------------------------------- config, stage
def test_config_presets_and_validation():
    paper = GradientRegularizationConfig.preset("paper")
    assert (paper.backbone, paper.input_size, paper.batch_size, paper.epochs) == ("convnext_base", 224, 64, 100)
    assert (paper.alpha, paper.r, paper.r_prime, paper.optimizer) == (1.0, 0.1, 0.05, "sgd")
    mini = create_detector("sam").config
    assert (mini.backbone, mini.input_size, mini.batch_size, mini.alpha, mini.beta) == ("resnet10t", 64, 32, 0.0, 1.0)
    with pytest.raises(ConfigError, match="alpha \\+ beta <= 1"):
        GradientRegularizationConfig(alpha=0.8, beta=0.5)
    with pytest.raises(ConfigError, match="r=-0.1"):
        GradientRegularizationConfig(r=-0.1)


def test_shallow_layers_are_every_block_of_the_first_stage():
    import timm

    assert find_shallow_layers(timm.create_model("convnext_atto", num_classes=2)) == [
        ("stages.0.blocks.0", 40), ("stages.0.blocks.1", 40)]
    assert find_shallow_layers(timm.create_model("efficientnet_b0", num_classes=2)) == [("blocks.1.0", 24), ("blocks.1.1", 24)]
    model = timm.create_model("resnet10t", num_classes=2)
    assert find_shallow_layers(model) == [("layer1.0", 64)]
    assert find_shallow_layers(model, "layer2, layer3.0") == [("layer2", 128), ("layer3.0", None)]
    with pytest.raises(ConfigError, match="pim_layers: 'nope'"):
        find_shallow_layers(model, "nope")


def test_two_layers_share_one_eq9_norm_and_each_gets_its_own_delta():
    batch = make_batch()
    det = make_detector("pim", pim_layers="layer1, layer2")
    logs = det.training_step(batch)
    (m1, s1), (m2, s2) = det.last_delta
    assert m1.shape == s1.shape == (64,) and m2.shape == s2.shape == (128,)
    joint = torch.sqrt(sum((d**2).sum() for d in (m1, s1, m2, s2))).item()
    assert joint == pytest.approx(0.1, rel=1e-5) and logs["delta_norm"] == pytest.approx(0.1, rel=1e-5)
    assert torch.sqrt((m1**2).sum() + (s1**2).sum()).item() < 0.1  # both layers take part
    assert torch.sqrt((m2**2).sum() + (s2**2).sum()).item() < 0.1


# ----------------------------------------------------------------------------- paper shapes
def spy_on(pim: PerturbationInjectionModule) -> list[tuple[str, bool, float | None]]:
    """(layer, training mode, max |f' − f| or None when the hook left the output alone) per call."""
    calls: list[tuple[str, bool, float | None]] = []
    hook = pim._hook

    def spy(index, module, f):
        out = hook(index, module, f)
        calls.append((pim.names[index], module.training, None if out is None else float((out - f).abs().max())))
        return out

    pim._hook = spy
    return calls


def test_paper_preset_convnext_every_stage0_block_is_perturbed_in_training_only():
    """ConvNeXt-base at 224 px (paper preset, random init, batch 2): a PIM on each of the three
    blocks of stage 0 (Sec. III-A). In a training step every one of them leaves its block's
    output unchanged in the Δ = 0 pass and changes it in the Eq. 7 pass; in eval mode none
    changes anything, even with a large Δ."""
    torch.manual_seed(0)
    det = create_detector("pim", preset="paper", pretrained=False, batch_size=2)
    cfg = det.config
    det.ensure_built()
    det.setup_training()
    det.model.train()
    blocks = ["stages.0.blocks.0", "stages.0.blocks.1", "stages.0.blocks.2"]
    assert (cfg.backbone, cfg.input_size) == ("convnext_base", 224) and det.pim.names == blocks
    calls = spy_on(det.pim)
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8, generator=g), "label": torch.tensor([0, 1])}
    logs = det.training_step(batch)
    assert [c[0] for c in calls] == blocks * 2 and all(c[1] for c in calls)
    assert all(c[2] == 0.0 for c in calls[:3])  # Algorithm 1 line 4: f' = f
    assert all(c[2] > 1e-3 for c in calls[3:])  # line 6: every block's output moved
    assert logs["delta_norm"] == pytest.approx(cfg.r, rel=1e-4)
    assert [d[0].shape[0] for d in det.last_delta] == [128, 128, 128]
    calls.clear()
    det.model.eval()
    big = torch.full((128,), 5.0)
    with torch.no_grad(), det.pim.inject([(big, big)] * 3):
        det.model(det.preprocess(batch["image"][:1]))
    assert calls == [(b, False, None) for b in blocks]  # eval: every hook returned None (output untouched)


def test_paper_shape_xception_pim_feeds_both_branches_of_the_next_block():
    """legacy_xception at 299 px (Table IV, random init, batch 2): the PIM sits on block1,
    whose output is read by block2's residual branch and its skip convolution; a perturbation
    there must reach both in training mode and neither in eval mode (timm marks the stage at
    block2.rep.0, which the skip bypasses)."""
    torch.manual_seed(0)
    det = create_detector("pim", preset="paper", backbone="legacy_xception", input_size=299, pretrained=False, batch_size=2)
    det.ensure_built()
    det.setup_training()
    model = det.model
    assert det.pim.layers == [("block1", 128)]
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(f"block2.{b}").register_forward_pre_hook(
        lambda m, args, b=b: seen.__setitem__(b, args[0].clone())) for b in ("rep", "skip")]
    x = torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    delta = [(torch.full((128,), 0.5), torch.full((128,), 0.5))]
    changed = {}
    with torch.no_grad():
        for mode in (True, False):
            model.train(mode)
            model(x)
            ref = dict(seen)
            with det.pim.inject(delta):
                model(x)
            changed[mode] = {b: float((seen[b] - ref[b]).abs().max()) for b in ("rep", "skip")}
    for h in hooks:
        h.remove()
    assert changed[True]["rep"] > 0.1 and changed[True]["skip"] > 0.1
    assert changed[False] == {"rep": 0.0, "skip": 0.0}
