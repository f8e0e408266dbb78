"""Streamed frames (Rows over crop-cache entries), the seeded DataLoader and the AMP options."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch

from dfbench.benchmark.data import clear_index_memo, load_frames
from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet, SeededBatches
from dfbench.benchmark.preprocess.cache import CropCache, CropParams
from dfbench.benchmark.rows import FileRows, Rows, concat_rows, npz_members, stack_rows, take_rows, zero_rows
from dfbench.datasets.base import Selection
from dfbench.detectors import create_detector
from dfbench.detectors.base import run_epoch
from dfbench.testing import TINY, tiny_frameset

PARAMS = CropParams(frames=6, size=48)
REQUIRES = ("paired_real", "mask", "landmarks", "qualities")


# --------------------------------------------------------------------------- Rows
def _entry_file(tmp_path, name: str, array: np.ndarray) -> FileRows:
    cache = CropCache(tmp_path / "cache")
    path = cache.put("crops", name * 8, {"frame_indices": np.arange(len(array)), "crops": array})
    return npz_members(path, ["crops"])["crops"]


def test_rows_read_like_numpy_indexing(tmp_path) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (7, 5, 4, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (4, 5, 4, 3), dtype=np.uint8)
    fa, fb = _entry_file(tmp_path, "a", a), _entry_file(tmp_path, "b", b)
    assert (fa.count, fa.shape, fa.dtype) == (7, (5, 4, 3), "|u1")
    lazy = concat_rows([Rows.of(fa, 7, fa.shape, fa.dtype), b, zero_rows(Rows.of(fb, 4, fb.shape, "u1"), (3, 5, 4, 3), np.uint8)])
    ref = np.concatenate([a, b, np.zeros((3, 5, 4, 3), np.uint8)])
    assert isinstance(lazy, Rows) and lazy.shape == ref.shape and lazy.dtype == np.uint8 and len(lazy) == 14
    idx = np.array([13, 0, 3, 3, 8, 1, 2, 12, 6])  # unordered, repeated, across sources
    assert np.array_equal(lazy[idx], ref[idx])
    assert np.array_equal(lazy[2:9], ref[2:9]) and np.array_equal(lazy[-1], ref[-1]) and np.array_equal(lazy[5], ref[5])
    mask = ref[:, 0, 0, 0] > 100
    assert np.array_equal(lazy[mask], ref[mask])
    assert np.array_equal(lazy[:, 1:3], ref[:, 1:3]) and np.array_equal(lazy[4, 2], ref[4, 2])
    assert np.array_equal(np.asarray(lazy), ref)
    view = take_rows(lazy, idx[::-1])  # lazy view: nothing read, same values
    assert isinstance(view, Rows) and np.array_equal(np.asarray(view), ref[idx[::-1]])
    stacked = stack_rows([take_rows(lazy, np.arange(0, 4)), take_rows(lazy, np.arange(7, 11))], axis=1)
    assert stacked.shape == (4, 2, 5, 4, 3)
    assert np.array_equal(stacked[[3, 1]], np.stack([ref[0:4], ref[7:11]], axis=1)[[3, 1]])
    # the plain NumPy path of the same helpers
    assert np.array_equal(stack_rows([a[:2], a[2:4]], axis=1), np.stack([a[:2], a[2:4]], axis=1))
    assert np.array_equal(take_rows(a, [1, 0]), a[[1, 0]]) and zero_rows(a, (2, 3), np.uint8).sum() == 0


# --------------------------------------------------------------------------- load_frames
@pytest.fixture(scope="module")
def both(ffpp_fixture, tmp_path_factory):
    """The same selection loaded streamed and in memory from one crop cache."""
    cache = CropCache(tmp_path_factory.mktemp("stream-cache"))
    clear_index_memo()
    sel = [Selection("ffpp", "test", methods=("Deepfakes", "FaceSwap"), reals=("youtube",), qualities=("raw", "c23", "c40"))]
    kw = {"roots": {"ffpp": ffpp_fixture.root}, "cache": cache, "crop": PARAMS, "requires": REQUIRES, "progress": False}
    return load_frames(sel, **kw), load_frames(sel, **kw, in_memory=True)


def test_streamed_frameset_equals_the_in_memory_one(both) -> None:
    streamed, memory = both
    assert streamed.streamed and not memory.streamed
    assert isinstance(memory.images, np.ndarray) and isinstance(streamed.images, Rows)
    pd.testing.assert_frame_equal(streamed.meta, memory.meta)
    assert streamed.attrs == memory.attrs
    assert np.array_equal(np.asarray(streamed.images), memory.images)
    assert sorted(streamed.extras) == sorted(memory.extras) == sorted(REQUIRES)
    for key in REQUIRES:
        assert np.array_equal(np.asarray(streamed.extras[key]), memory.extras[key]), key
    assert isinstance(streamed.extras["qualities"], Rows) and streamed.extras["qualities"].shape[1] == 3
    assert isinstance(streamed.extras["landmarks"], np.ndarray)  # small extras stay in memory
    idx = np.array([5, 0, len(memory) - 1, 7])
    a, b = streamed.batch(idx), memory.batch(idx)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sub = streamed.subset(idx)
    assert sub.streamed and np.array_equal(np.asarray(sub.images), memory.images[idx])


def test_streamed_frames_are_not_held_in_memory(both) -> None:
    """The streamed set holds two integers per row, and an epoch of batches never holds more
    than a few batches (tracemalloc counts NumPy's buffers)."""
    streamed, memory = both
    images = streamed.images
    assert all(isinstance(s, FileRows) for s in images.sources)
    held = images.src.nbytes + images.pos.nbytes
    assert held * 100 < memory.images.nbytes
    sampler = SeededBatches(len(streamed), 4, seed=3)
    tracemalloc.start()
    try:
        for idx in sampler:
            batch = streamed.batch(idx)
            del batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    all_arrays = memory.images.nbytes + sum(v.nbytes for v in memory.extras.values())
    assert peak < all_arrays / 4, (peak, all_arrays)


# --------------------------------------------------------------------------- batches
def test_batch_order_depends_only_on_seed_and_epoch() -> None:
    a = [b.tolist() for b in SeededBatches(50, 8, seed=7)]
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(7)).tolist()
    assert a == [expected[i * 8 : (i + 1) * 8] for i in range(6)]  # 50 // 8 full batches, last one dropped
    assert a == [b.tolist() for b in SeededBatches(50, 8, seed=7)]
    assert a != [b.tolist() for b in SeededBatches(50, 8, seed=8)]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    det = create_detector("erm", **TINY)
    list(det.train_loader(tiny_frameset(), seed=1, epoch=2))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is not drawn on
    ordered = [b.tolist() for b in SeededBatches(10, 4, shuffle=False, drop_last=False)]
    assert ordered == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_two_workers_give_the_batches_of_none(both) -> None:
    streamed = both[0]
    runs = {}
    for workers in (0, 2):
        det = create_detector("erm", **{**TINY, "loader_workers": workers})
        runs[workers] = [(b["index"].tolist(), b["image"].clone(), b["qualities"].clone()) for b in det.train_loader(streamed, seed=4, epoch=1)]
    assert len(runs[0]) == len(runs[2]) == len(streamed) // TINY["batch_size"]
    for (i0, x0, q0), (i2, x2, q2) in zip(runs[0], runs[2]):
        assert i0 == i2 and torch.equal(x0, x2) and torch.equal(q0, q2)


