"""The shared training loop: presets, validation-only selection, resume, safe checkpoints."""

import pickle

import numpy as np
import pytest
import torch

from dfbench.benchmark.errors import ConfigError
from dfbench.detectors import create_detector
from dfbench.detectors.base import Detector, read_checkpoint
from dfbench.testing import TINY, tiny_frameset


def test_presets_merge_along_the_mro_and_reject_unknown_keys() -> None:
    mini = create_detector("erm")
    paper = create_detector("erm", preset="paper")
    assert mini.config.backbone == "resnet10t" and mini.config.input_size == 64
    assert paper.config.optimizer == "radam" and paper.config.lr == 5e-4 and paper.config.lr_step_epochs == 10
    assert create_detector("erm", backbone="resnet18").config.backbone == "resnet18"
    with pytest.raises(ConfigError, match="Unknown config key"):
        create_detector("erm", learning_rate=0.1)
    with pytest.raises(ConfigError, match="Unknown preset"):
        create_detector("erm", preset="huge")
    with pytest.raises(ConfigError, match="Unknown backbone"):
        create_detector("erm", backbone="no_such_net").ensure_built()


def test_selection_uses_the_validation_scores_only(monkeypatch) -> None:
    """The restored state is the epoch whose validation AUC was best, whatever came later."""
    frames = tiny_frameset()
    val = frames.subset(np.arange(len(frames)))
    detector = create_detector("erm", **{**TINY, "epochs": 3})
    seen = []
    # scripted validation AUCs per epoch: best at epoch 1 (0-based)
    scripted = iter([0.6, 0.9, 0.7])
    real_predict = Detector.predict

    def fake_predict(self, fs, **kw):
        seen.append(fs)
        target = next(scripted)
        labels = fs.labels
        # scores whose AUC equals `target`: push a fraction of fakes below all reals
        scores = np.where(labels == 1, 0.9, 0.1).astype(float)
        fakes = np.flatnonzero(labels == 1)
        videos = fs.meta.loc[fakes, "video_id"].unique()
        n_bad = round((1 - target) * len(videos) * 1.0 / 1.0 * 2) // 2
        for vid in videos[:n_bad]:
            scores[(fs.meta["video_id"] == vid).to_numpy()] = 0.05
        return scores

    states = []
    monkeypatch.setattr(Detector, "predict", fake_predict)
    real_inference_state = Detector.inference_state

    def record_state(self):
        state = real_inference_state(self)
        states.append(state)
        return state

    monkeypatch.setattr(Detector, "inference_state", record_state)
    report = detector.fit(frames, val, seed=0)
    monkeypatch.setattr(Detector, "predict", real_predict)
    assert all(fs is val for fs in seen)  # only the validation set is scored during fit
    assert report.best_epoch == int(np.argmax([h["val_video_auc"] for h in report.history]))
    chosen = states[-1]
    now = detector.inference_state()
    assert all(torch.equal(chosen["model"][k], now["model"][k]) for k in now["model"])


def test_interrupted_fit_resumes_bit_identically(tmp_path) -> None:
    frames = tiny_frameset()
    full = create_detector("erm", **{**TINY, "epochs": 3})
    full.fit(frames, frames, seed=5)

    class Interrupt(Exception):
        pass

    calls = {"n": 0}

    def stop_in_epoch_two(desc, done, total):
        if desc.startswith("epoch 2") and done == 1:
            calls["n"] += 1
            raise Interrupt

    first = create_detector("erm", **{**TINY, "epochs": 3})
    with pytest.raises(Interrupt):
        first.fit(frames, frames, seed=5, checkpoint_dir=tmp_path, progress=stop_in_epoch_two)
    assert (tmp_path / "train_state.pt").exists() and calls["n"] == 1
    second = create_detector("erm", **{**TINY, "epochs": 3})
    report = second.fit(frames, frames, seed=5, checkpoint_dir=tmp_path)
    assert report.resumed_from_epoch == 1
    np.testing.assert_array_equal(second.predict(frames), full.predict(frames))


def test_checkpoint_of_another_config_is_not_mixed_in(tmp_path) -> None:
    frames = tiny_frameset()
    create_detector("erm", **{**TINY, "epochs": 2}).fit(frames, frames, seed=1, checkpoint_dir=tmp_path)
    other = create_detector("erm", **{**TINY, "epochs": 2, "lr": 0.01})
    assert other.fit(frames, frames, seed=1, checkpoint_dir=tmp_path).resumed_from_epoch == 0


def test_checkpoints_load_with_weights_only_and_refuse_pickles(tmp_path) -> None:
    det = create_detector("erm", **TINY)
    frames = tiny_frameset()
    det.fit(frames, frames, seed=0)
    det.save(tmp_path / "ok.pt")
    assert read_checkpoint(tmp_path / "ok.pt")["detector"] == "erm"

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": 1, "payload": Evil()}, fh)
    with pytest.raises(ConfigError, match="cannot be read as a tensor checkpoint") as refused:
        read_checkpoint(tmp_path / "evil.pt")
    # torch's hint to retry with weights_only=False (which would run the pickle) is not passed on
    assert "weights_only" not in str(refused.value) and "\n" not in str(refused.value)
    (tmp_path / "half.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:100])
    with pytest.raises(ConfigError):
        create_detector("erm", **TINY).load(tmp_path / "half.pt")
    with pytest.raises(ConfigError, match="holds detector 'erm'"):
        create_detector("aug_jpeg", **TINY).load(tmp_path / "ok.pt")


def test_missing_required_extras_are_named() -> None:
    class NeedsMasks(Detector):
        requires = frozenset({"mask", "qualities"})

    frames = tiny_frameset()
    bare = frames.subset(np.arange(len(frames)))
    bare.extras = {}
    with pytest.raises(ConfigError, match=r"\['mask', 'qualities'\]"):
        NeedsMasks(**TINY).fit(bare, bare)
