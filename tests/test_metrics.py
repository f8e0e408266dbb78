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


def test_precision_recall_f1_fn_fp_ratio_hand_example() -> None:
    # fake = positive, called fake at score >= 0.5:
    # labels 1 1 1 1 0 0 0 / scores .9 .5 .3 .2 .6 .7 .1 -> TP 2 (.9, .5 at the threshold),
    # FN 2 (.3, .2), FP 2 (.6, .7), TN 1
    y = np.array([1, 1, 1, 1, 0, 0, 0])
    s = np.array([0.9, 0.5, 0.3, 0.2, 0.6, 0.7, 0.1])
    assert M.precision(y, s) == pytest.approx(2 / 4)
    assert M.recall(y, s) == pytest.approx(2 / 4)
    assert M.f1(y, s) == pytest.approx(2 * 2 / (2 * 2 + 2 + 2))
    assert M.fn_fp_ratio(y, s) == pytest.approx(2 / 2)
    # uneven: one more fake missed -> P = 2/4, R = 2/5, F1 = 2PR/(P+R) = 4/9, FN/FP = 3/2
    y2, s2 = np.r_[y, 1], np.r_[s, 0.4]
    p, r = 2 / 4, 2 / 5
    assert (M.precision(y2, s2), M.recall(y2, s2)) == (pytest.approx(p), pytest.approx(r))
    assert M.f1(y2, s2) == pytest.approx(2 * p * r / (p + r)) == pytest.approx(4 / 9)
    assert M.fn_fp_ratio(y2, s2) == pytest.approx(1.5)
    # the ratio agrees with the counts every row carries
    counts = M.error_counts(y2, s2)
    assert M.fn_fp_ratio(y2, s2) == pytest.approx(counts["fn"] / counts["fp"])
    # pbnet Table VIII, m = -0.7: FN 4,735 / FP 13,305 = 0.356 as printed
    fn, fp = 4735, 13305
    y3 = np.r_[np.ones(fn, int), np.zeros(fp, int)]
    assert M.fn_fp_ratio(y3, np.r_[np.zeros(fn), np.ones(fp)]) == pytest.approx(0.356, abs=5e-4)


def test_decision_metrics_are_nan_where_undefined() -> None:
    reals = np.array([0, 0])
    assert math.isnan(M.precision(reals, np.array([0.1, 0.2])))  # nothing called fake
    assert math.isnan(M.recall(reals, np.array([0.9, 0.2])))  # no fake
    assert math.isnan(M.f1(reals, np.array([0.1, 0.2])))  # no fake, nothing called fake
    assert M.f1(reals, np.array([0.9, 0.2])) == 0.0  # a false alarm: defined, 0
    assert math.isnan(M.fn_fp_ratio(np.array([1, 0]), np.array([0.1, 0.2])))  # FP = 0
    assert M.fn_fp_ratio(np.array([1, 0]), np.array([0.9, 0.8])) == 0.0


def test_new_metrics_are_opt_in() -> None:
    assert {"precision", "recall", "f1", "fn_fp_ratio"} <= set(M.METRICS)
    assert set(M.compute_metrics(np.array([0, 1]), np.array([0.2, 0.7]))) == set(M.DEFAULT_METRICS)
    got = M.compute_metrics(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4]), ("precision", "recall", "f1"))
    assert got == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3)}


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


def _loop_bootstrap(y: np.ndarray, s: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """The interval as first written: one roc_auc_score per resample (the reference)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) == 2:
            values.append(roc_auc_score(y[idx], s[idx]))
    if len(values) < 10:
        return math.nan, math.nan
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def test_resampled_auc_hand_example_with_ties_and_repeats() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.5, 0.5, 0.9])
    idx = np.array([
        [0, 1, 2, 3],  # pairs: (0.5>0.1) 1, (0.5=0.5) 1/2, (0.9>*) 2 → 3.5/4
        [0, 0, 2, 2],  # both positives 0.5 above both 0.1 negatives → 1
        [1, 1, 2, 3],  # (0.5 vs 0.5) ×2 = 1/2 + 1/2, (0.9>0.5) ×2 → 3/4
        [0, 1, 1, 0],  # negatives only → NaN
    ])
    out = M.resampled_auc(y, s, idx)
    np.testing.assert_allclose(out[:3], [0.875, 1.0, 0.75])
    assert math.isnan(out[3])


@pytest.mark.parametrize("n, ties", [(500, False), (37, True), (6, False)])
def test_vectorised_bootstrap_matches_the_per_resample_loop(n: int, ties: bool) -> None:
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    s = rng.normal(0, 1, n) + y
    if ties:
        s = np.round(s, 1)  # many equal scores across classes
    n_boot = 300
    expected = _loop_bootstrap(y, s, n_boot, seed=3)
    got = M.bootstrap_auc_interval(y, s, n_boot=n_boot, seed=3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
