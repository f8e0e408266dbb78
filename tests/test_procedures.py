"""The train_test procedure through RunContext, with an in-memory frame loader:
validation-only data flow, result rows, perturbation cells, resume without recomputation."""

import numpy as np
import pytest

from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.frames import FrameSet
from dfbench.benchmark.procedures import PERTURBATIONS, RunContext, train_test
from dfbench.benchmark.protocol import parse_protocol
from dfbench.benchmark.results import ResultsStore
from dfbench.detectors.base import Detector
from dfbench.testing import TINY, tiny_frameset

if "test_invert" not in PERTURBATIONS:
    PERTURBATIONS.register("test_invert", lambda images, value, rng: (255 - images) if value else images.copy())

SPEC = {
    "name": "toy", "version": 1, "metrics": ["auc", "acc"],
    "trainings": [
        {"name": "raw", "data": [{"dataset": "tiny", "qualities": ["raw"]}]},
        {"name": "c40", "data": [{"dataset": "tiny", "qualities": ["c40"]}]},
    ],
    "tests": [
        {"name": "T/raw", "data": [{"dataset": "tiny", "qualities": ["raw"]}]},
        {"name": "T/inv", "data": [{"dataset": "tiny", "qualities": ["raw"]}], "trainings": ["raw"],
         "perturbation": {"op": "test_invert", "values": [0, 1]}},
    ],
}


class Loader:
    """Serves tiny frame sets per split and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, data, split, per_video, requires) -> FrameSet:
        self.requests.append((data[0].qualities[0], split))
        return tiny_frameset(seed={"train": 0, "val": 1, "test": 2}[split])


def make_ctx(tmp_path, loader) -> RunContext:
    spec = parse_protocol(SPEC, "toy")
    return RunContext(
        spec=spec, detector_name="erm", preset="mini", seed=0, device="cpu", run_dir=tmp_path / "run",
        frame_loader=loader, store=ResultsStore(tmp_path), detector_overrides=dict(TINY),
        run_meta={"protocol": "toy", "protocol_version": 1, "detector": "erm", "backbone": "resnet10t",
                  "preset": "mini", "seed": 0, "data_kind": "synthetic-mini", "config_hash": "x", "device": "cpu"},
        log=lambda msg: None,
    )


def test_train_test_writes_every_cell_and_uses_val_for_selection_only(tmp_path, monkeypatch) -> None:
    loader = Loader()
    fitted_on = []
    real_fit = Detector.fit

    def spy_fit(self, train, val, **kw):
        fitted_on.append((loader.requests[-2], loader.requests[-1]))
        return real_fit(self, train, val, **kw)

    monkeypatch.setattr(Detector, "fit", spy_fit)
    ctx = make_ctx(tmp_path, loader)
    train_test(ctx)
    assert fitted_on == [(("raw", "train"), ("raw", "val")), (("c40", "train"), ("c40", "val"))]
    rows = ctx.store.read_run(ctx.run_dir)
    # raw model: T/raw + T/inv at 2 strengths; c40 model: T/raw only → 4 cells × 2 metrics × 2 levels
    assert len(rows) == 4 * 2 * 2
    cells = rows.groupby(["training", "test", "perturbation", "strength"], dropna=False).size()
    assert len(cells) == 4
    video_auc = rows[(rows.metric == "auc") & (rows.level == "video")]
    assert video_auc["ci_low"].notna().all() and (video_auc["ci_low"] <= video_auc["value"]).all()
    # tiny_frameset: 4 real and 4 fake videos of 2 frames each, in every cell
    for level, per_class in (("frame", 8), ("video", 4)):
        at = rows[rows.level == level]
        assert set(at["n_real"]) == {per_class} and set(at["n_fake"]) == {per_class}, level
    inverted = rows[(rows.test == "T/inv") & (rows.metric == "auc") & (rows.level == "frame")].set_index("strength")["value"]
    plain = rows[(rows.test == "T/raw") & (rows.training == "raw") & (rows.metric == "auc") & (rows.level == "frame")]["value"].iloc[0]
    assert inverted.loc[0.0] == pytest.approx(plain)  # strength 0 = the clean test set
    assert (ctx.model_dir("raw") / "model.pt").exists() and not (ctx.model_dir("raw") / "train_state.pt").exists()


def test_rerun_recomputes_nothing_and_interrupted_run_resumes(tmp_path, monkeypatch) -> None:
    loader = Loader()
    ctx = make_ctx(tmp_path, loader)
    calls = {"predict": 0}
    real_predict = Detector.predict

    def flaky_predict(self, frames, **kw):
        calls["predict"] += 1
        if calls["predict"] == 4:  # dies while scoring the second strength of T/inv
            raise KeyboardInterrupt
        return real_predict(self, frames, **kw)

    monkeypatch.setattr(Detector, "predict", flaky_predict)
    with pytest.raises(KeyboardInterrupt):
        train_test(ctx)
    done_before = len(ctx.store.read_run(ctx.run_dir))
    assert 0 < done_before < 16
    monkeypatch.setattr(Detector, "fit", lambda *a, **k: pytest.fail("finished model retrained"))
    monkeypatch.setattr(Detector, "predict", real_predict)
    ctx2 = make_ctx(tmp_path, loader)
    with pytest.raises(BaseException, match="retrained"):
        train_test(ctx2)  # the c40 model never finished, so it must train: the spy proves raw was reused
    rows = ctx2.store.read_run(ctx2.run_dir)
    assert len(rows) == 16 - 4  # every raw cell done; c40's single cell still pending


def test_missing_validation_data_is_a_clear_error(tmp_path) -> None:
    class NoVal(Loader):
        def __call__(self, data, split, per_video, requires):
            frames = super().__call__(data, split, per_video, requires)
            return frames.subset(frames.labels == 1) if split == "val" else frames

    with pytest.raises(DfbenchError, match="validation"):
        train_test(make_ctx(tmp_path, NoVal()))


def test_score_rejects_non_finite_scores(tmp_path) -> None:
    ctx = make_ctx(tmp_path, Loader())
    frames = tiny_frameset()
    with pytest.raises(ValueError):
        ctx.score("T/raw", "raw", frames, np.full(len(frames), np.nan))


def test_validation_frames_are_scored_per_quality_not_stacked(tmp_path, monkeypatch) -> None:
    """A qualities-requiring detector trains on stacked qualities but is selected on every
    quality as separate rows, as its test cells score it."""
    from dfbench.benchmark import procedures

    seen = []

    class RecordingLoader(Loader):
        def __call__(self, data, split, per_video, requires):
            seen.append((split, requires))
            return super().__call__(data, split, per_video, requires)

    monkeypatch.setattr(Detector, "requires", frozenset({"qualities", "landmarks"}))
    monkeypatch.setattr(RunContext, "fit", lambda self, det, name, train, val: det)
    monkeypatch.setattr(procedures, "score_test", lambda *args, **kwargs: None)
    train_test(make_ctx(tmp_path, RecordingLoader()))
    assert seen == [("train", ("landmarks", "qualities")), ("val", ("landmarks",))] * 2
