"""Print per-protocol tables of a results directory: mean ± sd over seeds (and n) per
detector × variant × training × test cell, plus the mean 95% bootstrap interval.

    python benchmarks/summarize.py [--results DIR] [--protocol P] [--metric auc] [--level video]
        [--baseline erm [--average CELL ...]]

With ``--baseline``, also the seed-paired difference of every other detector from the
baseline per cell, as mean and 95% t-interval over seeds (seed s of both detectors saw the
same data order), and with ``--average`` the same for the per-seed mean over the named cells
(e.g. the cross-dataset cells).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy import stats

from dfbench.benchmark.results import ResultsStore
from dfbench.benchmark.settings import get_settings


def _who(sel: pd.DataFrame) -> pd.Series:
    """Row label: the detector, with its variant in brackets when it has one."""
    return sel["detector"] + sel["variant"].fillna("").map(lambda v: f" [{v}]" if v else "")


def summary_table(rows: pd.DataFrame, metric: str, level: str) -> pd.DataFrame:
    sel = rows[(rows["metric"] == metric) & (rows["level"] == level)].copy()
    if sel.empty:
        return pd.DataFrame()
    sel["cell"] = sel["test"].astype(str)
    pert = sel["perturbation"].fillna("").astype(str)
    perturbed = (pert != "").to_numpy()
    if perturbed.any():
        suffix = [f" {op}={s:g}" for op, s in zip(pert[perturbed], sel.loc[perturbed, "strength"])]
        sel.loc[perturbed, "cell"] = sel.loc[perturbed, "cell"] + pd.Series(suffix, index=sel.index[perturbed])
    sel["who"] = _who(sel)
    grouped = sel.groupby(["protocol", "who", "training", "cell"], sort=False)["value"]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    ci = sel.groupby(["protocol", "who", "training", "cell"], sort=False)[["ci_low", "ci_high"]].mean().reset_index()
    out = out.merge(ci, on=["protocol", "who", "training", "cell"])
    out["text"] = out.apply(
        lambda r: f"{r['mean']:.3f}±{0 if pd.isna(r['std']) else r['std']:.3f} (n={int(r['count'])})", axis=1
    )
    return out


def paired_differences(rows: pd.DataFrame, metric: str, level: str, baseline: str, average: list[str]) -> pd.DataFrame:
    """Per detector × training × cell: mean and 95% t-interval of (detector − baseline) over shared seeds."""
    sel = rows[(rows["metric"] == metric) & (rows["level"] == level) & rows["perturbation"].fillna("").eq("")]
    sel = sel.assign(who=_who(sel))
    wide = sel.pivot_table(index=["training", "test", "seed"], columns="who", values="value", aggfunc="mean")
    if average:
        present = [c for c in average if c in wide.index.get_level_values("test")]
        avg = wide[wide.index.get_level_values("test").isin(present)].groupby(level=["training", "seed"]).mean()
        avg["test"] = "mean(" + ",".join(present) + ")"
        wide = pd.concat([wide, avg.set_index("test", append=True).reorder_levels(["training", "test", "seed"])])
    if baseline not in wide.columns:
        return pd.DataFrame()
    out = []
    for who in (c for c in wide.columns if c != baseline):
        diff = (wide[who] - wide[baseline]).dropna()
        for (training, test), d in diff.groupby(level=["training", "test"], sort=False):
            n = len(d)
            half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / n**0.5 if n > 1 else float("nan")
            out.append({"who": who, "training": training, "cell": test,
                        "text": f"{d.mean():+.3f} [{d.mean() - half:+.3f}, {d.mean() + half:+.3f}] (n={n})"})
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--metric", default="auc")
    ap.add_argument("--level", default="video")
    ap.add_argument("--baseline", default=None, help="detector to take seed-paired differences from")
    ap.add_argument("--average", nargs="*", default=[], help="test cells whose per-seed mean is also compared")
    args = ap.parse_args()
    rows = ResultsStore(args.results or get_settings().results).read_all()
    if args.protocol:
        rows = rows[rows["protocol"] == args.protocol]
    table = summary_table(rows, args.metric, args.level)
    if table.empty:
        print("no rows")
        return
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 40):
        for protocol, part in table.groupby("protocol", sort=False):
            print(f"\n## {protocol}: {args.level}-level {args.metric}, mean±sd over seeds")
            print(part.pivot_table(index=["who", "training"], columns="cell", values="text", aggfunc="first", sort=False).to_string())
            if args.baseline:
                diffs = paired_differences(rows[rows["protocol"] == protocol], args.metric, args.level, args.baseline, args.average)
                if not diffs.empty:
                    print(f"\n## {protocol}: difference from {args.baseline}, mean [95% t-interval over seeds]")
                    print(diffs.pivot_table(index=["who", "training"], columns="cell", values="text", aggfunc="first", sort=False).to_string())


if __name__ == "__main__":
    main()
