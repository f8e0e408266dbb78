"""Training-step time of the adversarial recipes of Wang et al. (TIP 2022) against ERM.

Every variant (plain ERM ``Detector`` from detectors/base.py, and each recipe) is built
with the same backbone, input size and batch, then timed side by side: in each round every
variant runs one ``training_step`` on the same fixed batch (the order rotates between
rounds so no variant always runs first), after ``--warmup`` untimed rounds. The table
reports the median step time and its ratio to ERM's. Appendix C's claim to check: the
Two-Gen-BAT step costs about as much as a three-step Grad-BAT step.

    python benchmarks/adversarial_step_time.py                       # mini: resnet10t, 64 px, batch 32, CPU
    python benchmarks/adversarial_step_time.py --preset paper --device cuda --steps 20
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import torch

import dfbench  # noqa: F401  (torchvision guard before timm)
import dfbench.detectors.adversarial_blur  # noqa: F401  (registers the recipes)
from dfbench.detectors.base import Detector, DetectorConfig, create_detector

# (label, registered recipe or None for plain ERM, config overrides)
VARIANTS: list[tuple[str, str | None, dict[str, Any]]] = [
    ("erm", None, {}),
    ("grad_aat", "grad_aat", {}),
    ("grad_sat", "grad_sat", {}),
    ("grad_bat", "grad_bat", {}),
    ("grad_bat (K=3)", "grad_bat", {"attack_steps": 3}),
    ("gen_bat", "gen_bat", {}),
    ("two_gen_bat", "two_gen_bat", {}),
    ("combined_at", "combined_at", {}),
]


def build(recipe: str | None, extra: dict[str, Any], args: argparse.Namespace) -> Detector:
    common: dict[str, Any] = {"pretrained": False}
    for key, value in (("backbone", args.backbone), ("input_size", args.size), ("batch_size", args.batch)):
        if value is not None:
            common[key] = value
    if recipe is None:  # ERM: the base detector with the recipes' optimiser settings
        config = DetectorConfig.preset(args.preset, optimizer="radam", weight_decay=5e-4, **common)
        det = Detector(config)
    else:
        det = create_detector(recipe, preset=args.preset, **common, **{**args.overrides, **extra})
    torch.manual_seed(0)
    det.device = torch.device(args.device)
    det.ensure_built()
    det.setup_training()
    det.to(args.device)
    for module in [det.model, *det.train_modules.values()]:
        module.train()
    return det


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep:
        raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, raw


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mini", choices=["mini", "paper"])
    parser.add_argument("--backbone", default=None, help="timm name (default: the preset's)")
    parser.add_argument("--size", type=int, default=None, help="input size (default: the preset's)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    parser.add_argument("--only", nargs="*", default=None, help="labels to time (erm is always timed)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe config overrides, e.g. generator_filters=64 (ints/floats parsed)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.overrides = dict(_parse_override(item) for item in args.set)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    variants = [v for v in VARIANTS if args.only is None or v[0] == "erm" or v[0] in args.only]
    detectors = {label: build(recipe, extra, args) for label, recipe, extra in variants}
    cfg = detectors["erm"].config
    gen = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randint(0, 256, (cfg.batch_size, 3, cfg.input_size, cfg.input_size), dtype=torch.uint8, generator=gen).to(device),
        "label": (torch.arange(cfg.batch_size) % 2).to(device),
    }
    times: dict[str, list[float]] = {label: [] for label in detectors}
    peak_mb: dict[str, float] = {}
    labels = list(detectors)
    for round_ in range(args.warmup + args.steps):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            det = detectors[label]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync(device)
            start = time.perf_counter()
            det.training_step(batch)
            sync(device)
            if round_ >= args.warmup:
                times[label].append(time.perf_counter() - start)
                if device.type == "cuda":
                    peak_mb[label] = max(peak_mb.get(label, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)
    erm = statistics.median(times["erm"])
    rows = []
    for label in labels:
        med = statistics.median(times[label])
        rows.append({"variant": label, "median_ms": 1000 * med, "ratio_to_erm": med / erm, "peak_mb": peak_mb.get(label)})
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    result = {
        "preset": args.preset,
        "backbone": cfg.backbone,
        "input_size": cfg.input_size,
        "batch_size": cfg.batch_size,
        "overrides": args.overrides,
        "device": device_name,
        "torch": torch.__version__,
        "warmup": args.warmup,
        "steps": args.steps,
        "rows": rows,
    }
    gen_cfg = next((d.config for d in detectors.values() if hasattr(d.config, "generator_filters")), None)
    generator = f"generator {gen_cfg.generator_filters} filters × {gen_cfg.generator_blocks} blocks" if gen_cfg else ""
    print(f"{cfg.backbone}, {cfg.input_size} px, batch {cfg.batch_size}, {generator}, {device_name}, median of {args.steps} steps after {args.warmup} warm-up")
    print("| variant | median step (ms) | × ERM |" + (" peak MiB |" if peak_mb else ""))
    print("|---|---:|---:|" + ("---:|" if peak_mb else ""))
    for row in rows:
        extra = f" {row['peak_mb']:.0f} |" if peak_mb else ""
        print(f"| {row['variant']} | {row['median_ms']:.1f} | {row['ratio_to_erm']:.2f} |{extra}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
