"""Beyond one process: DDP under torchrun (gloo, loopback), the run matrix sequentially and on
a local Ray cluster, and concurrent writers of one crop-cache entry."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfbench.benchmark import distributed
from dfbench.benchmark.cli import main
from dfbench.benchmark.frames import SeededBatches

TESTS = Path(__file__).parent
TINY_PROTOCOL = """\
name: tiny_scale
version: 1
description: one training, one test (scale tests)
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
# every cell short: one epoch of at most 3 steps at 32 px
SHORT = {"epochs": 1, "max_steps_per_epoch": 3, "input_size": 32, "batch_size": 8}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from dfbench.datasets.synth import generate_ffpp_like

    return generate_ffpp_like(tmp_path_factory.mktemp("synth") / "FaceForensics++", scale="tiny", seed=0, progress=False)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFBENCH_RESULTS", str(tmp_path / "runs"))
    monkeypatch.setenv("DFBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "tiny.yaml").write_text(TINY_PROTOCOL)
    return tmp_path


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module: 2 CPUs, loopback, no dashboard, no usage stats."""
    ray = pytest.importorskip("ray", reason="the Ray tests need the optional extra: pip install -e '.[ray]'")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import this file
    yield ray
    ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str, timeout: float = 240, port: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port or _free_port()), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- DDP: the data split
def test_rank_shares_of_a_seeded_batch_make_the_single_process_batch() -> None:
    whole = list(SeededBatches(50, 8, seed=7))
    shares = []
    for rank in range(3):
        sampler = SeededBatches(50, 8, seed=7)
        sampler.rank, sampler.world = rank, 3
        shares.append(list(sampler))
    assert len(whole) == 6 and all(len(s) == 6 for s in shares)
    for k, batch in enumerate(whole):
        assert [len(s[k]) for s in shares] == [3, 3, 2]  # np.array_split: contiguous, near-equal
        assert np.array_equal(np.concatenate([s[k] for s in shares]), batch)


def test_a_recipe_loaders_batch_is_cut_into_rank_shares(monkeypatch) -> None:
    monkeypatch.setattr(distributed, "_CTX", distributed.DistContext(rank=1, world=2, local_rank=1, backend="gloo"))
    batch = {"image": torch.arange(5 * 2).view(5, 2), "label": torch.tensor([10, 11, 12, 13, 14]), "qualities_names": ("raw",)}
    (share,) = list(distributed._rank_slices([batch]))
    assert share["label"].tolist() == [13, 14] and share["image"].tolist() == [[6, 7], [8, 9]]
    assert share["qualities_names"] == ("raw",)  # not per frame: kept whole


def test_under_torchrun_cuda_is_the_ranks_own_gpu(monkeypatch) -> None:
    from dfbench.benchmark.errors import ConfigError

    monkeypatch.setattr(distributed, "_CTX", distributed.DistContext(rank=3, world=4, local_rank=1, backend="nccl"))
    assert distributed.rank_device("cuda") == "cuda:1" and distributed.rank_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="every rank on one GPU"):
        distributed.rank_device("cuda:0")


def test_without_torchrun_every_hook_is_the_identity() -> None:
    assert distributed.active() is None and distributed.is_main()
    g = [torch.ones(2), None]
    assert distributed.average_gradients(g, [torch.zeros(2), torch.zeros(1)]) is not None
    assert distributed.average_gradients(g, [torch.zeros(2), torch.zeros(1)])[1] is None
    assert distributed.agree(0.25) == 0.25 and distributed.rank_device("cuda") == "cuda"
    assert distributed.results_root(Path("/x")) == Path("/x")
    loader, step = [1, 2], (lambda b: {})
    assert distributed.epoch(None, loader, step) == (loader, step)


# --------------------------------------------------------------------------- DDP: 2 gloo ranks
@pytest.mark.slow  # one process, then torchrun with 2 (each imports torch); ~30 s CPU
def test_two_rank_fit_equals_one_process_with_the_same_global_batch(tmp_path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(TESTS / "ddp_fit_worker.py"), str(one)], check=True, env=env, timeout=240)
    done = _torchrun(str(TESTS / "ddp_fit_worker.py"), str(two))
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("linear", "two_gen_bat", "qad", "dualflat"):
        r0, r1 = (torch.load(two / f"{name}.rank{k}.pt") for k in (0, 1))
        # every rank ends with the same weights and BatchNorm statistics (reduced, not drifted)
        assert torch.equal(r0["params"], r1["params"]) and torch.equal(r0["buffers"], r1["buffers"]), name
        single = torch.load(one / f"{name}.rank0.pt")
        rel = float((r0["params"] - single["params"]).norm() / single["params"].norm())
        if name == "linear":
            # no BatchNorm and mean losses: gradient averaging over shares is the global-batch
            # gradient; only float summation order differs (measured rel 6e-8)
            assert rel < 1e-6
        else:
            # each rank normalises BatchNorm over its half batch (and QAD's HSIC / PIM's
            # statistics are per share): close to, not equal to, one process (measured ≤ 0.016)
            assert rel < 0.05, (name, rel)


@pytest.mark.slow  # torchrun with 2 ranks of `dfbench run` (killed, then resumed), then one process; ~50 s CPU
def test_dfbench_run_under_torchrun_resumes_and_writes_one_set_of_rows_close_to_one_process(env, tiny_root) -> None:
    import json
    import signal

    from dfbench.benchmark.results import ResultsStore

    sets = [f"--set={s}" for s in ["epochs=3", "batch_size=8", "input_size=32"]]
    # a backbone without BatchNorm (ConvNeXt normalises each frame by itself): then the
    # 2-rank run with the same global batch is the 1-process run up to float summation order
    args = ["run", "--protocol", str(env / "tiny.yaml"), "--detector", "erm", "--data-root", str(tiny_root),
            "--backbone", "convnext_atto", "--no-progress", "--threads", "1", *sets]
    # 1. interrupted once epoch 1's checkpoint exists: SIGTERM to torchrun, which stops its
    # ranks (what a scheduler's time limit does; the ranks run in sessions of their own)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(killed_port := _free_port()), "-m", "dfbench", *args, "--results", str(env / "ddp")]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list((env / "ddp").rglob("train_state.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    assert not list((env / "ddp").rglob("*.parquet"))  # stopped inside the fit: nothing scored yet
    # 2. the same command resumes: every rank starts from rank 0's checkpoint (else the ranks'
    # step counts differ and the collectives never meet)
    # a killed run leaves rank 1's scratch copy (a resume on the same port reuses it)
    tmp = Path(tempfile.gettempdir())
    for left in tmp.glob(f"dfbench-rank1-{killed_port}-*"):
        shutil.rmtree(left)
    done = _torchrun("-m", "dfbench", *args, "--results", str(env / "ddp"), port=(port := _free_port()))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("video-level AUC") == 1  # rank 1 prints nothing
    assert not list(tmp.glob(f"dfbench-rank1-{port}-*"))  # a finished run removes rank 1's scratch
    fit = json.loads(next((env / "ddp").rglob("fit.json")).read_text())
    assert fit["resumed_from_epoch"] in (1, 2) and fit["epochs_run"] == 3
    ddp = ResultsStore(env / "ddp").read_all()
    assert len(ddp) == 2 and set(ddp.level) == {"video", "frame"}  # one set of rows: 1 test × 2 levels
    # 3. the same run in one process. Tolerance: every test frame's score within 1e-5 (the
    # ranks' gradient sum rounds in another order than one process's batch mean; measured
    # 2.6e-8 after 2 epochs), and so the same AUCs. With a BatchNorm backbone (resnet10t) the
    # ranks normalise over half batches and the runs differ for real (docs/scale.md).
    assert main([*args, "--results", str(env / "one")]) == 0
    one = ResultsStore(env / "one").read_all()
    both = ddp.merge(one, on=["test", "level", "metric"], suffixes=("_ddp", "_one"))
    assert len(both) == 2 and (both.value_ddp - both.value_one).abs().max() <= 1e-6
    scores = [pd.read_parquet(next((env / name).rglob("*.pred.parquet"))) for name in ("ddp", "one")]
    assert scores[0].video_id.tolist() == scores[1].video_id.tolist()
    assert np.abs(scores[0].score.to_numpy() - scores[1].score.to_numpy()).max() <= 1e-5


# --------------------------------------------------------------------------- sweep
def _sweep_cells():
    from dfbench.benchmark.sweep import sweep_cells

    return sweep_cells(["tiny.yaml"], ["erm", "aug_noise"], [0, 1])


def _base(env: Path, tiny_root: Path, results: str) -> dict:
    return {"data_root": tiny_root, "results_root": env / results, "device": "cpu", "overrides": dict(SHORT)}


def crash_first_attempt(cell, base, threads):
    """A cell function whose first attempt of one cell dies like a killed worker."""
    from dfbench.benchmark.sweep import run_cell

    marker = Path(base["results_root"]).parent / "crashed-once"
    if cell.detector == "aug_noise" and cell.seed == 1 and not marker.exists():
        marker.write_text("x")
        os._exit(1)  # no exception, no cleanup: the worker process is gone
    return run_cell(cell, base, threads)


def _video_aucs(results: Path) -> pd.DataFrame:
    from dfbench.benchmark.results import ResultsStore

    rows = ResultsStore(results).read_all()
    rows = rows[(rows.metric == "auc")]
    return rows.sort_values(["detector", "seed", "level"])[["detector", "seed", "level", "value"]].reset_index(drop=True)


@pytest.mark.slow  # 4 short cells in-process, the same 4 as Ray tasks on 2 CPUs (one killed once)
def test_sweep_on_a_local_ray_cluster_matches_the_sequential_sweep(env, tiny_root, monkeypatch, ray_cluster) -> None:
    from dfbench.benchmark.sweep import run_sweep

    monkeypatch.chdir(env)  # the cells name the protocol by a relative YAML path
    cells = _sweep_cells()
    seq_base = _base(env, tiny_root, "seq")
    started = time.perf_counter()
    seq = run_sweep(cells, seq_base, log=lambda m: None)
    seq_wall = time.perf_counter() - started
    assert len(seq.done) == 4 and not seq.failed

    ray_base = {**seq_base, "results_root": env / "ray"}
    lines: list[str] = []
    started = time.perf_counter()
    on_ray = run_sweep(cells, ray_base, ray_address="auto", max_retries=2, log=lines.append, cell_fn=crash_first_attempt)
    ray_wall = time.perf_counter() - started
    # a second sweep finds every cell complete and starts no task
    again = run_sweep(cells, ray_base, ray_address="auto", log=lines.append, cell_fn=crash_first_attempt)
    print(f"\nsweep wall time: sequential {seq_wall:.1f} s, local Ray (2 CPUs) {ray_wall:.1f} s")
    assert (env / "crashed-once").exists()  # the first attempt did die
    assert not on_ray.failed, on_ray.summary()
    assert sorted(map(str, on_ray.done)) == sorted(map(str, cells)) and not on_ray.failed
    assert max(on_ray.attempts.values()) == 2 and "retried" in on_ray.summary()
    assert any("running" in line and "failed 0" in line for line in lines)
    assert len(again.skipped) == 4 and not again.done
    a, b = _video_aucs(env / "seq"), _video_aucs(env / "ray")
    assert len(a) == 8 and a[["detector", "seed"]].drop_duplicates().shape[0] == 4  # each cell once
    pd.testing.assert_frame_equal(a, b)  # identical numbers: same code, 1 thread, CPU


def test_sweep_without_ray_installed_is_one_error_line(env, monkeypatch, capsys) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["sweep", "--protocol", "cross_quality", "--detector", "erm", "--ray", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Ray is not installed") and 'pip install -e ".[ray]"' in err[0]


# --------------------------------------------------------------------------- preprocessing on Ray
def _write_many(root: str, payload: int, start, n: int) -> None:
    from dfbench.benchmark.preprocess.cache import CropCache

    cache = CropCache(root)
    start.wait()
    for _ in range(n):
        cache.put("crops", "same-entry", {"frames": np.full((4, 8, 8, 3), payload, np.uint8)})


def test_two_processes_writing_one_cache_entry_leave_one_valid_entry(tmp_path) -> None:
    import multiprocessing as mp

    from dfbench.benchmark.preprocess.cache import CropCache

    ctx = mp.get_context("fork")  # the writers need numpy only
    start = ctx.Event()
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), k, start, 40)) for k in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    cache = CropCache(tmp_path)
    reads = 0
    while any(p.is_alive() for p in procs):  # a reader meanwhile never sees a torn entry
        entry = cache.get("crops", "same-entry")
        if entry is not None:
            assert np.unique(entry["frames"]).tolist() in ([1], [2])
            reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    entry = cache.get("crops", "same-entry")
    assert entry is not None and np.unique(entry["frames"]).tolist() in ([1], [2])
    assert cache.stats.corrupt == []
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert len(files) == 1 and not files[0].name.startswith(".tmp-")  # no temp file left


@pytest.mark.slow  # MTCNN on the tiny set, as Ray tasks and then in-process
def test_preprocess_on_ray_fills_the_entries_one_process_would(env, tiny_root, capsys, ray_cluster) -> None:
    args = ["preprocess", "--dataset", "ffpp", "--root", str(tiny_root), "--frames", "2", "--size", "32",
            "--no-progress", "--device", "cpu"]
    assert main([*args, "--ray", "auto"]) == 0
    out = capsys.readouterr().out
    files = sorted((env / "cache").rglob("*.npz"))
    assert files and "0 from the cache" in out and "0 failed" in out
    assert not list((env / "cache").rglob(".tmp-*"))
    built = re.search(r"Preprocessed (\d+) videos", out).group(1)
    assert f"0 from the cache, {built} built" in out
    assert main(args) == 0  # one process now finds every entry the Ray tasks wrote
    assert f"{built} from the cache, 0 built" in capsys.readouterr().out


def test_sweep_cli_sequential_resumes_and_the_leaderboard_reads_it(env, tiny_root, capsys) -> None:
    args = ["sweep", "--protocol", str(env / "tiny.yaml"), "--detector", "erm", "--seeds", "1",
            "--data-root", str(tiny_root), "--device", "cpu", "--results", str(env / "runs"),
            *[f"--set={k}={v}" for k, v in SHORT.items()]]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sweep: done 0/1, running 1, failed 0" in out and "sweep: 1 cell(s) run, 0 already complete, 0 failed" in out
    assert main(args) == 0  # every cell complete: nothing runs
    assert "sweep: 0 cell(s) run, 1 already complete" in capsys.readouterr().out
    assert main(["leaderboard", "--results", str(env / "runs"), "--out", str(env / "board")]) == 0
    assert any((env / "board").iterdir())
