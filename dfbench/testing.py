"""Named checks every registered detector and dataset adapter must pass.

Modelled on scikit-learn's ``check_estimator``: ``detector_checks(name)`` yields
``(check_name, callable)`` pairs that ``tests/test_common.py`` runs for every entry of
``list_detectors()``. A detector exempt from a check declares it in its class attribute
``check_exemptions = {"check_name": "reason"}``; the test suite reports it as xfail.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dfbench.benchmark.frames import FrameSet
from dfbench.detectors.base import DETECTORS, Detector, create_detector

TINY = {"input_size": 32, "epochs": 1, "batch_size": 8, "max_steps_per_epoch": 2}


def tiny_frameset(n_videos: int = 8, frames_per_video: int = 2, size: int = 32, seed: int = 0) -> FrameSet:
    """A synthetic FrameSet carrying every extra a recipe may require.

    Fakes have a bright square pasted at a fixed place (so there is something to learn);
    ``paired_real`` is the frame without it, ``mask`` marks it, ``qualities`` holds the frame
    at three decreasing qualities (coarser quantisation), ``landmarks`` are 5 plausible points.
    """
    rng = np.random.default_rng(seed)
    n = n_videos * frames_per_video
    base = rng.integers(40, 200, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(n_videos) % 2, frames_per_video)
    images = base.copy()
    mask = np.zeros((n, size, size), dtype=np.uint8)
    lo, hi = size // 3, 2 * size // 3
    images[labels == 1, lo:hi, lo:hi] = 250
    mask[labels == 1, lo:hi, lo:hi] = 255
    qualities = np.stack([images, (images // 8) * 8, (images // 32) * 32], axis=1)
    s = float(size)
    landmarks = np.tile(
        np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]], dtype=np.float32) * s, (n, 1, 1)
    )
    video_ids = [f"tiny/{'fake' if labels[i] else 'real'}/raw/{i // frames_per_video:03d}" for i in range(n)]
    meta = pd.DataFrame({
        "video_id": video_ids,
        "frame": np.tile(np.arange(frames_per_video), n_videos),
        "label": labels,
        "dataset": "tiny",
        "method": np.where(labels == 1, "fake", "real"),
        "quality": "raw",
        "face_found": True,
    })
    extras = {"paired_real": base, "mask": mask, "landmarks": landmarks, "qualities": qualities}
    return FrameSet(images, meta, extras, {"qualities": ("raw", "c23", "c40")})


def write_flat_video(path: Path, frames: int = 3, size: int = 32, value: int = 100) -> None:
    """A tiny H.264 (c23) video of flat frames (grey ``value``, +10 per frame) for tests of readers."""
    from dfbench.datasets.synth.encode import write_video

    levels = (value + 10 * np.arange(frames)) % 256
    write_video(path, np.broadcast_to(levels[:, None, None, None], (frames, size, size, 3)).astype(np.uint8), "c23")


def write_tar_shard(path: Path, members: dict[str, bytes], extra: Sequence[tarfile.TarInfo] = ()) -> None:
    """A gzip tar shard holding ``members`` (name → bytes) plus raw ``extra`` entries
    (links, devices, hostile names) for tests of archive readers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)


def fit_tiny_detector(name: str, seed: int = 0) -> tuple[Detector, FrameSet]:
    """A detector fitted for a couple of steps on ``tiny_frameset`` (validation = training set)."""
    detector = create_detector(name, preset="mini", **TINY)
    frames = tiny_frameset(seed=seed)
    detector.fit(frames, frames, seed=seed)
    return detector, frames


@functools.lru_cache(maxsize=4)
def fitted_tiny_detector(name: str, seed: int = 0) -> tuple[Detector, FrameSet]:
    """Cached ``fit_tiny_detector`` shared by the read-only checks (predict never mutates)."""
    return fit_tiny_detector(name, seed)


def check_default_construction(name: str) -> None:
    detector = create_detector(name)
    config = detector.get_config()
    # default construction = the mini preset plus the variant's registered overrides
    expected = type(config).preset("mini", **DETECTORS.meta(name)["overrides"])
    assert config == expected, (config, expected)
    assert config.config_hash() == expected.config_hash() and detector.name == name
    # the two scales differ (paper: the paper's backbone / input size / schedule)
    assert type(config).preset("paper") != type(config).preset("mini")


def check_config_round_trip(name: str) -> None:
    config = create_detector(name).get_config()
    again = type(config).from_dict(config.to_dict())
    assert again == config and again.config_hash() == config.config_hash()


def check_fit_predict(name: str) -> None:
    detector, frames = fitted_tiny_detector(name)
    scores = detector.predict(frames)
    assert scores.shape == (len(frames),)
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))


def check_batch_invariance(name: str) -> None:
    """Scores do not depend on batch order or batch size (eval mode, no batch statistics)."""
    detector, frames = fitted_tiny_detector(name)
    full = detector.predict(frames, batch_size=16)
    small = detector.predict(frames, batch_size=3)
    perm = np.random.default_rng(1).permutation(len(frames))
    permuted = detector.predict(frames.subset(perm), batch_size=5)
    np.testing.assert_allclose(small, full, atol=1e-5)
    np.testing.assert_allclose(permuted, full[perm], atol=1e-5)


def check_deterministic_fit(name: str) -> None:
    """Same seed → same scores (CPU)."""
    a, frames = fit_tiny_detector(name, seed=3)
    b, _ = fit_tiny_detector(name, seed=3)
    np.testing.assert_allclose(a.predict(frames), b.predict(frames), atol=1e-6)


