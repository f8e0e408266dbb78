"""Is each recipe's defining mechanism active? PBNet's bleach, PIM's perturbation modules and
the laundering noise, measured at the toy and the paper preset's shapes (random init, CPU).

    python benchmarks/mechanisms_pbnet_pim.py                  # everything (a few minutes, 1 thread)
    python benchmarks/mechanisms_pbnet_pim.py --part pbnet     # or pim, noise
    python benchmarks/mechanisms_pbnet_pim.py --toy-steps 80 --paper-steps 2

PBNet: a frozen random-init detector and a fresh bleach trained with ``bleach_loss`` (Eq. 7)
and Adam (Sec. IV-A2) on fixed synthetic crops (flat colour + noise, half with a checkerboard);
reported per step: mean and std of the bleached image over those of the input, and the RMS of
I_bl − I_0 (pixels in [0, 1]), with the bleach in eval mode (BatchNorm running statistics). "toy" = mini preset (resnet10t, 64 px, generator width 64,
batch 8); "paper" = paper preset (legacy_xception, 299 px, generator width 512, batch 2).

PIM: for each backbone at its paper input size, the layers that get a perturbation module;
for each, the largest change of that layer's output when a unit (Δμ, Δσ) is injected, in
training mode and in eval mode, and whether the perturbation reaches every consumer of the
layer (Xception: both branches of the next block).

Noise: the mean absolute and RMS pixel change (0–255 levels) of ``gaussian_noise`` at each σ
of the laundering protocol, on a mid-grey image.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dfbench.benchmark.laundering import gaussian_noise
from dfbench.detectors import create_detector
from dfbench.detectors.gradient_regularization import GradientRegularizationConfig
from dfbench.detectors.pbnet import PBNetConfig, PixelBleach, bleach_loss

PIM_BACKBONES = (("convnext_base", 224), ("legacy_xception", 299), ("resnet50", 224), ("efficientnet_b4", 380))


def synthetic_crops(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[0, 1] crops: a flat colour per crop + noise; odd crops (label 1) carry a checkerboard."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    checker = (((yy + xx) % 2) * 2 - 1)[None, ...]
    images = []
    for i in range(n):
        img = g.uniform(60, 190, (3, 1, 1)) + g.normal(0, 10, (3, size, size)) + (20.0 * checker if i % 2 else 0.0)
        images.append(np.clip(img, 0, 255) / 255.0)
    return torch.tensor(np.stack(images), dtype=torch.float32), torch.arange(n) % 2


def image_stats(bleach: PixelBleach, x: torch.Tensor) -> dict[str, float]:
    bleach.eval()
    with torch.no_grad():
        out = bleach(x).bleached
    bleach.train()
    return {
        "mean_ratio": float(out.mean() / x.mean()),
        "std_ratio": float(out.std() / x.std()),
        "rms_diff": float((out - x).pow(2).mean().sqrt()),
    }


def pbnet(preset: str, steps: int, batch: int, report_at: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    cfg = PBNetConfig.preset(preset, pretrained=False)
    detector = create_detector(cfg.base_detector, preset=cfg.base_preset, backbone=cfg.backbone,
                               input_size=cfg.input_size, pretrained=False, mean=cfg.mean, std=cfg.std)
    detector.ensure_built()
    bleach = PixelBleach(detector, cfg)
    x, y = synthetic_crops(batch, cfg.input_size)
    opt = torch.optim.Adam(bleach.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    print(f"\n## PBNet {preset}: {cfg.backbone} {cfg.input_size} px, generator width {cfg.generator_width}, batch {batch}, "
          f"k = {cfg.reg_k}, m = {cfg.offset_m}")
    print("| step | mean(I_bl)/mean(I_0) | std(I_bl)/std(I_0) | RMS(I_bl − I_0) | L_reg | L_ce | s/step |")
    print("|---|---|---|---|---|---|---|")
    s = image_stats(bleach, x)
    print(f"| 0 | {s['mean_ratio']:.3f} | {s['std_ratio']:.3f} | {s['rms_diff']:.4f} | | | |")
    bleach.train()
    for step in range(1, steps + 1):
        start = time.perf_counter()
        loss, logs = bleach_loss(bleach, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        took = time.perf_counter() - start
        if step in report_at or step == steps:
            s = image_stats(bleach, x)
            print(f"| {step} | {s['mean_ratio']:.3f} | {s['std_ratio']:.3f} | {s['rms_diff']:.4f} | "
                  f"{logs['l_reg']:.3f} | {logs['l_ce']:.3f} | {took:.2f} |")


def pim(backbone: str, size: int) -> None:
    torch.manual_seed(0)
    det = create_detector("pim", preset="paper", backbone=backbone, input_size=size, pretrained=False, batch_size=2)
    det.ensure_built()
    det.setup_training()
    model, module = det.model, det.pim
    x = torch.randn(2, 3, size, size)
    print(f"\n## PIM {backbone} {size} px: {len(module.names)} module(s) at {module.names}")
    print("| layer | channels | max abs change of its output, train | same, eval | reaches every consumer |")
    print("|---|---|---|---|---|")
    for index, (name, channels) in enumerate(module.layers):
        consumers = _consumers(model, name)
        seen: dict[str, torch.Tensor] = {}

        def grab(key: str, tensor: torch.Tensor, seen: dict[str, torch.Tensor] = seen) -> None:
            seen[key] = tensor.detach().clone()

        handles = [m.register_forward_pre_hook(lambda mod, args, key=c: grab(key, args[0])) for c, m in consumers]
        ones = torch.ones(channels)
        deltas = [(ones, ones) if i == index else (0 * ones, 0 * ones) for i in range(len(module.layers))]
        change, reaches = [], False
        for train in (True, False):
            model.train(train)
            with torch.no_grad():
                model(x)
                ref = dict(seen)
                with module.inject(deltas):
                    model(x)
            change.append(max(float((seen[c] - ref[c]).abs().max()) for c, _ in consumers))
            if train:
                reaches = all(not torch.equal(seen[c], ref[c]) for c, _ in consumers)
        for h in handles:
            h.remove()
        print(f"| {name} | {channels} | {change[0]:.3g} | {change[1]:.3g} | {reaches} ({', '.join(c for c, _ in consumers)}) |")
    model.train()


def _consumers(model: torch.nn.Module, name: str) -> list[tuple[str, torch.nn.Module]]:
    """Modules that read ``name``'s output directly (by architecture, for the backbones above)."""
    if name.endswith(".rep.0"):  # timm Xception: the first op of a block's residual branch; the skip reads the block input
        block = name[: -len(".rep.0")]
        return [(f"{block}.rep.1", model.get_submodule(f"{block}.rep.1")), (f"{block}.skip", model.get_submodule(f"{block}.skip"))]
    if name.startswith("block") and "." not in name:  # Xception block N → block N+1's two branches
        nxt = f"block{int(name[5:]) + 1}"
        return [(f"{nxt}.rep", model.get_submodule(f"{nxt}.rep")), (f"{nxt}.skip", model.get_submodule(f"{nxt}.skip"))]
    # a sequential stage or block: whatever runs next in forward order
    names = [n for n, _ in model.named_modules()]
    after = [n for n in names[names.index(name) + 1 :] if not n.startswith(name + ".") and n.count(".") <= name.count(".") + 1]
    return [(after[0], model.get_submodule(after[0]))] if after else []


