"""Pixel-wise blur (Eq. 4-5) and the adversarial-training recipes of Wang et al. (TIP 2022)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import dfbench  # noqa: F401  (torchvision guard before timm)
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.detectors.adversarial_blur import (
    AdversarialGameConfig,
    PrecisionGenerator,
    TwoGenBAT,
    flow_warp,
    normalized_step,
)
from dfbench.detectors.base import create_detector, read_checkpoint
from dfbench.detectors.pixelwise_blur import pixelwise_gaussian_blur, pixelwise_gaussian_blur_sigma

TINY = {"backbone": "resnet10t", "input_size": 32, "batch_size": 8}
RECIPES = ["grad_aat", "grad_sat", "grad_bat", "gen_bat", "two_gen_bat", "combined_at", "grad_aat_3step", "grad_bat_3step"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one intra-op thread (2 OpenMP threads spin and run ~10x slower on a busy
    2-core machine); restored after each test so nothing leaks into other test files."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hand_gaussian_blur(x: torch.Tensor, sigma: float, k: int) -> torch.Tensor:
    """Ordinary blur: a normalised k×k Gaussian of Eq. 4, depthwise conv2d, reflect padding."""
    r = k // 2
    u = torch.arange(-r, r + 1, dtype=x.dtype)
    kernel = torch.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    weight = kernel.expand(c, 1, k, k).contiguous()
    return F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), weight, groups=c)


def tiny_frames(n: int, seed: int, size: int = 32) -> FrameSet:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1, : size // 2] //= 2  # a learnable difference between the classes
    meta = pd.DataFrame(
        {
            "video_id": [f"synth/{'fake' if y else 'real'}/raw/{i // 4:03d}" for i, y in enumerate(labels)],
            "frame": np.arange(n) % 4,
            "label": labels,
            "dataset": "synth",
            "method": np.where(labels == 1, "fake", "real"),
            "quality": "raw",
            "face_found": True,
        }
    )
    return FrameSet(images, meta)


# --------------------------------------------------------------------------- the blur op
@pytest.mark.parametrize(("sigma", "k"), [(1.3, 9), (0.7, 5), (3.0, 3)])
def test_constant_map_equals_ordinary_gaussian_blur(sigma: float, k: int) -> None:
    x = torch.rand(2, 3, 12, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sigma_map = torch.full((2, 1, 12, 11), sigma, dtype=torch.float64)
    expected = hand_gaussian_blur(x, sigma, k)
    torch.testing.assert_close(pixelwise_gaussian_blur_sigma(x, sigma_map, k), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(pixelwise_gaussian_blur(x, 1.0 / sigma_map, k), expected, rtol=0, atol=1e-12)


def test_vanishing_sigma_returns_the_input() -> None:
    x = torch.rand(2, 3, 10, 10)
    out_sigma = pixelwise_gaussian_blur_sigma(x, torch.zeros(2, 1, 10, 10), 9)
    out_precision = pixelwise_gaussian_blur(x, torch.full((2, 1, 10, 10), 1e4), 9)
    out_inf = pixelwise_gaussian_blur(x, torch.full((2, 1, 10, 10), math.inf), 9)
    for out in (out_sigma, out_precision, out_inf):
        torch.testing.assert_close(out, x, rtol=0, atol=1e-7)


def test_zero_precision_is_a_box_filter() -> None:
    x = torch.rand(1, 2, 8, 9, dtype=torch.float64)
    out = pixelwise_gaussian_blur(x, torch.zeros(1, 1, 8, 9, dtype=torch.float64), 3)
    box = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    torch.testing.assert_close(out, box, rtol=0, atol=1e-12)


def test_each_pixel_uses_its_own_sigma() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 9, 9, dtype=torch.float64, generator=gen)
    sigma = 0.3 + 2.0 * torch.rand(1, 1, 9, 9, dtype=torch.float64, generator=gen)
    out = pixelwise_gaussian_blur_sigma(x, sigma, 5)
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    for i, j in [(0, 0), (4, 6), (8, 1)]:  # a corner, the interior, an edge
        s = float(sigma[0, 0, i, j])
        weights = [[math.exp(-(u * u + v * v) / (2 * s * s)) for v in range(-2, 3)] for u in range(-2, 3)]
        total = sum(map(sum, weights))
        for c in range(3):
            value = sum(weights[a][b] * float(padded[0, c, i + a, j + b]) for a in range(5) for b in range(5)) / total
            assert float(out[0, c, i, j]) == pytest.approx(value, abs=1e-12)


def test_blur_is_differentiable_in_map_and_image() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 2, 6, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    p = (0.5 + torch.rand(1, 1, 6, 7, dtype=torch.float64, generator=gen)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: pixelwise_gaussian_blur(a, b, 5), (x, p))
    # a larger precision means less blur: on a sharp edge the gradient w.r.t. p is nonzero
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0
    p1 = torch.ones(1, 1, 8, 8, requires_grad=True)
    pixelwise_gaussian_blur(edge, p1, 9).sub(edge).square().sum().backward()
    assert p1.grad is not None and p1.grad[..., 3:5].abs().min() > 0 and p1.grad.sum() < 0


def test_blur_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="odd"):
        pixelwise_gaussian_blur(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8), 4)
    with pytest.raises(ValueError, match="precision map"):
        pixelwise_gaussian_blur(torch.rand(1, 3, 8, 8), torch.ones(1, 3, 8, 8), 3)
    with pytest.raises(ConfigError, match="blur_step_norm"):
        AdversarialGameConfig.preset("mini", blur_step_norm="l1")
    with pytest.raises(ConfigError, match="generator_max_sigma"):
        AdversarialGameConfig.preset("mini", generator_max_sigma=0.0)


# --------------------------------------------------------------------------- config
def test_presets_hold_the_paper_values() -> None:
    paper = AdversarialGameConfig.preset("paper")
    assert (paper.optimizer, paper.betas, paper.lr, paper.weight_decay) == ("radam", (0.9, 0.999), 5e-4, 5e-4)
    assert (paper.lr_step_epochs, paper.lr_gamma, paper.generator_lr, paper.kernel_size) == (10, 0.1, 2e-3, 9)
    assert paper.backbone.startswith("efficientnet") and paper.fgsm_epsilon == 16 / 255 and paper.blur_epsilon == 0.1
    mini = AdversarialGameConfig.preset("mini")
    assert (mini.backbone, mini.input_size, mini.batch_size, mini.epochs) == ("resnet10t", 64, 32, 6)
    assert create_detector("grad_bat_3step").config.attack_steps == 3


# --------------------------------------------------------------------------- attacks
def _built(name: str, **overrides):
    torch.manual_seed(0)
    det = create_detector(name, **{**TINY, **overrides})
    det.ensure_built()
    det.setup_training()
    return det


def _input_grad(det, x: torch.Tensor, y: torch.Tensor, transform) -> torch.Tensor:
    """∇ of the summed cross-entropy w.r.t. a variable, computed here independently (eval mode)."""
    det.model.eval()
    var = x.clone().requires_grad_(True)
    loss = F.cross_entropy(det.model(det.normalize(transform(var))), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, var)
    det.model.train()
    return grad


def test_fgsm_is_eq1() -> None:
    det = _built("grad_aat")
    x, y = torch.rand(6, 3, 32, 32), torch.tensor([0, 1, 0, 1, 1, 0])
    grad = _input_grad(det, x, y, lambda v: v)
    expected = (x + det.config.fgsm_epsilon * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(det.fgsm(x, y), expected, rtol=0, atol=1e-7)
    assert det.model.training and all(p.requires_grad for p in det.model.parameters())
    multi = _built("grad_aat_3step").fgsm(x, y)
    assert (multi - x).abs().max() <= det.config.fgsm_epsilon + 1e-6


def test_grad_bat_is_eq6_on_the_precision_map() -> None:
    det = _built("grad_bat", blur_step_norm="none")
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 1, 0])
    ones = torch.ones(4, 1, 32, 32)
    grad = _input_grad(det, ones, y, lambda p: pixelwise_gaussian_blur(x, p, 9))
    expected = (ones + det.config.blur_epsilon * grad).clamp_min(0)  # p = 1/σ, σ₀ = 1
    torch.testing.assert_close(det.adversarial_precision(x, y), expected, rtol=1e-5, atol=1e-9)
    # the default l2 step: each image's gradient rescaled to unit RMS, i.e. by √(H·W)/‖g‖₂
    assert AdversarialGameConfig().blur_step_norm == "l2"
    scale = 32.0 / grad.flatten(1).norm(dim=1).view(4, 1, 1, 1)
    expected_l2 = (ones + 0.1 * grad * scale).clamp_min(0)
    torch.testing.assert_close(_built("grad_bat").adversarial_precision(x, y), expected_l2, rtol=1e-5, atol=1e-6)
    # the linf-normalised step moves each image's map by exactly ε at its largest entry
    normed = _built("grad_bat", blur_step_norm="linf").adversarial_precision(x, y)
    torch.testing.assert_close((normed - 1).abs().amax(dim=(1, 2, 3)), torch.full((4,), 0.1), rtol=1e-5, atol=1e-6)


def test_normalized_step_survives_tiny_and_zero_gradients() -> None:
    g = torch.zeros(2, 1, 3, 3)
    g[0, 0, 1, 1], g[0, 0, 0, 2] = 3e-30, -4e-30  # squares underflow float32; the step must not
    for norm, expected in (("l2", [3.0 / math.sqrt(25 / 9), -4.0 / math.sqrt(25 / 9)]), ("linf", [0.75, -1.0])):
        step = normalized_step(g, norm)
        assert step[0, 0, 1, 1].item() == pytest.approx(expected[0], rel=1e-6)
        assert step[0, 0, 0, 2].item() == pytest.approx(expected[1], rel=1e-6)
        assert torch.equal(step[1], torch.zeros(1, 3, 3))  # an all-zero gradient stays zero, no NaN


def test_flow_warp_and_sat_flow() -> None:
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(flow_warp(x, torch.zeros(2, 2, 8, 8)), x, rtol=0, atol=1e-6)
    right = torch.zeros(2, 2, 8, 8)
    right[:, 1] = 1.0  # Δv = +1: pixel (i, j) takes x(i, j + 1); the last column clamps at the border
    shifted = flow_warp(x, right)
    torch.testing.assert_close(shifted[..., :-1], x[..., 1:], rtol=0, atol=1e-6)
    torch.testing.assert_close(shifted[..., -1], x[..., -1], rtol=0, atol=1e-6)
    det = _built("grad_sat")
    xs, y = torch.rand(4, 3, 32, 32), torch.tensor([1, 0, 1, 0])
    grad = _input_grad(det, torch.zeros(4, 2, 32, 32), y, lambda f: flow_warp(xs, f))
    torch.testing.assert_close(det.adversarial_flow(xs, y), det.config.flow_epsilon * grad.sign())


# --------------------------------------------------------------------------- generators
def test_generator_shapes_and_start() -> None:
    torch.manual_seed(0)
    gen = PrecisionGenerator(filters=8, blocks=2)
    p = gen(torch.rand(3, 3, 30, 31))
    assert p.shape == (3, 1, 30, 31)
    # zero head: p = 1/σ_max + e⁰ = 2, a uniform σ = 1/2 (σ_max = 1)
    torch.testing.assert_close(p, torch.full_like(p, 2.0))
    p.sum().backward()  # and the head learns from the first step
    assert gen.net[-1].weight.grad.abs().sum() > 0
    # the bound: however negative the head's output, p ≥ 1/σ_max (σ ≤ σ_max), never below
    wide = PrecisionGenerator(filters=8, blocks=1, max_sigma=2.5)
    with torch.no_grad():
        wide.net[-1].bias.fill_(-1e4)
    torch.testing.assert_close(wide(torch.rand(1, 3, 8, 8)), torch.full((1, 1, 8, 8), 0.4))


def _blurred_loss(det, x: torch.Tensor, y: torch.Tensor) -> float:
    det.model.eval()
    with torch.no_grad():
        blurred = pixelwise_gaussian_blur(x, det.precision_map(x, y), det.config.kernel_size)
        return float(F.cross_entropy(det.logits(det.normalize(blurred)), y))


@pytest.mark.parametrize("name", ["gen_bat", "two_gen_bat"])
def test_generator_step_raises_the_fixed_detectors_loss(name: str) -> None:
    # Adam's first step moves every weight by ~lr (RAdam's first steps are plain momentum SGD,
    # a change of ~1e-7 in the loss here): same update code, a step large enough to measure.
    det = _built(name, optimizer="adam")
    x, y = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 1] * 4)
    before_state = {k: v.clone() for k, v in det.model.state_dict().items()}
    loss_before = _blurred_loss(det, x, y)
    det.model.train()
    reported = det.generator_step(x, y)
    loss_after = _blurred_loss(det, x, y)
    assert reported == pytest.approx(loss_before, abs=1e-6)
    assert loss_after > loss_before + 1e-5  # ascent on Eq. 7's inner max
    for key, value in det.model.state_dict().items():  # detector (weights and BN stats) fixed
        assert torch.equal(value, before_state[key]), key


def test_two_gen_bat_routes_real_to_g_r_and_fake_to_g_f() -> None:
    det = _built("two_gen_bat")
    assert isinstance(det, TwoGenBAT)
    g_r, g_f = det.train_modules["generator_real"], det.train_modules["generator_fake"]
    seen: dict[str, torch.Tensor] = {}
    g_r.register_forward_pre_hook(lambda m, args: seen.__setitem__("real", args[0].detach().clone()))
    g_f.register_forward_pre_hook(lambda m, args: seen.__setitem__("fake", args[0].detach().clone()))
    x, y = torch.rand(7, 3, 32, 32), torch.tensor([0, 1, 1, 0, 1, 0, 0])
    # make G_f's output the constant precision 5 = 1/σ_max + e^o: zero its last conv, bias log 4
    head = g_f.net[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(math.log(4.0))
    p = det.precision_map(x, y)
    assert torch.equal(seen["real"], x[y == 0]) and torch.equal(seen["fake"], x[y == 1])
    torch.testing.assert_close(p[y == 1], torch.full_like(p[y == 1], 5.0))
    torch.testing.assert_close(p[y == 0], g_r(x[y == 0]))
    # a batch of real images updates G_r only
    f_before = [t.clone() for t in g_f.parameters()]
    r_before = [t.clone() for t in g_r.parameters()]
    det.generator_step(x[y == 0], y[y == 0])
    assert all(torch.equal(a, b) for a, b in zip(f_before, g_f.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(r_before, g_r.parameters()))


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_trains_and_infers_without_training_modules(name: str, tmp_path) -> None:
    train, val = tiny_frames(32, seed=1), tiny_frames(16, seed=2)
    det = create_detector(name, **TINY, epochs=2, max_steps_per_epoch=2)
    report = det.fit(train, val, seed=0, checkpoint_dir=tmp_path / "ckpt")
    assert report.epochs_run == 2 and all(math.isfinite(h["loss"]) and math.isfinite(h["loss_adv"]) for h in report.history)
    scores = det.predict(val)
    assert scores.shape == (16,) and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    gen_keys = sorted(k for k in det.train_modules)
    state = read_checkpoint(tmp_path / "ckpt" / "train_state.pt")
    assert sorted(state["modules"]) == sorted(["model", *gen_keys])  # generators resume with the run
    assert set(gen_keys) <= set(state["optimizers"])
    det.save(tmp_path / "det.pt")
    assert set(read_checkpoint(tmp_path / "det.pt")["state"]) == {"model"}  # no generator at inference
    fresh = create_detector(name, **TINY).load(tmp_path / "det.pt")
    assert fresh.train_modules == {}
    np.testing.assert_array_equal(fresh.predict(val), scores)
