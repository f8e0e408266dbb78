"""Time of the video-level bootstrap AUC interval, per-resample loop vs vectorised.

    python benchmarks/bootstrap.py [--videos 500] [--n-boot 1000] [--repeats 3]

One test cell's interval: ``n_boot`` resamples of ``--videos`` videos. "loop" is the
interval as first written (one ``roc_auc_score`` call per resample); "vectorised" is
``bootstrap_auc_interval`` (rank-based AUC of all resamples at once). Both take the same
resamples from the same seed; the script checks the two intervals agree to 1e-12.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from dfbench.benchmark.metrics import bootstrap_auc_interval


def loop_interval(y: np.ndarray, s: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) == 2:
            values.append(roc_auc_score(y[idx], s[idx]))
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def best_of(fn, repeats: int) -> tuple[float, tuple[float, float]]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=500)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    y = (rng.random(args.videos) < 0.5).astype(int)
    s = rng.normal(0, 1, args.videos) + 0.8 * y
    t_loop, ci_loop = best_of(lambda: loop_interval(y, s, args.n_boot, 0), args.repeats)
    t_vec, ci_vec = best_of(lambda: bootstrap_auc_interval(y, s, n_boot=args.n_boot, seed=0), args.repeats)
    assert np.allclose(ci_loop, ci_vec, rtol=0, atol=1e-12), (ci_loop, ci_vec)
    print(f"{args.videos} videos, {args.n_boot} resamples, best of {args.repeats}")
    print(f"loop:       {t_loop * 1000:8.1f} ms per cell  interval {ci_loop[0]:.6f}–{ci_loop[1]:.6f}")
    print(f"vectorised: {t_vec * 1000:8.1f} ms per cell  interval {ci_vec[0]:.6f}–{ci_vec[1]:.6f}")
    print(f"speed-up: {t_loop / t_vec:.0f}x")


if __name__ == "__main__":
    main()
