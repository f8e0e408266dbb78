import math

import numpy as np
import pandas as pd
import pytest

from dfbench.benchmark import metrics as M


def test_auc_acc_ap_hand_example() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.6, 0.4, 0.9])
    # pairs (fake, real): (0.4>0.1) yes, (0.4>0.6) no, (0.9>0.1) yes, (0.9>0.6) yes → 3/4
    assert M.auc(y, s) == pytest.approx(0.75)
    # at 0.5: predictions 0,1,0,1 → correct: idx0, idx3 → 0.5
    assert M.accuracy(y, s) == pytest.approx(0.5)
    # ranking 0.9(1) 0.6(0) 0.4(1) 0.1(0): precision at recalls 0.5 → 1, 1.0 → 2/3 → AP = 0.5*1 + 0.5*2/3
    assert M.average_precision(y, s) == pytest.approx(0.5 + 1 / 3)


def test_logloss_hand_example() -> None:
    y = np.array([1, 0])
    s = np.array([0.8, 0.3])
    assert M.logloss(y, s) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)


def test_eer_hand_examples() -> None:
    assert M.eer(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    # one real above one fake: at the best threshold FPR = FNR = 1/2 for a 2+2 set with scores interleaved
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4])
    assert M.eer(y, s) == pytest.approx(0.5)


def test_error_counts_and_undefined_metrics() -> None:
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.7, 0.2, 0.4, 0.9, 0.6])
    assert M.error_counts(y, s) == {"fp": 1, "fn": 1, "n_real": 2, "n_fake": 3}
    assert math.isnan(M.auc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert math.isnan(M.eer(np.array([0, 0]), np.array([0.2, 0.3])))


def test_video_level_groups_by_full_id_and_averages() -> None:
    meta = pd.DataFrame({
        "video_id": ["ffpp/Deepfakes/c23/071_054", "ffpp/Deepfakes/c23/071_054", "ffpp/FaceSwap/c23/071_054", "ffpp/youtube/c23/071"],
        "label": [1, 1, 1, 0],
    })
    videos = M.video_level(meta, np.array([0.2, 0.6, 0.9, 0.1])).set_index("video_id")
    assert len(videos) == 3  # same bare name, different methods: two videos
    assert videos.loc["ffpp/Deepfakes/c23/071_054", "score"] == pytest.approx(0.4)
    assert videos.loc["ffpp/Deepfakes/c23/071_054", "n_frames"] == 2


def test_bootstrap_interval_brackets_the_auc_and_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    s = np.r_[rng.normal(0, 1, 40), rng.normal(1, 1, 40)]
    lo, hi = M.bootstrap_auc_interval(y, s, seed=1)
    assert lo < M.auc(y, s) < hi and lo > 0.5 and hi <= 1
    assert (lo, hi) == M.bootstrap_auc_interval(y, s, seed=1)
