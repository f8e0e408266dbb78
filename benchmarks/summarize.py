"""Print per-protocol tables of a results directory: mean ± sd over seeds (and n) per
detector × variant × training × test cell, plus the mean 95% bootstrap interval.

    python benchmarks/summarize.py [--results DIR] [--protocol P] [--metric auc] [--level video]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dfbench.benchmark.results import ResultsStore
from dfbench.benchmark.settings import get_settings


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
    sel["who"] = sel["detector"] + sel["variant"].fillna("").map(lambda v: f" [{v}]" if v else "")
    grouped = sel.groupby(["protocol", "who", "training", "cell"], sort=False)["value"]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    ci = sel.groupby(["protocol", "who", "training", "cell"], sort=False)[["ci_low", "ci_high"]].mean().reset_index()
    out = out.merge(ci, on=["protocol", "who", "training", "cell"])
    out["text"] = out.apply(
        lambda r: f"{r['mean']:.3f}±{0 if pd.isna(r['std']) else r['std']:.3f} (n={int(r['count'])})", axis=1
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--protocol", default=None)
    ap.add_argument("--metric", default="auc")
    ap.add_argument("--level", default="video")
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


if __name__ == "__main__":
    main()
