"""Do the papers' claims hold on a results directory? Seed-paired differences with 95% t-intervals.

Each claim below compares a detector with a baseline on named cells of one protocol (or the
gain on one set of cells with the gain on another). Per seed s, the claim's quantity is the
mean over its cells of (detector − baseline) at seed s (both trained with seed s: same data
order and initialisation stream); the table gives its mean over the seeds both share and the
95% t-interval (n − 1 degrees of freedom). A claim *holds* when the whole interval lies on the
side the paper says, is *reversed* when it lies wholly on the other side, and is *not shown*
otherwise. With three seeds the t-interval is wide (t = 4.30): "not shown" often means "not
measured precisely enough", never "refuted".

    python benchmarks/claims.py --results results/runs            # markdown table
    python benchmarks/claims.py --results DIR --claim two_gen_bat_raw_c40
    python benchmarks/claims.py --reference results/reference/mini.json  # the shipped per-seed AUCs

A reference file (``dfbench check --write``) holds per-seed AUCs, so every AUC claim can be read
from it without a run (not the frame-error claim: it keeps no fp/fn). With ``--results`` too,
a results row wins over the reference cell of the same key.

The claims are the ones issue 17 names (compression and cross-quality) and the cross-dataset
ones of the protocols issue 13 added; each says which paper table it comes from. A
cross-dataset claim averages the paper's columns that the embedded benchmark has (no DFD, no
DFDC stand-in), the same cells on every run. Nothing here is tuned toward a result: a claim's
cells are the paper's own setting, fixed before its runs except ``big_arts_partial`` (written
after the partial-manipulation runs had been seen; it averages all seven regions the paper
prints), and every claim is printed whichever way it falls.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy import stats

from dfbench.benchmark.check import cell_key, load_reference_cells
from dfbench.benchmark.errors import DfbenchError
from dfbench.benchmark.results import ResultsStore
from dfbench.benchmark.settings import get_settings

Cells = tuple[tuple[str, str], ...]  # (training, test) pairs; "*" matches any
QUALITIES = ("raw", "c23", "c40")
CROSS_QUALITY: Cells = tuple((a, f"NT/{b}") for a in QUALITIES for b in QUALITIES if a != b)
# cross_manipulation (NT -> *): one NT model trained at c23, scored on the other FF++ methods
CROSS_METHOD: Cells = tuple(("NT/c23", f"{m}/c23") for m in ("DF", "F2F", "FS"))
# cross-dataset columns the embedded benchmark has (DFD: no FF++-like DeepFakeDetection; DFDC:
# no stand-in), so each claim below is the paper's over the columns that can be measured here
FROM_CDF: Cells = tuple(("CDF", t) for t in ("FF++/DF/c23", "DFDCP", "UADFV", "DT-LQ", "DT-HQ"))
FROM_FFPP_DF: Cells = tuple(("FF++/DF/c23", t) for t in ("DFDCP", "CDF", "UADFV", "DT-LQ", "DT-HQ"))
QAD_SETS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "CDFv2", "FFIW10K")
QAD_MIXED: Cells = tuple((m, f"{m}/mixed") for m in QAD_SETS)
QAD_JPEG: Cells = tuple((m, f"{m}/{'orig' if m in ('CDFv2', 'FFIW10K') else 'raw'}+random_jpeg") for m in QAD_SETS)
QAD_QUALITIES = tuple((m, ("orig" if m in ("CDFv2", "FFIW10K") else "raw", "c23", "c40")) for m in QAD_SETS)
# Table 3: one blind model per set, scored on each quality, against one model per set and quality
QAD_BLIND: Cells = tuple((m, f"{m}/{q}") for m, qs in QAD_QUALITIES for q in qs)
QAD_AWARE: Cells = tuple((f"{m}@{q}", f"{m}/{q}") for m, qs in QAD_QUALITIES for q in qs)
PARTIAL: Cells = tuple(("CDF", f"CDF/{r}") for r in ("eye", "nose", "mouth", "lower", "upper", "left", "right"))
FROM_SBI: Cells = tuple(("FF++-real+SBI", t) for t in ("CDF", "DFDCP", "WDF"))


@dataclass(frozen=True)
class Claim:
    name: str
    paper: str  # where the paper claims it
    text: str  # the claim, as the paper makes it
    protocol: str
    detector: str  # "detector" or "detector [variant]"
    baseline: str
    cells: Cells
    metric: str = "auc"
    level: str = "video"
    errors: bool = False  # compare fp + fn (frame counts) instead of the metric's value
    perturbation: str = ""  # the cells' test perturbation op ("" = clean); one op per claim
    sign: int = 1  # +1: the claim is detector > baseline; -1: detector < baseline
    # contrast: the gain on `cells` minus the gain on these cells of `contrast_protocol`
    contrast_protocol: str | None = None
    contrast_cells: Cells = field(default_factory=tuple)
    # the baseline measured elsewhere (QAD Table 3: one blind model against three
    # quality-aware ones): its mean over these cells of `baseline_protocol`, same count
    baseline_protocol: str | None = None
    baseline_cells: Cells = field(default_factory=tuple)


CLAIMS: tuple[Claim, ...] = (
    Claim("two_gen_bat_raw_c40", "two_gen_bat Table II", "Two-Gen-BAT raises raw -> c40 (NT) over ERM",
          "cross_quality", "two_gen_bat", "erm", (("raw", "NT/c40"),)),
    Claim("two_gen_bat_cross_quality", "two_gen_bat Table II", "Two-Gen-BAT raises the cross-quality cells (mean of the 6 off-diagonal) over ERM",
          "cross_quality", "two_gen_bat", "erm", CROSS_QUALITY),
    Claim("grad_bat_cross_quality", "two_gen_bat Table II", "Grad-BAT raises the cross-quality cells over ERM",
          "cross_quality", "grad_bat", "erm", CROSS_QUALITY),
    Claim("combined_at_cross_quality", "two_gen_bat Table II", "Combined AT raises the cross-quality cells over ERM",
          "cross_quality", "combined_at", "erm", CROSS_QUALITY),
    Claim("aug_cross_quality", "two_gen_bat Table V", "combined traditional augmentation raises the cross-quality cells over ERM",
          "cross_quality", "aug_combined", "erm", CROSS_QUALITY),
    Claim("aug_quality_more_than_method", "two_gen_bat Tables IV-V, App. E",
          "traditional augmentation helps cross-quality more than cross-method (gain on the 6 cross-quality cells minus gain on NT c23 -> DF, F2F, FS)",
          "cross_quality", "aug_combined", "erm", CROSS_QUALITY,
          contrast_protocol="cross_manipulation", contrast_cells=CROSS_METHOD),
    Claim("two_gen_bat_all_qualities", "two_gen_bat Table III", "trained on all qualities, Two-Gen-BAT beats ERM on the pooled test",
          "all_qualities", "two_gen_bat", "erm", (("all", "NT/mixed"),)),
    Claim("grad_bat_all_qualities", "two_gen_bat Table III", "trained on all qualities, Grad-BAT beats ERM on the pooled test",
          "all_qualities", "grad_bat", "erm", (("all", "NT/mixed"),)),
    Claim("combined_at_all_qualities", "two_gen_bat Table III", "trained on all qualities, Combined AT beats ERM on the pooled test",
          "all_qualities", "combined_at", "erm", (("all", "NT/mixed"),)),
    Claim("aug_all_qualities", "two_gen_bat Table III", "trained on all qualities, combined augmentation beats ERM on the pooled test",
          "all_qualities", "aug_combined", "erm", (("all", "NT/mixed"),)),
    Claim("qad_vs_erm", "qad Table 4", "QAD beats mixed-quality ERM (NT, mixed test)",
          "qad_ablation", "qad", "erm", (("NeuralTextures", "NeuralTextures/mixed"),)),
    Claim("qad_hsic_helps", "qad Table 4", "the HSIC term alone beats mixed-quality ERM",
          "qad_ablation", "qad_hsic_only", "erm", (("NeuralTextures", "NeuralTextures/mixed"),)),
    Claim("qad_awp_helps", "qad Table 4", "AWP alone beats mixed-quality ERM",
          "qad_ablation", "qad_awp_only", "erm", (("NeuralTextures", "NeuralTextures/mixed"),)),
    Claim("qad_pairwise_helps", "qad Table 4", "the pairwise (Eq. 3) term alone beats mixed-quality ERM",
          "qad_ablation", "qad_pairwise", "erm", (("NeuralTextures", "NeuralTextures/mixed"),)),
    Claim("qad_vs_hsic_only", "qad Table 4", "QAD (HSIC + AWP) beats HSIC alone",
          "qad_ablation", "qad", "qad_hsic_only", (("NeuralTextures", "NeuralTextures/mixed"),)),
    Claim("qad_vs_awp_only", "qad Table 4", "QAD (HSIC + AWP) beats AWP alone",
          "qad_ablation", "qad", "qad_awp_only", (("NeuralTextures", "NeuralTextures/mixed"),)),
    Claim("pbnet_errors", "pbnet Tables III, VII", "the bleach lowers the frozen c23 detector's c40 errors (FP + FN frames, mean of the 4 methods)",
          "compression_remedy", "pbnet [detector+bleach]", "pbnet [detector]",
          (("DF/c23", "DF/c40"), ("F2F/c23", "F2F/c40"), ("FS/c23", "FS/c40"), ("NT/c23", "NT/c40")),
          metric="acc", level="frame", errors=True, sign=-1),
    Claim("pbnet_auc", "pbnet Table III", "the bleach raises the frozen c23 detector's c40 frame AUC (mean of the 4 methods)",
          "compression_remedy", "pbnet [detector+bleach]", "pbnet [detector]",
          (("DF/c23", "DF/c40"), ("F2F/c23", "F2F/c40"), ("FS/c23", "FS/c40"), ("NT/c23", "NT/c40")),
          level="frame"),
    Claim("big_arts_from_cdf", "big_arts Tables 1, 5", "trained on Celeb-DF, BiG-Arts beats ERM across datasets (mean of FF++ DF c23, DFDCP, UADFV, DF-TIMIT LQ / HQ)",
          "celebdf_generalization", "big_arts", "erm", FROM_CDF),
    Claim("big_arts_cdf_in_dataset", "big_arts Tables 1, 5", "trained on Celeb-DF, BiG-Arts beats ERM on the Celeb-DF test set",
          "celebdf_generalization", "big_arts", "erm", (("CDF", "CDF"),)),
    Claim("big_arts_cdf_wdf", "big_arts Table 3", "trained on Celeb-DF, BiG-Arts beats ERM on WildDeepfake",
          "celebdf_generalization", "big_arts", "erm", (("CDF", "WDF"),)),
    Claim("big_arts_partial", "big_arts Table 7", "trained on Celeb-DF, BiG-Arts beats ERM on partially manipulated faces (mean of the seven regions)",
          "partial_manipulation", "big_arts", "erm", PARTIAL),
    Claim("big_arts_from_ffpp_df", "big_arts Table 4", "trained on FF++ Deepfakes c23, BiG-Arts beats ERM across datasets (mean of DFDCP, CDF, UADFV, DF-TIMIT LQ / HQ)",
          "ffpp_deepfakes", "big_arts", "erm", FROM_FFPP_DF),
    Claim("pim_sbi_vs_sbi", "pim Tables V, IX", "on SBI data, PIM (α = 1, β = 0) beats SBI* (SAM, α = 0, β = 1) across datasets (mean of CDF, DFDCP, WDF)",
          "sbi_cross_dataset", "pim", "sam", FROM_SBI),
    Claim("qad_quality_agnostic", "qad Table 1", "trained on all qualities at once, QAD beats the mixed-quality ERM baseline on the mixed test (mean of the seven sets: FF++ four methods, FaceShifter, CDFv2, FFIW10K; frame AUC, the table's level)",
          "quality_agnostic", "qad", "erm", QAD_MIXED, level="frame"),
    Claim("qad_random_jpeg", "qad Table 2", "trained on all qualities at once, QAD beats the mixed-quality ERM baseline under random JPEG (mean of the seven sets; frame AUC)",
          "quality_agnostic", "qad", "erm", QAD_JPEG, level="frame", perturbation="random_jpeg"),
    Claim("qad_quality_aware", "qad Table 3", "one blind QAD model is on par with or better than quality-aware ERM [x3] (a model per quality, each scored on its own; mean of the 21 per-quality frame AUCs)",
          "quality_agnostic", "qad", "erm", QAD_BLIND, level="frame", baseline_protocol="quality_aware", baseline_cells=QAD_AWARE),
    Claim("two_gen_bat_ffpp_generalization", "two_gen_bat Table VI", "trained on all FF++ methods and qualities, Two-Gen-BAT beats ERM on Celeb-DF (frame AUC, the table's level)",
          "ffpp_generalization", "two_gen_bat", "erm", (("FF++/all", "CDF"),), level="frame"),
)


def _who(rows: pd.DataFrame) -> pd.Series:
    return rows["detector"] + rows["variant"].fillna("").map(lambda v: f" [{v}]" if v else "")


def per_seed_mean(rows: pd.DataFrame, protocol: str, who: str, claim: Claim, cells: Cells) -> pd.Series:
    """Per seed: the mean over ``cells`` of ``who``'s quantity; a seed counts only with every cell."""
    sel = rows[(rows["protocol"] == protocol) & (rows["metric"] == claim.metric) & (rows["level"] == claim.level)]
    sel = sel[sel["perturbation"].fillna("").eq(claim.perturbation)]
    if sel.empty:
        return pd.Series(dtype=float)
    sel = sel[_who(sel) == who]
    wanted = {(str(t), str(c)) for t, c in cells}
    keep = [(str(t), str(c)) in wanted for t, c in zip(sel["training"], sel["test"])]
    sel = sel[pd.Series(keep, index=sel.index, dtype=bool)]  # a bare empty list would select columns
    quantity = (sel["fp"] + sel["fn"]) if claim.errors else sel["value"]
    per_cell = quantity.groupby([sel["seed"], sel["training"], sel["test"]]).mean()
    counts = per_cell.groupby(level="seed").size()
    complete = counts[counts == len(wanted)].index
    return per_cell[per_cell.index.get_level_values("seed").isin(complete)].groupby(level="seed").mean()


