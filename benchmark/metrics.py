"""Detection metrics at frame and video level (video score = mean of its frame scores).

scikit-learn supplies AUC, AP and log-loss; EER comes from its ROC curve. A metric that is
undefined for the given labels (one class only) is NaN, never a made-up number.

The decision metrics call an item fake when its score is >= 0.5 and count fake as the
positive class (label 1), as the papers do (big_arts Table 2's precision, recall and ACC fit
Celeb-DF's 340 fake / 178 real test videos only that way round): with TP, FP, FN the fakes
called fake, reals called fake and fakes called real,

    precision = TP / (TP + FP)       NaN when nothing is called fake
    recall    = TP / (TP + FN)       NaN when there is no fake
    f1        = 2 TP / (2 TP + FP + FN)   the harmonic mean of the two; NaN when there is
                                     no fake and nothing is called fake
    fn_fp_ratio = FN / FP            pbnet Table VIII's "FN/FP" (4,735 / 13,305 = 0.356);
                                     NaN when FP = 0

A protocol computes the metrics its ``metrics:`` lists; DEFAULT_METRICS when it lists none.

scikit-learn is imported inside the functions that use it: ``dfbench.benchmark.protocol``
imports this module for the metric names, and ``dfbench list`` should not pay for sklearn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

EPS = 1e-7


def _two_classes(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) == 2


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(roc_auc_score(labels, scores)) if _two_classes(labels) else float("nan")


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(np.mean((scores >= threshold).astype(int) == labels)) if len(labels) else float("nan")


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where the false-positive rate meets the false-negative rate."""
    from sklearn.metrics import roc_curve

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if not _two_classes(labels):
        return float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    # interpolate between the two ROC points that bracket the crossing
    if i + 1 < len(fpr) and (fnr[i] - fpr[i]) * (fnr[i + 1] - fpr[i + 1]) < 0:
        d0, d1 = fnr[i] - fpr[i], fnr[i + 1] - fpr[i + 1]
        t = d0 / (d0 - d1)
        return float(fpr[i] + t * (fpr[i + 1] - fpr[i]))
    return float((fpr[i] + fnr[i]) / 2)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(average_precision_score(labels, scores)) if _two_classes(labels) else float("nan")


def logloss(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if not len(labels):
        return float("nan")
    return float(log_loss(labels, np.clip(scores, EPS, 1 - EPS), labels=[0, 1]))


def error_counts(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, int]:
    """False positives (real called fake) and false negatives (fake called real) at the threshold."""
    labels, pred = np.asarray(labels), (np.asarray(scores, dtype=float) >= threshold).astype(int)
    return {
        "fp": int(np.sum((pred == 1) & (labels == 0))),
        "fn": int(np.sum((pred == 0) & (labels == 1))),
        "n_real": int(np.sum(labels == 0)),
        "n_fake": int(np.sum(labels == 1)),
    }


def _decisions(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """(TP, FP, FN) with fake (label 1) as the positive class, fake called at score >= threshold."""
    labels, pred = np.asarray(labels), np.asarray(scores, dtype=float) >= threshold
    fake = labels == 1
    return int(np.sum(pred & fake)), int(np.sum(pred & ~fake)), int(np.sum(~pred & fake))


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def precision(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of the items called fake that are fake: TP / (TP + FP)."""
    tp, fp, _ = _decisions(labels, scores, threshold)
    return _ratio(tp, tp + fp)


def recall(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of the fakes called fake: TP / (TP + FN)."""
    tp, _, fn = _decisions(labels, scores, threshold)
    return _ratio(tp, tp + fn)


def f1(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Harmonic mean of precision and recall: 2 TP / (2 TP + FP + FN)."""
    tp, fp, fn = _decisions(labels, scores, threshold)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def fn_fp_ratio(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """False negatives per false positive, FN / FP (pbnet Table VIII)."""
    _, fp, fn = _decisions(labels, scores, threshold)
    return _ratio(fn, fp)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": auc,
    "acc": accuracy,
    "eer": eer,
    "ap": average_precision,
    "logloss": logloss,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "fn_fp_ratio": fn_fp_ratio,
}
# what a protocol that lists no metrics computes
DEFAULT_METRICS: tuple[str, ...] = ("auc", "acc", "eer", "ap", "logloss")
# fn_fp_ratio has no better direction: it says which way the errors lean
HIGHER_IS_BETTER = {
    "auc": True, "acc": True, "eer": False, "ap": True, "logloss": False, "precision": True, "recall": True, "f1": True,
}


def video_level(meta: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """One row per video: label and mean frame score, grouped by the full video_id."""
    import pandas as pd

    frame = pd.DataFrame({"video_id": meta["video_id"].to_numpy(), "label": meta["label"].to_numpy(), "score": scores})
    grouped = frame.groupby("video_id", sort=True)
    out = grouped.agg(label=("label", "first"), score=("score", "mean"), n_frames=("score", "size"))
    if (grouped["label"].nunique() > 1).any():
        raise ValueError("a video has frames with different labels")
    return out.reset_index()


def compute_metrics(
    labels: np.ndarray, scores: np.ndarray, names: tuple[str, ...] = DEFAULT_METRICS
) -> dict[str, float]:
    return {name: METRICS[name](labels, scores) for name in names}


def bootstrap_auc_interval(
    labels: np.ndarray, scores: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of AUC over resamples of the items (pass videos for a video-level CI).

    Resamples with only one class are dropped; NaN when fewer than 10 usable resamples remain.
    Resample ``b`` is the ``b``-th row of ``rng.integers(0, n, (n_boot, n))``, the same items
    as ``n_boot`` successive ``rng.integers(0, n, n)`` calls (numpy draws them from one stream).
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if not _two_classes(labels):
        return float("nan"), float("nan")
    n = len(labels)
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    # blocks of resamples keep the (resamples × items) count matrices near 4 M entries,
    # so a frame-level interval over 100k frames does not allocate gigabytes
    step = max(1, 4_000_000 // n)
    values = np.concatenate([resampled_auc(labels, scores, idx[b : b + step]) for b in range(0, n_boot, step)])
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def resampled_auc(labels: np.ndarray, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """AUC of every resample at once: row ``b`` of ``idx`` (B, n) lists the items drawn.

    The AUC is the Mann-Whitney statistic (what ``roc_auc_score``'s trapezoids add up to):
    the share of (positive, negative) pairs the scores order correctly, a tie counting
    half. A resample is a multiset of the items, so each item enters with the number of
    times it was drawn. With the distinct scores sorted, ``neg[b, v]`` / ``pos[b, v]``
    count the drawn negatives / positives at score value ``v``, and

        AUC_b = sum_v pos[b, v] * (negatives below v + neg[b, v] / 2) / (P_b * N_b).

    A resample with one class only is NaN. Cost: O(B * n), no per-resample loop.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    n_boot, n = idx.shape
    # draws of each item in each resample: (B, n)
    counts = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])  # first item of each value
    # per (resample, score value): drawn negatives and positives; columns are summed over
    # the items sharing a value (ties), so no (n, n) structure is ever built
    by_value = counts[:, order]
    is_pos = labels[order]
    neg = np.add.reduceat(by_value * ~is_pos, starts, axis=1)
    pos = np.add.reduceat(by_value * is_pos, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives strictly below each value
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_b = (pos * (below + neg / 2)).sum(axis=1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc_b, np.nan)