def test_fit_is_the_same_streamed_or_in_memory_and_with_workers(both) -> None:
    streamed, memory = both
    states = []
    for frames, workers in ((memory, 0), (streamed, 0), (streamed, 2)):
        det = create_detector("erm", **{**TINY, "epochs": 2, "max_steps_per_epoch": 3, "loader_workers": workers})
        report = det.fit(frames, frames, seed=5)
        states.append((report.history, det.inference_state()["model"], det.predict(frames)))
    for history, state, scores in states[1:]:
        assert history == states[0][0]
        assert all(torch.equal(state[k], states[0][1][k]) for k in state)
        assert np.array_equal(scores, states[0][2])


def test_run_epoch_reads_tensor_logs_once_and_averages_like_floats() -> None:
    batches = [1.0, 2.0, 4.0]
    as_tensors = run_epoch(batches, lambda b: {"loss": torch.tensor(b), "n": b}, total=2)
    assert as_tensors == {"loss": 1.5, "n": 1.5}
    seen = []
    run_epoch(batches, lambda b: {}, total=5, progress=seen.append)
    assert seen == [1, 2, 3]


# --------------------------------------------------------------------------- precision and options
def test_precision_resolution_and_config_hash() -> None:
    det = create_detector("erm", **TINY)
    assert det.amp_precision() == "fp32"  # auto on CPU
    assert create_detector("erm", **TINY, precision="bf16").amp_precision() == "bf16"
    with pytest.raises(ConfigError, match="Unknown precision"):
        create_detector("erm", **TINY, precision="half").amp_precision()
    with pytest.raises(ConfigError, match="own"):
        create_detector("pim", **TINY, precision="fp16").amp_precision()
    cfg = det.config
    assert cfg.replace(loader_workers=4, compile=True, channels_last=False).config_hash() == cfg.config_hash()
    assert cfg.replace(precision="bf16").config_hash() != cfg.config_hash()