def per_seed_gain(rows: pd.DataFrame, claim: Claim, protocol: str, cells: Cells, baseline_protocol: str, baseline_cells: Cells) -> pd.Series:
    """Per seed: the detector's mean over ``cells`` minus the baseline's over its cells; seeds both have."""
    detector = per_seed_mean(rows, protocol, claim.detector, claim, cells)
    baseline = per_seed_mean(rows, baseline_protocol, claim.baseline, claim, baseline_cells)
    return (detector - baseline).dropna()


def evaluate(rows: pd.DataFrame, claim: Claim) -> dict[str, object]:
    gain = per_seed_gain(rows, claim, claim.protocol, claim.cells,
                         claim.baseline_protocol or claim.protocol, claim.baseline_cells or claim.cells)
    if claim.contrast_protocol:
        c = claim.contrast_protocol
        other = per_seed_gain(rows, claim, c, claim.contrast_cells, c, claim.contrast_cells)
        gain = (gain - other).dropna()
    n = len(gain)
    out: dict[str, object] = {"claim": claim.name, "paper": claim.paper, "text": claim.text, "n": n}
    if n < 2:
        out.update(mean=float("nan"), low=float("nan"), high=float("nan"), verdict=f"not run ({n} seed(s))")
        return out
    mean = float(gain.mean())
    half = float(stats.t.ppf(0.975, n - 1) * gain.std(ddof=1) / n**0.5)
    low, high = mean - half, mean + half
    if claim.sign * low > 0 and claim.sign * high > 0:
        verdict = "holds"
    elif claim.sign * low < 0 and claim.sign * high < 0:
        verdict = "reversed"
    else:
        verdict = "not shown"
    out.update(mean=mean, low=low, high=high, verdict=verdict, seeds=",".join(str(int(s)) for s in gain.index))
    return out