def noise() -> None:
    grey = np.full((4, 64, 64, 3), 128, np.uint8)
    print("\n## gaussian_noise on a mid-grey 64 px image (pixel change in 0–255 levels)")
    print("| σ | mean |Δ| | RMS Δ | share of pixels changed |")
    print("|---|---|---|---|")
    for sigma in (0.1, 0.2, 0.3, 0.4, 0.5):
        d = gaussian_noise(grey, sigma, np.random.default_rng(0)).astype(float) - 128
        print(f"| {sigma} | {np.abs(d).mean():.3f} | {np.sqrt((d**2).mean()):.3f} | {(d != 0).mean():.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "pbnet", "pim", "noise"), default="all")
    parser.add_argument("--toy-steps", type=int, default=80)
    parser.add_argument("--paper-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.part in ("all", "pbnet"):
        pbnet("mini", args.toy_steps, 8, (1, 10, 20, 40))
        pbnet("paper", args.paper_steps, 2, (1,))
    if args.part in ("all", "pim"):
        assert GradientRegularizationConfig.preset("paper").backbone == PIM_BACKBONES[0][0]
        for backbone, size in PIM_BACKBONES:
            pim(backbone, size)
    if args.part in ("all", "noise"):
        noise()


if __name__ == "__main__":
    main()