@pytest.mark.parametrize("name", ["erm", "two_gen_bat", "pim"])
def test_recipes_train_under_bf16_autocast(name: str) -> None:
    """CPU autocast stands in for CUDA's here (no GPU on the test machine): each recipe's
    step runs under bf16, its losses stay finite and its scores are probabilities."""
    det = create_detector(name, **{**TINY, "precision": "bf16", "batch_size": 6, "max_steps_per_epoch": 1})
    frames = tiny_frameset(n_videos=6)
    report = det.fit(frames, frames, seed=0)
    assert report.precision == "bf16"
    assert all(np.isfinite(v) for h in report.history for k, v in h.items() if k.startswith("loss"))
    scores = det.predict(frames)
    assert scores.shape == (len(frames),) and np.all((scores >= 0) & (scores <= 1))


def test_qad_hsic_terms_stay_fp32_under_autocast() -> None:
    """(A bf16 QAD step on CPU takes ~40 s here: bf16 convolution backward has no fast CPU
    kernel, so the forward alone is checked.)"""
    det = create_detector("qad", **{**TINY, "precision": "bf16"})
    det.ensure_built()
    det.setup_training()
    x = torch.randn(3 * 4, 3, 32, 32)
    with torch.no_grad(), det.autocast():
        logits, terms = det.collaborative_terms(x, 3)
    assert logits.dtype == torch.bfloat16 and terms
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())


def test_fp16_uses_a_grad_scaler_and_resumes_with_it(tmp_path) -> None:
    det = create_detector("erm", **{**TINY, "precision": "fp16", "epochs": 1, "max_steps_per_epoch": 1})
    frames = tiny_frameset(n_videos=4)
    report = det.fit(frames, frames, seed=0, checkpoint_dir=tmp_path)
    assert report.precision == "fp16" and set(det._scalers) == {"model"}
    blob = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert set(blob["scalers"]) == {"model"} and blob["scalers"]["model"]["scale"] > 0


def test_frameset_accepts_rows_and_checks_their_shape(tmp_path) -> None:
    a = np.zeros((3, 4, 4, 3), np.uint8)
    f = _entry_file(tmp_path, "c", a)
    meta = pd.DataFrame({"video_id": ["v"] * 3, "label": [0, 1, 0]})
    frames = FrameSet(Rows.of(f, 3, f.shape, f.dtype), meta)
    assert frames.streamed and frames.image_size == 4 and frames.in_memory().images.shape == (3, 4, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        FrameSet(Rows.of(f, 3, (4, 4), f.dtype), meta)


def test_gpu_throughput_benchmark_runs_in_its_cpu_mode(tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_throughput.py"
    spec = importlib.util.spec_from_file_location("gpu_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "throughput.json"
    result = bench.main(["--tiny", "--device", "cpu", "--size", "32", "--batch", "4", "--steps", "2",
                         "--videos", "2", "--frames", "4", "--out", str(out)])
    assert result["device"] == "cpu" and result["precision"] == "fp32" and result["backbone"] == "resnet10t"
    assert result["fit_images_per_s"] > 0 and result["bare_images_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["fit_images_per_s"] / result["bare_images_per_s"])
    assert json.loads(out.read_text()) == result
