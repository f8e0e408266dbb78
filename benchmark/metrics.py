"""Detection metrics at frame and video level (video score = mean of its frame scores).

scikit-learn supplies AUC, AP and log-loss; EER comes from its ROC curve. A metric that is
undefined for the given labels (one class only) is NaN, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score, roc_curve

EPS = 1e-7


def _two_classes(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) == 2


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(roc_auc_score(labels, scores)) if _two_classes(labels) else float("nan")


def accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(np.mean((scores >= threshold).astype(int) == labels)) if len(labels) else float("nan")


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    """Equal error rate: where the false-positive rate meets the false-negative rate."""
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
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    return float(average_precision_score(labels, scores)) if _two_classes(labels) else float("nan")


def logloss(labels: np.ndarray, scores: np.ndarray) -> float:
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


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "auc": auc,
    "acc": accuracy,
    "eer": eer,
    "ap": average_precision,
    "logloss": logloss,
}
HIGHER_IS_BETTER = {"auc": True, "acc": True, "eer": False, "ap": True, "logloss": False}


def video_level(meta: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """One row per video: label and mean frame score, grouped by the full video_id."""
    frame = pd.DataFrame({"video_id": meta["video_id"].to_numpy(), "label": meta["label"].to_numpy(), "score": scores})
    grouped = frame.groupby("video_id", sort=True)
    out = grouped.agg(label=("label", "first"), score=("score", "mean"), n_frames=("score", "size"))
    if (grouped["label"].nunique() > 1).any():
        raise ValueError("a video has frames with different labels")
    return out.reset_index()


def compute_metrics(
    labels: np.ndarray, scores: np.ndarray, names: tuple[str, ...] = tuple(METRICS)
) -> dict[str, float]:
    return {name: METRICS[name](labels, scores) for name in names}


def bootstrap_auc_interval(
    labels: np.ndarray, scores: np.ndarray, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of AUC over resamples of the items (pass videos for a video-level CI).

    Resamples with only one class are dropped; NaN when fewer than 10 usable resamples remain.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    if not _two_classes(labels):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = len(labels)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if _two_classes(labels[idx]):
            values.append(roc_auc_score(labels[idx], scores[idx]))
    if len(values) < 10:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
