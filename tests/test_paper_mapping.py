"""The declared mapping from our cells to the papers' numbers (protocol ``paper_cells:`` and
detector ``paper_methods``), the mean-of-qualities cells, and the ``dfbench papers`` report.

Each mapping test names the paper value the leaderboard must show beside our cell.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.leaderboard import (
    _paper_entries,
    build_leaderboard,
    detector_paper_methods,
    load_reference,
    protocol_paper_cells,
)
from dfbench.benchmark.papers import claims, coverage_rows, render_coverage, summarize_coverage
from dfbench.benchmark.protocol import load_protocol, parse_protocol
from dfbench.benchmark.results import average_rows


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return load_reference()


@pytest.fixture(scope="module")
def coverage(ref: pd.DataFrame) -> pd.DataFrame:
    return coverage_rows(ref)


def shown(
    ref: pd.DataFrame, protocol: str, detector: str, column: tuple, level: str, metric: str = "auc"
) -> dict[tuple[str, str, str, str], float]:
    """{(table, method, backbone, train): value} the leaderboard shows beside ``column``."""
    entries = _paper_entries(
        ref, protocol_paper_cells(protocol), detector_paper_methods(detector), [column], (metric,), level
    )
    return {(e.paper + " " + e.table, e.method, e.backbone, e.train): e.values[(column, metric)] for e in entries}


# --------------------------------------------------------------------------- the review's fixes
def test_dualflat_is_the_alpha_plus_beta_0_2_row(ref: pd.DataFrame) -> None:
    # dualflat is alpha = beta = 0.1: Table VIII's a+b=0.2, a:b=0.5:0.5 row, CDF 86.64 (pim
    # line 395). The a+b=1.0, 0.5:0.5 row (CDF 83.80) is another setting.
    got = shown(ref, "cross_dataset", "dualflat", ("FF++/c23", "CDF", "", None), "video")
    assert got == {("pim VIII", "DualFlat (a+b=0.2, a:b=0.5:0.5)", "ConvNeXt-base", "FF++"): pytest.approx(0.8664)}
    sam = shown(ref, "cross_dataset", "sam", ("FF++/c23", "CDF", "", None), "video")
    assert list(sam.values()) == [pytest.approx(0.8342)]  # SAM = alpha 0, beta 1


def test_pbnet_numbers_are_frame_level(ref: pd.DataFrame) -> None:
    # Table VII, w/o L_rem: (14,465 FP + 4,396 FN) / 84,000 frames = 22.45 % errors = 100 - 77.55
    vii = ref[(ref["paper"] == "pbnet") & (ref["table"] == "VII") & (ref["method"] == "PBNet w/o L_rem")]
    errors = vii.set_index("metric")["value"]
    assert 100 * (errors["fp"] + errors["fn"]) / (280 * 300) == pytest.approx(100 - errors["acc"], abs=0.01)
    column = ("FS/c23", "FS/c40", "", None)
    assert shown(ref, "compression_remedy", "pbnet", column, "video") == {}
    frame = shown(ref, "compression_remedy", "pbnet", column, "frame")
    assert frame[("pbnet VII", "PBNet", "Xception", "FF++/FS c23")] == pytest.approx(0.8724)
    assert frame[("pbnet III", "ERM", "Xception", "FF++/FS c23")] == pytest.approx(0.8414)  # RECG x
    no_rem = shown(ref, "compression_remedy", "pbnet_no_lrem", column, "frame", "acc")
    assert no_rem == {("pbnet VII", "PBNet w/o L_rem", "Xception", "FF++/FS c23"): pytest.approx(0.7755)}


def test_qad_table_3_is_the_mean_of_three_qualities(ref: pd.DataFrame) -> None:
    # QAD (ResNet-50) NT: Table 3 prints 88.85, the mean of three per-quality AUCs; Table 1's
    # pooled mixed cell is 91.25. The pooled column must not show Table 3's number.
    mean = ("NeuralTextures", "NeuralTextures/mean(raw,c23,c40)", "", None)
    got = shown(ref, "quality_agnostic", "qad", mean, "frame")
    assert got[("qad Table 3", "QAD", "ResNet-50", "FF++/NT mixed")] == pytest.approx(0.8885)
    assert all(key[0] == "qad Table 3" for key in got)
    pooled = shown(ref, "quality_agnostic", "qad", ("NeuralTextures", "NeuralTextures/mixed", "", None), "frame")
    assert {key[0] for key in pooled} == {"qad Table 1", "qad Table 5"}  # Table 5: other backbones, same setting
    assert pooled[("qad Table 1", "QAD", "ResNet-50", "FF++/NT mixed")] == pytest.approx(0.9125)
    # quality_aware's ERM is Table 3's ResNet-50 [x3] baseline: NT 88.96 (three models' mean)
    aware = shown(ref, "quality_aware", "erm", ("", "NeuralTextures/mean(raw,c23,c40)", "", None), "frame")
    assert aware[("qad Table 3", "ERM [x3]", "ResNet-50", "FF++/NT")] == pytest.approx(0.8896)
    assert not any(key[1] == "QAD" for key in aware)  # the blind QAD model is not quality-aware
    # ... and erm run blind (quality_agnostic) is not the [x3] baseline
    assert shown(ref, "quality_agnostic", "erm", mean, "frame") == {}


def test_mean_of_qualities_rows_are_per_seed_means() -> None:
    base = {"protocol": "quality_aware", "protocol_version": "1", "data_kind": "synthetic-mini", "detector": "erm",
            "variant": "", "backbone": "resnet18", "preset": "mini", "metric": "auc", "level": "frame",
            "perturbation": "", "strength": math.nan, "n_failed": 0}
    rows = []
    for seed, values in ((0, (0.9, 0.8, 0.6)), (1, (1.0, 0.7, 0.7))):
        for quality, value in zip(("raw", "c23", "c40"), values):
            rows.append({**base, "seed": seed, "training": f"Deepfakes@{quality}", "test": f"Deepfakes/{quality}",
                         "train_data": f"ffpp:Deepfakes@{quality}", "value": value})
    rows.append({**base, "seed": 2, "training": "Deepfakes@raw", "test": "Deepfakes/raw",
                 "train_data": "ffpp:Deepfakes@raw", "value": 0.5})  # seed 2 lacks c23 and c40
    out = average_rows(pd.DataFrame(rows))
    assert out["test"].unique().tolist() == ["Deepfakes/mean(raw,c23,c40)"]
    assert out["derived_from"].unique().tolist() == ["Deepfakes/raw; Deepfakes/c23; Deepfakes/c40"]
    assert sorted(out["seed"]) == [0, 1]
    assert out.sort_values("seed")["value"].tolist() == pytest.approx([(0.9 + 0.8 + 0.6) / 3, 0.8])


def test_two_gen_bat_table_3_is_the_pooled_test_and_app_c_is_mapped(ref: pd.DataFrame) -> None:
    spec = load_protocol("all_qualities")
    assert spec.version == 2
    mixed = next(t for t in spec.tests if t.name == "NT/mixed")
    assert mixed.data[0].qualities == ("raw", "c23", "c40")
    got = shown(ref, "all_qualities", "two_gen_bat", ("all", "NT/mixed", "", None), "frame")
    assert got[("two_gen_bat III", "Two-Gen-BAT", "EfficientNet", "FF++/NT mixed")] == pytest.approx(0.9036)
    assert shown(ref, "all_qualities", "two_gen_bat", ("all", "NT/c40", "", None), "frame") == {}
    # two_gen_bat is frame level (single-frame models, 270 frames per video): nothing at video level
    assert shown(ref, "all_qualities", "two_gen_bat", ("all", "NT/mixed", "", None), "video") == {}
    # App. C: 3-step Grad-AAT trained on NT c23, FS column 44.58
    fs = ("NT/c23", "FS/c23", "", None)
    app_c = shown(ref, "cross_manipulation", "grad_aat_3step", fs, "frame")
    assert app_c == {("two_gen_bat text (App. C)", "Grad-AAT (3-step)", "EfficientNet", "FF++/NT c23"): pytest.approx(0.4458)}


def test_cross_dataset_does_not_claim_big_arts_table_4(ref: pd.DataFrame, coverage: pd.DataFrame) -> None:
    # big_arts Table 4 trains on FF++ Deepfakes only at c23; cross_dataset trains on four methods
    assert not any(c.paper == "big_arts" for c in protocol_paper_cells("cross_dataset"))
    assert "big_arts 4" not in load_protocol("cross_dataset").paper_tables
    table4 = coverage[(coverage["paper"] == "big_arts") & (coverage["table"] == "Table 4")]
    # ffpp_deepfakes (FF++ Deepfakes c23 only) is the protocol that reproduces it
    assert not table4["covered_by"].str.contains("cross_dataset", regex=False).any()
    assert set(table4.loc[table4["covered"], "covered_by"].str.split(" ").str[0]) == {"ffpp_deepfakes"}


# --------------------------------------------------------------------------- declarations
def test_every_shipped_protocol_declares_tables_it_lists_and_cites_real_rows(ref: pd.DataFrame) -> None:
    tables = set(zip(ref["paper"], ref["table"]))
    for name in ("all_qualities", "celebdf_generalization", "compression_remedy", "cross_dataset", "cross_manipulation", "cross_quality",
                 "ffpp_deepfakes", "ffpp_generalization", "ffpp_method_matrix", "laundering", "partial_manipulation", "qad_ablation",
                 "quality_agnostic", "quality_aware"):
        cells = protocol_paper_cells(name)
        assert cells, name
        for cell in cells:
            assert (cell.paper, cell.table) in tables, (name, cell)
            # every declared cell reports at least one printed number
            assert any(cell.reports(r) for r in ref[ref["paper"] == cell.paper].to_dict("records")), (name, cell)


def test_detectors_declare_their_paper_names() -> None:
    # Table VIII's row, and Table IX's same row trained on FF++ reals + SBI (sbi_cross_dataset)
    assert detector_paper_methods("dualflat") == ("DualFlat (a+b=0.2, a:b=0.5:0.5)", "SBI-DualFlat (a+b=0.2, a:b=0.5:0.5)")
    assert claims(detector_paper_methods("pbnet"), "pbnet", "ERM")
    assert not claims(detector_paper_methods("pbnet"), "two_gen_bat", "ERM")  # "pbnet:ERM" is pbnet's only
    assert detector_paper_methods("no_such_detector") == ()


def _spec(paper_cells: object) -> dict:
    return {
        "name": "p", "version": 1, "paper_tables": ["qad 4"],
        "trainings": [{"name": "t", "data": [{"dataset": "ffpp", "qualities": ["c23"]}]}],
        "tests": [{"name": "a", "data": [{"dataset": "ffpp"}]}, {"name": "b", "data": [{"dataset": "ffpp"}]}],
        "paper_cells": paper_cells,
    }


def test_paper_cells_are_validated() -> None:
    ok = [{"paper": "qad", "tables": ["Table 4"], "level": "frame", "cells": [{"test": "a"}]}]
    spec = parse_protocol(_spec(ok), "x.yaml")
    assert spec.paper_cells[0].match == tuple((k, "") for k in ("train_data", "train_quality", "test_data", "test_quality", "perturbation"))
    # the mapping is not part of the protocol's meaning: same hash with or without it
    assert spec.spec_hash() == parse_protocol(_spec(None), "x.yaml").spec_hash()
    bad = [
        ([{**ok[0], "level": "clip"}], "level must be one of"),
        ([{**ok[0], "cells": [{"test": "zz"}]}], "unknown test"),
        ([{**ok[0], "cells": [{"test": "a", "training": "zz"}]}], "unknown training"),
        ([{**ok[0], "cells": [{"test": ["a", "b"]}]}], "needs a 'name'"),
        ([{**ok[0], "cells": [{"test": "a", "match": {"dataset": "x"}}]}], "unknown key"),
        ([{**ok[0], "cells": [{"test": "a", "strength": 3}]}], "not a value of the test's perturbation"),
        ([{k: v for k, v in ok[0].items() if k != "level"}], "lacks the required key 'level'"),
        ([{**ok[0], "tables": ["Table 5"]}], r"cites \['qad 5'\], which paper_tables does not list"),
    ]
    for cells, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_protocol(_spec(cells), "x.yaml")


# --------------------------------------------------------------------------- coverage report
def test_coverage_matches_hand_counts(coverage: pd.DataFrame) -> None:
    tables = {(t.paper, t.table): t for t in summarize_coverage(coverage)}
    # two_gen_bat Table I: 7 methods x (6 test columns + Avg) x (AUC, ACC), DFD has no ACC:
    # 7 x 14 - 7 = 91 printed; every one has a cross_manipulation cell, the 14 Avg numbers
    # its derived columns Avg (AUC) and Avg w/o DFD (ACC).
    t1 = tables[("two_gen_bat", "I")]
    assert (t1.covered, t1.printed) == (91, 91)
    assert t1.uncovered == []
    # pbnet Table III: 5 backbones x (ERM, PBNet) x 4 subsets x (Acc, AUC) = 80, less the two
    # empty FaceSwap Acc cells (MesoInception4, ResNet-50 baseline) = 78. F3-Net (16) and
    # MesoInception4 (15) are not timm backbones: 78 - 31 = 47 covered.
    t3 = tables[("pbnet", "III")]
    assert (t3.covered, t3.printed) == (47, 78)
    assert dict(t3.uncovered) == {
        "backbone not available (not a timm model): F3-Net": 16,
        "backbone not available (not a timm model): MesoInception4": 15,
    }
    # qad Table 3: 43 printed; covered = QAD and ERM [x3], each with ResNet-50 and
    # EfficientNet-B1, on the four FF++ manipulations, FaceShifter, Celeb-DF v2 and FFIW10K
    # (the last two re-encoded to c23/c40 by dfbench), and their Avg: 2 x 2 x (7 + 1) = 32.
    q3 = tables[("qad", "Table 3")]
    assert (q3.covered, q3.printed) == (32, 43)
    assert dict(q3.uncovered) == {"method not in dfbench: ADD [x3]": 6, "method not in dfbench: BZNet [x3]": 5}
    # every printed number is covered or has a reason
    assert (coverage["covered"] | coverage["reason"].ne("")).all()
    assert sum(t.printed for t in tables.values()) == len(coverage) == 2235


def test_papers_command_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    from dfbench.benchmark.cli import main

    assert main(["papers", "--paper", "pbnet", "--brief"]) == 0
    out = capsys.readouterr().out
    assert "pbnet: 67 / 136" in out  # Table VIII's three FN/FP ratios (fn_fp_ratio) since 64
    assert "  Table III                47 /   78" in out
    assert "  Table XI                  0 /    0" in out  # listed although it prints no number
    assert main(["papers", "--paper", "nope"]) == 2
    assert "error:" in capsys.readouterr().err


def test_papers_csv_is_written_formula_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dfbench.benchmark.cli import main

    ref = load_reference()
    ref = ref[ref["paper"] == "two_gen_bat"].head(3).assign(notes=["=1+1", "@x", "-0.5 note"])
    monkeypatch.setattr("dfbench.benchmark.leaderboard.load_reference", lambda: ref)
    out = tmp_path / "coverage.csv"
    assert main(["papers", "--brief", "--csv", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert table["notes"].tolist() == ["'=1+1", "'@x", "'-0.5 note"]
    assert table["value"].tolist() == ref["value"].tolist()  # numbers untouched


def test_render_names_every_uncovered_reason(coverage: pd.DataFrame) -> None:
    text = render_coverage(summarize_coverage(coverage))
    assert "not face-forgery detection: ImageNet adversarial-attack accuracy" in text
    # pbnet's "ERM" is the frozen detector of its own tables only, not big_arts' ERM baselines
    assert "reproduced by partial_manipulation (paper): erm, big_arts" in text
    assert "partial_manipulation (paper): erm, pbnet" not in text
    assert "reproduced by compression_remedy (paper): erm, pbnet" in text


def test_leaderboard_csv_carries_the_mean_cell_and_its_paper_value(tmp_path: Path) -> None:
    base = {"protocol": "quality_agnostic", "protocol_version": "1", "data_kind": "synthetic-mini", "detector": "qad",
            "variant": "", "backbone": "resnet50", "preset": "mini", "metric": "auc", "level": "frame",
            "training": "NeuralTextures", "train_data": "ffpp:NeuralTextures@raw+c23+c40"}
    rows = [{**base, "seed": 0, "test": f"NeuralTextures/{q}", "value": v}
            for q, v in (("raw", 0.9), ("c23", 0.8), ("c40", 0.7))]
    paths = build_leaderboard(pd.DataFrame(rows), tmp_path)
    csv = pd.read_csv(paths["csv"])
    mean = csv[csv["test"] == "NeuralTextures/mean(raw,c23,c40)"]
    assert mean.loc[mean["source"] == "dfbench", "mean"].item() == pytest.approx(0.8)
    paper = mean[(mean["source"] == "paper") & (mean["paper_backbone"] == "ResNet-50")]
    assert paper["mean"].item() == pytest.approx(0.8885) and paper["paper_table"].item() == "Table 3"


def test_rows_carry_the_selection_as_fields_and_old_rows_read_empty() -> None:
    from dfbench.benchmark.procedures import _structured
    from dfbench.benchmark.results import RESULT_COLUMNS, normalize_rows

    spec = load_protocol("laundering")
    ffpp = next(t for t in spec.trainings if t.name == "FF++/c23")
    assert _structured("train", ffpp.data) == {
        "train_dataset": "ffpp",
        "train_methods": "Deepfakes+Face2Face+FaceSwap+NeuralTextures",
        "train_qualities": "c23",
    }
    cdf = next(t for t in spec.tests if t.name == "CDF/h264")
    assert _structured("test", cdf.data) == {"test_dataset": "celebdf", "test_methods": "all", "test_qualities": "all"}
    new = {"train_dataset", "train_methods", "train_qualities", "test_dataset", "test_methods", "test_qualities"}
    assert new <= set(RESULT_COLUMNS)
    old = normalize_rows(pd.DataFrame([{"protocol": "p", "detector": "erm", "test": "t", "metric": "auc", "value": 0.5}]))
    assert old.loc[0, sorted(new)].tolist() == [""] * len(new)


# --------------------------------------------------------------------------- column averages
def test_coverage_of_averages_and_decision_metrics_matches_hand_counts(coverage: pd.DataFrame) -> None:
    tables = {(t.paper, t.table): t for t in summarize_coverage(coverage)}
    # pim Table IV: 2 methods x 2 (w/o, w/ aug) x 4 backbones = 16 rows x (4 datasets + Avg) = 80,
    # all covered: the columns by cross_dataset's tests, the 16 Avg by its Avg average.
    assert (tables[("pim", "IV")].covered, tables[("pim", "IV")].printed) == (80, 80)
    avg = coverage[(coverage["paper"] == "pim") & (coverage["table"] == "IV") & (coverage["test_data"] == "Avg")]
    assert len(avg) == 16 and avg["covered"].all()
    # two_gen_bat Table XV: 4 kernel sizes x 13 = 52, the 8 Avg included.
    assert (tables[("two_gen_bat", "XV")].covered, tables[("two_gen_bat", "XV")].printed) == (52, 52)
    # big_arts Table 2: 12 methods x (Acc, Precision, Recall, F1, AUC, EER) = 72. dfbench has 7 of
    # them (ERM VGG16, DenseNet-121, ResNet-50, ResNet-18; XceptionNet; Face X-ray; BiG-Arts;
    # AlexNet is no timm model): 7 x 6 = 42 covered, precision/recall/f1 now among them.
    t2 = tables[("big_arts", "Table 2")]
    assert (t2.covered, t2.printed) == (42, 72)
    assert not any(reason.startswith("metric not computed") for reason, _ in t2.uncovered)
    # pbnet Table VIII: 3 offsets x (Acc, FP, FN, FN/FP) = 12, all covered (FN/FP = fn_fp_ratio)
    assert (tables[("pbnet", "VIII")].covered, tables[("pbnet", "VIII")].printed) == (12, 12)
    # big_arts Table 1: 12 methods x (7 columns + Avg) = 96. The 7 methods dfbench has (4 ERM
    # backbones, XceptionNet, Face X-ray, BiG-Arts) have a cell in every column, UADFV, DT-LQ and
    # DT-HQ included, and in the Avg (celebdf_generalization's Avg): 7 x 8 = 56 covered; the other
    # 5 methods' 40 are uncovered for their own reason (AlexNet: not timm; 4 methods not in dfbench).
    b1t = tables[("big_arts", "Table 1")]
    assert (b1t.covered, b1t.printed) == (56, 96)
    assert sum(n for _, n in b1t.uncovered) == 40
    # Table 4 likewise (ffpp_deepfakes' Avg); Tables 5, 6: 4 rows x (7 columns + Avg), all covered
    assert (tables[("big_arts", "Table 4")].covered, tables[("big_arts", "Table 4")].printed) == (56, 96)
    for t in ("Table 5", "Table 6"):
        assert (tables[("big_arts", t)].covered, tables[("big_arts", t)].printed) == (32, 32)
    # qad Tables 1, 2: the 3 Avg of the methods dfbench has (QAD-R, QAD-E, Rossler et al. = erm)
    # are quality_agnostic's Avg/mixed and Avg/raw+random_jpeg; Table 3: QAD and ERM [x3] x 2
    # backbones = 4 Avg (Avg/mean(raw,c23,c40) of quality_agnostic, quality_aware); Table 5: all 48
    for t, covered, printed in (("Table 1", 24, 73), ("Table 2", 24, 73), ("Table 3", 32, 43), ("Table 5", 48, 48)):
        q = tables[("qad", t)]
        assert (q.covered, q.printed) == (covered, printed), t
        assert not any(r.startswith("column average") for r, _ in q.uncovered), t
    # no Avg is left whose columns all have cells but no declared average
    assert not (coverage["reason"] == "column average: no protocol declares it (averages: + paper_cells)").any()
    # 1592 (averages + metrics) + 66 (UADFV/DT-LQ/DT-HQ: big_arts Tables 1, 4: 7 methods x 3
    # columns each; Tables 5, 6: 4 rows x 3 each) + 32 (CDFv2/FFIW10K: qad Tables 1, 2: 3 methods
    # x 2 each; Table 3: 2 methods x 2 backbones x 2; Table 5: 6 rows x 2) = 1690, + 38 Avg
    # (big_arts Tables 1, 4: 7 each, 5, 6: 4 each; qad Tables 1, 2: 3 each, 3: 4, 5: 6) + 80 (SBI
    # training, sbi_cross_dataset: pim Table IX 14 rows x (4 columns + Avg) = 70, Table V's SBI*
    # and "Ours, FF++-Real & SBI" rows x 5 = 10)
    assert sum(t.covered for t in tables.values()) == 1690 + 7 + 7 + 4 + 4 + 3 + 3 + 4 + 6 + 70 + 10 == 1808


def test_paper_avg_is_the_mean_of_the_columns_each_average_declares(ref: pd.DataFrame, coverage: pd.DataFrame) -> None:
    """Every paper Avg a declared average covers spans exactly the printed columns of its row
    that the average's tests reproduce, and equals their mean up to the paper's rounding."""
    from dfbench.benchmark.papers import average_columns
    from dfbench.benchmark.protocol import list_protocols

    columns = average_columns(ref, coverage["covered"].tolist())
    ref = ref.fillna({"backbone": ""})  # methods printed without one (big_arts' Capsule, GSRM, RFM)
    records = ref.to_dict("records")
    checked: dict[str, int] = {}
    for name in list_protocols():
        spec = load_protocol(name)
        averages = {a.name: a for a in spec.averages}
        for cell in (c for c in spec.paper_cells if c.name in averages):
            spans = set(averages[cell.name].tests)
            for i, row in enumerate(records):
                if not cell.reports(row) or i not in columns:
                    continue
                # the paper columns the average's tests reproduce, for this row's metric: the
                # cells (of the same table) whose tests are all among the average's, a mean
                # cell of three qualities (qad Table 3) included
                spanned = {
                    part["test_data"]
                    for part in records
                    for c in spec.paper_cells
                    if c.name != cell.name and set(c.tests) <= spans and c.table == cell.table and c.reports(part)
                    and (part["method"], part["backbone"], part["metric"]) == (row["method"], row["backbone"], row["metric"])
                }
                assert spanned == {test_data for test_data, _ in columns[i]}, (name, cell.name, row)
                parts = ref[(ref["paper"] == row["paper"]) & (ref["table"] == row["table"]) & (ref["method"] == row["method"])
                            & (ref["backbone"] == row["backbone"]) & (ref["metric"] == row["metric"]) & ref["test_data"].isin(spanned)]
                # the paper's own arithmetic holds to its rounding, bar two printed slips
                # (two_gen_bat VIII/X Xception ACC rows; pim VI r=0.05 rounds 77.1075 to 77.10);
                # big_arts (fractions, 4 decimals) and qad (percent, 2 decimals) hold to one unit
                # of the last printed digit
                slack = {"two_gen_bat": 0.35, "pim": 0.35}.get(row["paper"], 0.0001 if row["value"] <= 1 else 0.01)
                assert parts["value"].mean() == pytest.approx(row["value"], abs=slack + 1e-9), row
                checked[row["paper"]] = checked.get(row["paper"], 0) + 1
    # every printed row the cell reports, the methods dfbench lacks included: two_gen_bat I, IV,
    # VIII, X, XV; pim IV, VI, VII, VIII (39) and IX (14 rows, sbi_cross_dataset); big_arts 1, 4
    # (12 rows each), 5, 6 (4 each); qad 1, 2 (7 each: MesoNet, Rossler, F3-Net, MAT, Fang & Lin,
    # QAD x 2; BZNet, ADD and SBIs state other settings), 3 (QAD and ERM [x3], two backbones
    # each), 5 (6)
    assert checked == {"two_gen_bat": 64, "pim": 39 + 14, "big_arts": 12 + 12 + 4 + 4, "qad": 7 + 7 + 4 + 6}, checked


def test_average_rows_are_the_per_seed_mean_of_their_columns() -> None:
    # cross_manipulation's Avg: mean of six columns per seed; Avg w/o DFD leaves DFD out
    base = {"protocol": "cross_manipulation", "protocol_version": "2", "data_kind": "synthetic-mini", "detector": "erm",
            "variant": "", "backbone": "resnet18", "preset": "mini", "level": "frame", "perturbation": "",
            "strength": math.nan, "training": "NT/c23", "train_data": "ffpp:NeuralTextures@c23", "n_failed": 0}
    values = {"NT/c23": 0.98, "DF/c23": 0.84, "F2F/c23": 0.61, "FS/c23": 0.44, "DFD": 0.74, "CDF": 0.57}
    rows = [{**base, "seed": 0, "metric": "auc", "test": t, "value": v} for t, v in values.items()]
    rows += [{**base, "seed": 1, "metric": "auc", "test": t, "value": v / 2} for t, v in values.items()]
    rows += [{**base, "seed": 0, "metric": "acc", "test": t, "value": 0.5} for t in values if t != "CDF"]  # no CDF
    out = average_rows(pd.DataFrame(rows))
    got = {(r["test"], r["seed"], r["metric"]): r["value"] for r in out.to_dict("records")}
    assert got == {
        ("Avg", 0, "auc"): pytest.approx((0.98 + 0.84 + 0.61 + 0.44 + 0.74 + 0.57) / 6),
        ("Avg w/o DFD", 0, "auc"): pytest.approx((0.98 + 0.84 + 0.61 + 0.44 + 0.57) / 5),
        ("Avg", 1, "auc"): pytest.approx((0.98 + 0.84 + 0.61 + 0.44 + 0.74 + 0.57) / 12),
        ("Avg w/o DFD", 1, "auc"): pytest.approx((0.98 + 0.84 + 0.61 + 0.44 + 0.57) / 10),
    }  # seed 0's ACC lacks CDF: no ACC average at all, never a mean of fewer columns
    avg = out[(out["test"] == "Avg") & (out["seed"] == 0)].iloc[0]
    assert avg["derived_from"] == "NT/c23; DF/c23; F2F/c23; FS/c23; DFD; CDF"
    assert avg["test_data"] == "mean of NT/c23, DF/c23, F2F/c23, FS/c23, DFD, CDF"
    assert avg["training"] == "NT/c23" and pd.isna(avg["fp"]) and pd.isna(avg["ci_low"])
    # an undefined part makes the mean undefined
    rows[0] = {**rows[0], "value": math.nan}
    nan = average_rows(pd.DataFrame(rows))
    assert math.isnan(nan[(nan["test"] == "Avg") & (nan["seed"] == 0)]["value"].item())
    # derived rows are not averaged again, and the input's own rows are never changed
    again = average_rows(pd.concat([pd.DataFrame(rows), out], ignore_index=True))
    assert len(again) == len(nan)


def test_big_arts_avg_needs_every_optional_column_and_qad_avg_spans_seven_models() -> None:
    # celebdf_generalization's Avg: the seven columns of big_arts Tables 1, 5, 6 (WDF is not one)
    base = {"protocol": "celebdf_generalization", "protocol_version": "2", "data_kind": "synthetic-mini",
            "detector": "big_arts", "variant": "", "backbone": "resnet18", "preset": "mini", "level": "video",
            "perturbation": "", "strength": math.nan, "training": "CDF", "train_data": "celebdf", "n_failed": 0,
            "metric": "auc", "seed": 0}
    values = {"CDF": 0.99, "FF++/DF/c23": 0.85, "DFD": 0.82, "DFDCP": 0.82, "WDF": 0.66,
              "UADFV": 0.94, "DT-LQ": 0.99, "DT-HQ": 0.93}
    rows = [{**base, "test": t, "value": v} for t, v in values.items()]
    out = average_rows(pd.DataFrame(rows))
    assert out["test"].tolist() == ["Avg"]
    assert out["value"].item() == pytest.approx((0.99 + 0.85 + 0.82 + 0.82 + 0.94 + 0.99 + 0.93) / 7)
    # an optional test set not scored (UADFV absent on real data): no Avg, not a six-column mean
    assert average_rows(pd.DataFrame([r for r in rows if r["test"] != "UADFV"])).empty
    # quality_agnostic's Avg/mixed: one mixed-test AUC from each of the seven per-dataset models
    names = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "CDFv2", "FFIW10K"]
    qbase = {**base, "protocol": "quality_agnostic", "protocol_version": "4", "detector": "qad",
             "backbone": "resnet50", "level": "frame"}
    mixed = [{**qbase, "training": n, "train_data": n, "test": f"{n}/mixed", "value": 0.9 + i / 100}
             for i, n in enumerate(names)]
    avg = average_rows(pd.DataFrame(mixed))
    assert avg["test"].tolist() == ["Avg/mixed"]
    assert avg["value"].item() == pytest.approx(0.93)  # 0.90 ... 0.96
    assert avg["training"].item() == "+".join(names)
    assert average_rows(pd.DataFrame(mixed[:-1])).empty  # FFIW10K's model missing: no Avg


def test_averages_are_validated() -> None:
    def spec(averages: object, **extra: object) -> dict:
        out = _spec(None)
        out["trainings"].append({"name": "u", "data": [{"dataset": "ffpp", "qualities": ["c40"]}]})
        out["tests"].append({"name": "c", "data": [{"dataset": "ffpp"}], "trainings": ["u"]})
        out["tests"].append({"name": "d", "data": [{"dataset": "ffpp"}], "trainings": ["t"]})
        return {**out, "averages": averages, **extra}

    ok = parse_protocol(spec([{"name": "Avg", "tests": ["a", "b"]}]), "x.yaml")
    assert [(a.name, a.tests, a.across_trainings) for a in ok.averages] == [("Avg", ("a", "b"), False)]
    # not part of the protocol's meaning: same hash with or without it
    assert ok.spec_hash() == parse_protocol(spec(None), "x.yaml").spec_hash()
    # a paper cell may name an average
    cells = [{"paper": "qad", "tables": ["Table 4"], "level": "frame", "cells": [{"test": "Avg"}]}]
    assert parse_protocol(spec([{"name": "Avg", "tests": ["a", "b"]}], paper_cells=cells), "x.yaml").paper_cells[0].name == "Avg"
    bad = [
        ({"name": "Avg", "tests": ["a"]}, "two or more different tests"),
        ({"name": "Avg", "tests": ["a", "zz"]}, "unknown test"),
        ({"name": "a", "tests": ["a", "b"]}, "is a test's name"),
        ({"name": "Avg", "tests": ["a", "b"], "weights": [1, 2]}, "unknown key"),
        ({"name": "Avg", "tests": ["c", "d"]}, "no training scores all"),  # c is scored by u only, d by t only
        ({"name": "Avg", "tests": ["a", "c"], "across_trainings": True}, "exactly one training"),  # a: by t and u
        ({"name": "Avg", "tests": ["a", "b"], "trainings": ["zz"]}, "unknown training"),
        ({"tests": ["a", "b"]}, "lacks the required key 'name'"),
    ]
    for average, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_protocol(spec([average]), "x.yaml")
    with pytest.raises(ConfigError, match="used twice"):
        parse_protocol(spec([{"name": "Avg", "tests": ["a", "b"]}, {"name": "Avg", "tests": ["b", "a"]}]), "x.yaml")
    with pytest.raises(ConfigError, match="unknown test"):
        parse_protocol(spec(None, paper_cells=cells), "x.yaml")  # no such average
    # across trainings: each test from its own training (QAD's ERM [x3]: a model per quality)
    across = parse_protocol(spec([{"name": "M", "tests": ["c", "d"], "across_trainings": True}]), "x.yaml")
    assert across.averages[0].across_trainings


def test_leaderboard_shows_the_avg_column_beside_the_papers_avg(tmp_path: Path) -> None:
    base = {"protocol": "cross_dataset", "protocol_version": "2", "data_kind": "real", "detector": "pim",
            "variant": "", "backbone": "convnext_base", "preset": "paper", "metric": "auc", "level": "video",
            "training": "FF++/c23", "train_data": "ffpp:Deepfakes+Face2Face+FaceSwap+NeuralTextures@c23"}
    values = {"FF++": 0.99, "CDF": 0.86, "DFDCP": 0.80, "DFDC": 0.68, "WDF": 0.74}
    rows = [{**base, "seed": 0, "test": t, "value": v} for t, v in values.items()]
    paths = build_leaderboard(pd.DataFrame(rows), tmp_path)
    csv = pd.read_csv(paths["csv"], keep_default_na=False)
    avg = csv[csv["test"] == "Avg"]
    ours = avg[avg["source"] == "dfbench"]
    assert float(ours["mean"].item()) == pytest.approx((0.86 + 0.80 + 0.68 + 0.74) / 4)  # FF++ is not in pim's Avg
    assert ours["derived_from"].item() == "CDF; DFDCP; DFDC; WDF"
    # pim Table IV's PIM ConvNeXt-base Avg, 77.09, sits in the same column
    paper = avg[(avg["source"] == "paper") & (avg["paper_table"] == "Table IV") & (avg["paper_backbone"] == "ConvNeXt-base")]
    assert float(paper["mean"].item()) == pytest.approx(0.7709)
    md = paths["md"].read_text()
    assert "Avg: derived column, the mean of CDF, DFDCP, DFDC, WDF" in md
    # the Avg column comes after the tests it averages
    header = next(line for line in md.splitlines() if line.startswith("| detector"))
    assert header.index("WDF AUC") < header.index("Avg AUC")


def test_an_avg_over_covered_columns_without_a_declared_average_says_so(ref: pd.DataFrame) -> None:
    # pim Table IV's PIM ConvNeXt-base row moved to Table V, whose cells cover CDFv2, DFDCP, DFDC
    # and WDF but declare no Avg: the four columns are covered, the Avg is not, and says why
    row = ref[(ref["paper"] == "pim") & (ref["table"] == "IV") & (ref["method"] == "PIM") & (ref["backbone"] == "ConvNeXt-base")]
    moved = coverage_rows(row.assign(table="V"))
    assert moved.loc[moved["test_data"] != "Avg", "covered"].tolist() == [True] * 4
    avg = moved[moved["test_data"] == "Avg"]
    assert avg["reason"].tolist() == ["column average: no protocol declares it (averages: + paper_cells)"]
    # as printed in Table IV it is covered by cross_dataset's Avg
    assert coverage_rows(row)["covered"].all()
