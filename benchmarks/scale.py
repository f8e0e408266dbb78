"""Wall time of the scale paths, measured in one run (docs/scale.md quotes the figures).

  sweep: the 2 detectors × 2 seeds mini sweep of tests/test_scale.py (one training, one
         test, 1 epoch of ≤ 3 steps at 32 px, on the tiny synthetic FF++ set) run
         sequentially in this process, then the same cells as Ray tasks on a local cluster
         of --ray-cpus CPUs (a fresh results folder each, no task killed).
  ddp:   ``dfbench run`` of that protocol (2 epochs, batch 8, 32 px) in one process, then
         under ``torchrun --nproc_per_node 2`` (gloo, loopback); each a fresh subprocess.

    python benchmarks/scale.py                 # both; on a shared 2-core machine expect no speed-up
    python benchmarks/scale.py --only sweep --ray-cpus 8
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROTOCOL = """\
name: tiny_scale
version: 1
description: one training, one test (scale benchmark)
procedure: train_test
metrics: [auc]
frames: {train: 2, test: 2}
trainings:
  - name: c23
    data: [{dataset: ffpp, methods: [NeuralTextures], reals: [youtube], qualities: [c23]}]
tests:
  - name: NT/c23
    data: [{dataset: ffpp, methods: [NeuralTextures], reals: [youtube], qualities: [c23]}]
"""


def sweep(work: Path, root: Path, ray_cpus: int) -> None:
    import ray

    from dfbench.benchmark.sweep import run_sweep, sweep_cells

    cells = sweep_cells([str(work / "tiny.yaml")], ["erm", "aug_noise"], [0, 1])
    short = {"epochs": 1, "max_steps_per_epoch": 3, "input_size": 32, "batch_size": 8}
    base = {"data_root": root, "device": "cpu", "overrides": short}
    # warm the crop cache first so neither path pays for preprocessing
    run_sweep(cells[:1], {**base, "results_root": work / "warm"}, log=lambda m: None)
    t = time.perf_counter()
    seq = run_sweep(cells, {**base, "results_root": work / "seq"}, log=lambda m: None)
    seq_s = time.perf_counter() - t
    t = time.perf_counter()
    ray.init(num_cpus=ray_cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    init_s = time.perf_counter() - t
    t = time.perf_counter()
    on_ray = run_sweep(cells, {**base, "results_root": work / "ray"}, ray_address="auto", log=lambda m: None)
    ray_s = time.perf_counter() - t
    ray.shutdown()
    assert len(seq.done) == len(on_ray.done) == 4 and not seq.failed and not on_ray.failed
    print(f"sweep 2 detectors x 2 seeds: sequential {seq_s:.1f} s; local Ray ({ray_cpus} CPUs) "
          f"{ray_s:.1f} s (+ ray.init {init_s:.1f} s)")


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def ddp(work: Path, root: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["run", "--protocol", str(work / "tiny.yaml"), "--detector", "erm", "--data-root", str(root),
            "--no-progress", "--threads", "1", "--set", "epochs=2", "--set", "batch_size=8", "--set", "input_size=32"]
    _run([sys.executable, "-m", "dfbench", *args, "--results", str(work / "warm")], env)  # warm the crop cache
    t = time.perf_counter()
    _run([sys.executable, "-m", "dfbench", *args, "--results", str(work / "one")], env)
    one_s = time.perf_counter() - t
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(port), "-m", "dfbench", *args, "--results", str(work / "two")], env)
    two_s = time.perf_counter() - t
    from dfbench.benchmark.results import ResultsStore

    for name in ("one", "two"):
        rows = ResultsStore(work / name).read_all()
        meta = ResultsStore(work / name).read_run_meta(ResultsStore(work / name).run_dirs()[0])
        aucs = {r.level: round(float(r.value), 4) for r in rows.itertuples() if r.metric == "auc"}
        print(f"dfbench run ({'1 process' if name == 'one' else 'torchrun 2 gloo ranks'}): wall {one_s if name == 'one' else two_s:.1f} s "
              f"(run.json wall_time_s {meta['wall_time_s']:.1f}); AUC {aucs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["sweep", "ddp"])
    parser.add_argument("--ray-cpus", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from dfbench.datasets.synth import generate_ffpp_like

    with tempfile.TemporaryDirectory(prefix="dfbench-scale-") as tmp:
        work = Path(tmp)
        os.environ.update(DFBENCH_HOME=str(work / "home"), DFBENCH_CACHE=str(work / "cache"))
        (work / "tiny.yaml").write_text(PROTOCOL)
        root = generate_ffpp_like(work / "FaceForensics++", scale="tiny", seed=0, progress=False)
        if args.only in (None, "sweep"):
            sweep(work, root, args.ray_cpus)
        if args.only in (None, "ddp"):
            ddp(work, root)


if __name__ == "__main__":
    main()