def claims_table(rows: pd.DataFrame, names: Sequence[str] | None = None) -> pd.DataFrame:
    chosen = [c for c in CLAIMS if not names or c.name in names]
    return pd.DataFrame([evaluate(rows, c) for c in chosen])


def _markdown(table: pd.DataFrame, errors_claims: set[str]) -> str:
    lines = ["| claim | paper | seed-paired difference [95% CI] | n | verdict |", "|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        unit = " frames" if r["claim"] in errors_claims else ""
        diff = "–" if pd.isna(r["mean"]) else f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]{unit}"
        lines.append(f"| {r['text']} | {r['paper']} | {diff} | {r['n']} | {r['verdict']} |")
    return "\n".join(lines)


def reference_rows(path: Path) -> pd.DataFrame:
    """A reference file's per-seed cells as result-like rows (no fp/fn: NaN)."""
    _, cells = load_reference_cells(path)
    return pd.DataFrame(cells).assign(fp=float("nan"), fn=float("nan"))


def combined_rows(results: pd.DataFrame | None, reference: pd.DataFrame | None) -> pd.DataFrame | None:
    """Results rows, plus the reference cells whose key (``check.cell_key``) no results row has."""
    if reference is None or reference.empty:
        return results
    if results is None or results.empty:
        return reference
    have = {cell_key(r) for r in results.to_dict("records")}
    new = pd.Series([cell_key(c) not in have for c in reference.to_dict("records")], index=reference.index, dtype=bool)
    return pd.concat([results, reference[new]], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=None, help="results directory (default $DFBENCH_RESULTS or ./results/runs)")
    ap.add_argument("--reference", type=Path, default=None, help="a reference JSON's per-seed AUCs (with --results: where it has no row)")
    ap.add_argument("--claim", action="append", help="only this claim (repeatable)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.claim or ()) - {c.name for c in CLAIMS})
    if unknown:  # an unknown name would print an empty table
        print(f"error: --claim: no claim named {', '.join(unknown)} (see CLAIMS in {Path(__file__).name})", file=sys.stderr)
        return 2
    if args.results is not None and not args.results.is_dir():  # a typo would read as "not run" everywhere
        print(f"error: --results: {args.results} is not a directory", file=sys.stderr)
        return 2
    results = None
    if args.results is not None or args.reference is None:
        results = ResultsStore(args.results or get_settings().results).read_all()
    try:
        reference = reference_rows(args.reference) if args.reference else None
    except DfbenchError as exc:  # missing or malformed file: one line, before any table
        print(f"error: --reference: {exc}", file=sys.stderr)
        return 2
    rows = combined_rows(results, reference)
    table = claims_table(rows, args.claim)
    print(_markdown(table, {c.name for c in CLAIMS if c.errors}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