def check_save_load(name: str, tmp_dir) -> None:
    detector, frames = fitted_tiny_detector(name)
    path = tmp_dir / f"{name}.pt"
    detector.save(path)
    fresh = create_detector(name, preset="mini", **TINY).load(path)
    np.testing.assert_allclose(fresh.predict(frames), detector.predict(frames), atol=1e-6)


def check_features(name: str) -> None:
    """``features`` gives one finite vector per image (φ(x), used by plug-ins such as PBNet)."""
    detector, frames = fitted_tiny_detector(name)
    x = detector.preprocess(torch.from_numpy(frames.images[:4]).permute(0, 3, 1, 2))
    with torch.no_grad():
        feats = detector.features(x)
    assert feats.ndim == 2 and feats.shape[0] == 4 and torch.isfinite(feats).all()


@contextlib.contextmanager
def _float_reads(log: list[str]) -> Iterator[None]:
    """Record every read of a floating-point tensor's value into Python (``float(t)``,
    ``t.item()``, ``t.tolist()``) and every ``if tensor:``: on a GPU each waits for the device."""
    originals = {name: getattr(torch.Tensor, name) for name in ("__float__", "__bool__", "item", "tolist")}

    def spy(name: str) -> Callable:
        def read(self: torch.Tensor, *args, **kwargs):
            caller = sys._getframe(1)
            # torch's own reads are left out: its optimisers keep their step counters on the
            # CPU even for CUDA parameters (reading one is not a device sync)
            if (self.is_floating_point() or name == "__bool__") and not caller.f_globals.get("__name__", "").startswith("torch."):
                log.append(f"{name} of a {tuple(self.shape)} {self.dtype} tensor at {caller.f_code.co_filename.split('/')[-1]}:{caller.f_lineno}")
            return originals[name](self, *args, **kwargs)
        return read

    for name in originals:
        setattr(torch.Tensor, name, spy(name))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def check_no_host_sync_per_step(name: str) -> None:
    """A training step returns its logs as tensors: no float value is read back to the host
    inside a step (``run_epoch`` reads them all once per epoch), so a CUDA step never waits."""
    detector = create_detector(name, preset="mini", **TINY)
    frames = tiny_frameset()
    reads: list[str] = []
    step = detector.amp_training_step

    def spied(batch):
        with _float_reads(reads):
            return step(batch)

    detector.amp_training_step = spied  # type: ignore[method-assign]
    report = detector.fit(frames, frames, seed=0)
    assert report.epochs_run == 1 and report.history and all(isinstance(v, (int, float)) for v in report.history[0].values())
    assert not reads, f"{name}: host reads inside a training step: {sorted(set(reads))}"


DETECTOR_CHECKS: dict[str, Callable] = {
    "default_construction": check_default_construction,
    "config_round_trip": check_config_round_trip,
    "fit_predict": check_fit_predict,
    "batch_invariance": check_batch_invariance,
    "deterministic_fit": check_deterministic_fit,
    "save_load": check_save_load,
    "features": check_features,
    "no_host_sync_per_step": check_no_host_sync_per_step,
}


def detector_checks(name: str) -> Iterator[tuple[str, Callable]]:
    yield from DETECTOR_CHECKS.items()


@dataclass(frozen=True)
class CheckOutcome:
    """One named check's result: "pass", "fail" (with the error) or "exempt" (with the reason)."""

    check: str
    status: str
    detail: str = ""
    seconds: float = 0.0


def run_detector_checks(name: str, tmp_dir: Path) -> list[CheckOutcome]:
    """Every check of ``DETECTOR_CHECKS`` on detector ``name`` (a registered name or a plug-in
    spec), as ``dfbench check-detector`` reports them. A check that raises fails; the others
    still run. Exemptions are the class's ``check_exemptions`` (as in tests/test_common.py)."""
    exemptions = getattr(DETECTORS.get(name), "check_exemptions", {})
    outcomes = []
    for check, fn in detector_checks(name):
        if check in exemptions:
            outcomes.append(CheckOutcome(check, "exempt", str(exemptions[check])))
            continue
        started = time.perf_counter()
        try:
            fn(name, tmp_dir) if "tmp_dir" in inspect.signature(fn).parameters else fn(name)
        except Exception as exc:  # a failing check is a result to report, not a crash
            detail = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
            outcomes.append(CheckOutcome(check, "fail", detail, time.perf_counter() - started))
        else:
            outcomes.append(CheckOutcome(check, "pass", "", time.perf_counter() - started))
    return outcomes


def serve_tiny_frames(monkeypatch: Any, data_root: Path) -> Path:
    """Make ``dfbench run`` / ``dfbench eval`` read ``tiny_frameset`` frames instead of the
    crop cache, for fast CLI tests of everything around the data layer: every FF++ selection
    yields tiny frames (train, val and each test quality drawn with another seed; video ids
    name the quality, as real ids do) and an empty ``data_root/FaceForensics++`` folder stands
    for the dataset. Returns ``data_root``."""
    from dfbench.benchmark.runner import DataResolver

    (Path(data_root) / "FaceForensics++").mkdir(parents=True, exist_ok=True)
    seeds = {"train": 0, "val": 1, "test": 2}

    def load(self: Any, data: Sequence[Any], split: str, per_video: int, requires: tuple[str, ...]) -> FrameSet:
        quality = (data[0].qualities or ("raw",))[0]
        frames = tiny_frameset(seed=seeds[split] + (10 if split == "test" and quality == "c40" else 0))
        frames.meta["video_id"] = frames.meta["video_id"].str.replace("/raw/", f"/{quality}/", regex=False)
        frames.meta["quality"] = quality
        return frames

    monkeypatch.setattr(DataResolver, "load", load)
    monkeypatch.setattr(DataResolver, "_has_test_videos", lambda self, data: True)
    return Path(data_root)
