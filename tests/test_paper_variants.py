"""Protocols and detector variants that cover more paper tables without a new dataset adapter
(issue 13 item 4): each test names the paper value the leaderboard must show beside our cell.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from dfbench.benchmark.leaderboard import (
    _paper_entries,
    detector_paper_methods,
    load_reference,
    protocol_paper_cells,
)
from dfbench.benchmark.papers import coverage_rows, summarize_coverage
from dfbench.benchmark.protocol import load_protocol
from dfbench.detectors import create_detector
from dfbench.detectors.pim_augment import PIM_AUGMENTATIONS, hsv_to_rgb, pim_augment, rgb_to_hsv


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return load_reference()


@pytest.fixture(scope="module")
def tables(ref: pd.DataFrame) -> dict:
    return {(t.paper, t.table): t for t in summarize_coverage(coverage_rows(ref))}


def shown(ref: pd.DataFrame, protocol: str, detector: str, column: tuple, level: str, metric: str = "auc") -> dict:
    """{(table, method, backbone, train): value} the leaderboard shows beside ``column``."""
    entries = _paper_entries(
        ref, protocol_paper_cells(protocol), detector_paper_methods(detector), [column], (metric,), level
    )
    return {(e.paper + " " + e.table, e.method, e.backbone, e.train): e.values[(column, metric)] for e in entries}


# --------------------------------------------------------------------------- two_gen_bat
def test_table_vi_is_ffpp_all_methods_all_qualities(ref: pd.DataFrame, tables: dict) -> None:
    spec = load_protocol("ffpp_generalization")
    (training,) = spec.trainings
    assert training.data[0].methods == ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
    assert training.data[0].qualities == ("raw", "c23", "c40")
    assert next(t for t in spec.tests if t.name == "DFD").frames == 10  # Sec. IV: 10 frames per DFD video
    # Two-Gen-BAT on EfficientNet, FF++ -> Celeb-DF: 72.69 (line 248)
    got = shown(ref, "ffpp_generalization", "two_gen_bat", ("FF++/all", "CDF", "", None), "frame")
    assert got[("two_gen_bat VI", "Two-Gen-BAT", "EfficientNet", "FF++ mixed")] == pytest.approx(0.7269)
    acc = shown(ref, "ffpp_generalization", "erm", ("FF++/all", "FF++/all", "", None), "frame", "acc")
    assert acc[("two_gen_bat VI", "ERM", "Xception", "FF++ mixed")] == pytest.approx(0.9251)
    # covered: {Xception, EfficientNet} x {ERM, Two-Gen-BAT, Combined AT} x 5 numbers; the
    # Stehouwer et al. and MAT base models are not timm backbones
    t6 = tables[("two_gen_bat", "VI")]
    assert (t6.covered, t6.printed) == (30, 60)
    assert dict(t6.uncovered)["backbone not available (not a timm model): Stehouwer et al."] == 10


def test_kernel_size_variants_map_to_tables_xv_and_xvi(ref: pd.DataFrame, tables: dict) -> None:
    assert create_detector("two_gen_bat_k3").config.kernel_size == 3
    assert create_detector("two_gen_bat_k7", preset="paper").config.kernel_size == 7
    assert create_detector("two_gen_bat").config.kernel_size == 9
    # Table XV, k=3, NT c23 -> FS: 46.98 (line 437); Table XVI, k=7, c40 -> c40: 92.84 (line 451)
    xv = shown(ref, "cross_manipulation", "two_gen_bat_k3", ("NT/c23", "FS/c23", "", None), "frame")
    assert xv == {("two_gen_bat XV", "Two-Gen-BAT (k=3)", "EfficientNet", "FF++/NT c23"): pytest.approx(0.4698)}
    xvi = shown(ref, "cross_quality", "two_gen_bat_k7", ("c40", "NT/c40", "", None), "frame")
    assert xvi == {("two_gen_bat XVI", "Two-Gen-BAT (k=7)", "EfficientNet", "FF++/NT c40"): pytest.approx(0.9284)}
    assert (tables[("two_gen_bat", "XV")].covered, tables[("two_gen_bat", "XVI")].covered) == (52, 72)  # XV: 44 + 8 Avg


# --------------------------------------------------------------------------- big_arts
def test_big_arts_table_4_is_ffpp_deepfakes_c23_only(ref: pd.DataFrame, tables: dict) -> None:
    (training,) = load_protocol("ffpp_deepfakes").trainings
    assert (training.data[0].methods, training.data[0].qualities) == (("Deepfakes",), ("c23",))
    # BiG-Arts FF++ -> Celeb-DF: 0.7704 (line 297); ERM ResNet-18 -> DFDC-P 0.6770 (line 290)
    got = shown(ref, "ffpp_deepfakes", "big_arts", ("FF++/DF/c23", "CDF", "", None), "video")
    assert got == {("big_arts Table 4", "BiG-Arts", "ResNet-18", "FF++/DF c23"): pytest.approx(0.7704)}
    erm = shown(ref, "ffpp_deepfakes", "erm", ("FF++/DF/c23", "DFDCP", "", None), "video")
    assert erm[("big_arts Table 4", "ERM", "ResNet-18", "FF++/DF c23")] == pytest.approx(0.6770)
    # XceptionNet is erm with an Xception backbone; Face X-ray is the M_Ex-only model (Sec. 4.2)
    assert erm[("big_arts Table 4", "XceptionNet", "Xception", "FF++/DF c23")] == pytest.approx(0.7166)
    xray = shown(ref, "ffpp_deepfakes", "big_arts_ex_only", ("FF++/DF/c23", "DFD", "", None), "video")
    assert xray == {("big_arts Table 4", "Face X-ray", "ResNet-18", "FF++/DF c23"): pytest.approx(0.8786)}
    # UADFV and DF-TIMIT (adapters uadfv, dftimit): BiG-Arts FF++ -> UADFV 0.8814, ERM ResNet-18
    # -> DT-HQ 0.7827 (lines 297, 290)
    uadfv = shown(ref, "ffpp_deepfakes", "big_arts", ("FF++/DF/c23", "UADFV", "", None), "video")
    assert uadfv == {("big_arts Table 4", "BiG-Arts", "ResNet-18", "FF++/DF c23"): pytest.approx(0.8814)}
    dt_hq = shown(ref, "ffpp_deepfakes", "erm", ("FF++/DF/c23", "DT-HQ", "", None), "video")
    assert dt_hq[("big_arts Table 4", "ERM", "ResNet-18", "FF++/DF c23")] == pytest.approx(0.7827)
    # (7 columns with an adapter (UADFV, DT-LQ, DT-HQ, FF++, DFD, DFDC-P, Celeb-DF) + Avg) x 7 rows: ERM on
    # VGG16, DenseNet-121, ResNet-50, ResNet-18; XceptionNet; Face X-ray; BiG-Arts (AlexNet: not timm)
    # and their Avg (ffpp_deepfakes' Avg, the mean of the seven): ERM ResNet-18 0.7991 (line 290)
    avg = shown(ref, "ffpp_deepfakes", "erm", ("FF++/DF/c23", "Avg", "", None), "video")
    assert avg[("big_arts Table 4", "ERM", "ResNet-18", "FF++/DF c23")] == pytest.approx(0.7991)
    t4 = tables[("big_arts", "Table 4")]
    assert (t4.covered, t4.printed) == (56, 96)
    assert not any(reason.startswith("no dataset adapter") for reason, _ in t4.uncovered)


# --------------------------------------------------------------------------- pim
def test_pim_table_iv_with_augmentation_arm(ref: pd.DataFrame, tables: dict) -> None:
    # PIM (w/ aug) ConvNeXt-base -> CDF 86.87, ERM (w/ aug) ConvNeXt-base -> WDF 71.57 (pim Table IV, line 285)
    pim = shown(ref, "cross_dataset", "pim_aug", ("FF++/c23", "CDF", "", None), "video")
    assert pim[("pim IV", "PIM (w/ aug)", "ConvNeXt-base", "FF++")] == pytest.approx(0.8687)
    assert {k[1] for k in pim} == {"PIM (w/ aug)"}  # not the no-augmentation rows
    erm = shown(ref, "cross_dataset", "pim_erm_aug", ("FF++/c23", "WDF", "", None), "video")
    assert erm[("pim IV", "ERM (w/ aug)", "ConvNeXt-base", "FF++")] == pytest.approx(0.7157)
    plain = shown(ref, "cross_dataset", "pim", ("FF++/c23", "CDF", "", None), "video")
    assert plain[("pim IV", "PIM", "ConvNeXt-base", "FF++")] == pytest.approx(0.8734)
    cfg = create_detector("pim_erm_aug").config
    assert (cfg.alpha, cfg.beta, cfg.augment) == (0.0, 0.0, True)
    assert tables[("pim", "IV")].covered == 80  # 2 arms x 4 backbones x 2 methods x (4 test sets + Avg)


def test_pim_grid_variants_map_to_their_rows(ref: pd.DataFrame, tables: dict) -> None:
    # Table VIII a+b=0.8, a:b=0.8:0.2 -> alpha 0.64, beta 0.16; CDF 86.14 (line 388)
    cfg = create_detector("dualflat_a64_b16").config
    assert (cfg.alpha, cfg.beta) == pytest.approx((0.64, 0.16))
    got = shown(ref, "cross_dataset", "dualflat_a64_b16", ("FF++/c23", "CDF", "", None), "video")
    assert got == {("pim VIII", "DualFlat (a+b=0.8, a:b=0.8:0.2)", "ConvNeXt-base", "FF++"): pytest.approx(0.8614)}
    # pim (alpha=1, beta=0) is also Table VIII's 1.0:0.0 row (87.34 = Table IV's ConvNeXt+PIM)
    pim = shown(ref, "cross_dataset", "pim", ("FF++/c23", "CDF", "", None), "video")
    assert pim[("pim VIII", "DualFlat (a+b=1.0, a:b=1.0:0.0)", "ConvNeXt-base", "FF++")] == pytest.approx(0.8734)
    assert create_detector("pim_r0").config.r == 0.0 and create_detector("pim_a025").config.alpha == 0.25
    r0 = shown(ref, "cross_dataset", "pim_r0", ("FF++/c23", "DFDC", "", None), "video")
    assert r0 == {("pim VI", "PIM (alpha=1, r=0)", "ConvNeXt-base", "FF++"): pytest.approx(0.6757)}
    # every grid number, the Avg column included; Table IX (trained on FF++ reals + SBI) through
    # sbi_cross_dataset: 14 rows x (4 columns + Avg)
    assert [tables[("pim", t)].covered for t in ("VI", "VII", "VIII", "IX")] == [20, 25, 70, 70]
    assert not tables[("pim", "IX")].uncovered


def test_pim_augmentations_hand_values() -> None:
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]]).view(4, 3, 1, 1)
    hsv = rgb_to_hsv(rgb).view(4, 3)
    torch.testing.assert_close(hsv, torch.tensor([[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5]]))
    x = torch.rand(2, 3, 5, 5)
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    assert list(PIM_AUGMENTATIONS) == [
        "HorizontalFlip", "RGBShift", "HueSaturationValue", "RandomBrightnessContrast", "ImageCompression", "GaussNoise",
    ]
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(pim_augment(images, torch.Generator().manual_seed(0), p=0.0), images)
    a = pim_augment(images, torch.Generator().manual_seed(1))
    b = pim_augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == images.shape
    changed = (a != images).flatten(1).any(1)
    # P(untouched by all six at p = 0.5) = 1/64: with 16 images nearly all change
    assert changed.sum() >= 12
    flipped = PIM_AUGMENTATIONS["HorizontalFlip"](images, torch.Generator())
    assert torch.equal(flipped[..., 0], images[..., -1])


def test_pim_aug_trains_on_augmented_batches() -> None:
    torch.manual_seed(0)
    det = create_detector("pim_aug", backbone="resnet10t", input_size=32, batch_size=4)
    det.ensure_built()
    det.setup_training()
    det.model.train()
    seen: list[torch.Tensor] = []
    original = det.preprocess
    det.preprocess = lambda images: seen.append(images.clone()) or original(images)  # type: ignore[method-assign]
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    logs = det.training_step({"image": images, "label": torch.tensor([0, 1, 0, 1])})
    assert torch.isfinite(torch.as_tensor(logs["loss"]))
    assert not torch.equal(seen[0], images)  # the model saw the augmented batch


# --------------------------------------------------------------------------- qad
def test_qad_table_5_backbones_are_the_mixed_cells(ref: pd.DataFrame, tables: dict) -> None:
    # QAD ResNet-34 on NT: 92.87 (Table 5, line 291); the same column's Table 1 QAD ResNet-50 is 91.25
    column = ("NeuralTextures", "NeuralTextures/mixed", "", None)
    got = shown(ref, "quality_agnostic", "qad", column, "frame")
    assert got[("qad Table 5", "QAD", "ResNet-34", "FF++/NT")] == pytest.approx(0.9287)
    assert got[("qad Table 1", "QAD", "ResNet-50", "FF++/NT mixed")] == pytest.approx(0.9125)
    erm = shown(ref, "quality_agnostic", "erm", ("Deepfakes", "Deepfakes/mixed", "", None), "frame")
    assert {k[2] for k in erm if k[0] == "qad Table 5"} == {"ResNet-18", "ResNet-34", "EfficientNet-B0"}
    # not the mean-of-qualities column (that is Table 3's)
    mean = ("NeuralTextures", "NeuralTextures/mean(raw,c23,c40)", "", None)
    assert not any(k[0] == "qad Table 5" for k in shown(ref, "quality_agnostic", "qad", mean, "frame"))
    # 3 backbones x {ERM, QAD} x the four FF++ manipulations, FaceShifter, CDFv2 and FFIW10K
    # and their Avg, quality_agnostic's Avg/mixed (Table 1's too): QAD ResNet-34 98.07, QAD ResNet-50 97.82
    avg = shown(ref, "quality_agnostic", "qad", ("", "Avg/mixed", "", None), "frame")
    assert avg[("qad Table 5", "QAD", "ResNet-34", "")] == pytest.approx(0.9807)
    assert avg[("qad Table 1", "QAD", "ResNet-50", "mixed")] == pytest.approx(0.9782)
    t5 = tables[("qad", "Table 5")]
    assert (t5.covered, t5.printed) == (48, 48)
    assert "no dataset adapter: FFIW10K" not in dict(t5.uncovered)


def test_big_arts_celebdf_tables_and_augmentation_ablation(ref: pd.DataFrame, tables: dict) -> None:
    # Table 1: BiG-Arts trained on Celeb-DF -> DFDC-P 0.8189 (line 239); Table 3 at frame and
    # at video level on WildDeepfake; Table 5 "(Fake, Real)" -> DFD 0.8445 (line 317)
    got = shown(ref, "celebdf_generalization", "big_arts", ("CDF", "DFDCP", "", None), "video")
    assert got[("big_arts Table 1", "BiG-Arts", "ResNet-18", "CDF")] == pytest.approx(0.8189)
    frame = shown(ref, "celebdf_generalization", "big_arts", ("CDF", "WDF", "", None), "frame")
    video = shown(ref, "celebdf_generalization", "big_arts", ("CDF", "WDF", "", None), "video")
    assert set(frame) == set(video) == {("big_arts Table 3", "BiG-Arts", "ResNet-18", "CDF")}
    key = ("big_arts Table 3", "BiG-Arts", "ResNet-18", "CDF")
    assert (frame[key], video[key]) == (pytest.approx(0.6609), pytest.approx(0.7272))  # frame, sequence (line 278)
    cfg = create_detector("big_arts_aug_fr").config
    assert (cfg.aug_real_real, cfg.aug_fake_real) == (False, True)
    fr = shown(ref, "celebdf_generalization", "big_arts_aug_fr", ("CDF", "DFD", "", None), "video")
    assert fr == {("big_arts Table 5", "BiG-Arts (aug=(Fake,Real))", "ResNet-18", "CDF"): pytest.approx(0.8445)}
    # Table 1: BiG-Arts Celeb-DF -> DT-LQ 0.9952, ERM ResNet-18 -> DT-HQ 0.6049 (lines 239, 232)
    lq = shown(ref, "celebdf_generalization", "big_arts", ("CDF", "DT-LQ", "", None), "video")
    assert lq[("big_arts Table 1", "BiG-Arts", "ResNet-18", "CDF")] == pytest.approx(0.9952)
    hq = shown(ref, "celebdf_generalization", "erm", ("CDF", "DT-HQ", "", None), "video")
    assert hq[("big_arts Table 1", "ERM", "ResNet-18", "CDF")] == pytest.approx(0.6049)
    # the Avg of the seven columns (celebdf_generalization's Avg): BiG-Arts 0.9087 (Table 1, line
    # 239), "(Fake, Real)" 0.9005 (Table 5, line 317); WildDeepfake (Table 3) is not in it
    avg = shown(ref, "celebdf_generalization", "big_arts", ("CDF", "Avg", "", None), "video")
    assert avg[("big_arts Table 1", "BiG-Arts", "ResNet-18", "CDF")] == pytest.approx(0.9087)
    assert "WDF" not in next(a for a in load_protocol("celebdf_generalization").averages if a.name == "Avg").tests
    fr_avg = shown(ref, "celebdf_generalization", "big_arts_aug_fr", ("CDF", "Avg", "", None), "video")
    assert fr_avg == {("big_arts Table 5", "BiG-Arts (aug=(Fake,Real))", "ResNet-18", "CDF"): pytest.approx(0.9005)}
    # Tables 1, 5, 6: every column and the Avg (8 of 8; Table 1: 7 of 12 methods); Table 3: 7 of
    # 12 methods (not AlexNet, MesoInception-4, Capsule, GSRM, RFM) x AUC, EER x 2 levels
    assert [tables[("big_arts", t)].covered for t in ("Table 1", "Table 3", "Table 5", "Table 6")] == [56, 28, 32, 32]


def test_pim_table_i_matrix_and_table_ii_reasons(ref: pd.DataFrame, tables: dict) -> None:
    spec = load_protocol("ffpp_method_matrix")
    assert [t.name for t in spec.trainings] == ["DF", "F2F", "FS", "NT"]
    # pim Table I: trained on FS, tested on NT 0.3737 (line 70); Table II "before": DF->DF ACC 0.9964 (line 99)
    got = shown(ref, "ffpp_method_matrix", "erm", ("FS", "NT", "", None), "video")
    assert got == {("pim I", "ERM", "ConvNeXt-base", "FF++/FS"): pytest.approx(0.3737)}
    acc = shown(ref, "ffpp_method_matrix", "erm", ("DF", "DF", "", None), "video", "acc")
    assert acc == {("pim II", "ERM", "ConvNeXt-base", "FF++/DF"): pytest.approx(0.9964)}
    assert (tables[("pim", "I")].covered, tables[("pim", "II")].covered) == (16, 4)
    (reason, n), = tables[("pim", "III")].uncovered
    assert n == 8 and "first-stage feature statistics at test time" in reason


def test_qad_faceshifter_column_and_self_compressed_celeb_df(ref: pd.DataFrame, tables: dict) -> None:
    assert load_protocol("quality_agnostic").version == 4 and load_protocol("quality_aware").version == 4
    # QAD ResNet-50, FaceShifter mixed: 99.12 (Table 1); ERM [x3] ResNet-50 FSH mean: 98.71 (Table 3)
    got = shown(ref, "quality_agnostic", "qad", ("FaceShifter", "FaceShifter/mixed", "", None), "frame")
    assert got[("qad Table 1", "QAD", "ResNet-50", "FF++/FSH mixed")] == pytest.approx(0.9912)
    aware = shown(ref, "quality_aware", "erm", ("", "FaceShifter/mean(raw,c23,c40)", "", None), "frame")
    assert aware[("qad Table 3", "ERM [x3]", "ResNet-50", "FF++/FSH")] == pytest.approx(0.9871)
    # Celeb-DF v2 and FFIW10K ship at one quality; QAD compresses them to c23/c40 itself, and so
    # does dfbench (preprocess.reencode): QAD-R CDFv2 98.36, FFIW10K 99.10 (Table 1); ERM [x3]
    # ResNet-50 CDFv2 97.09 (Table 3)
    got = shown(ref, "quality_agnostic", "qad", ("CDFv2", "CDFv2/mixed", "", None), "frame")
    assert got[("qad Table 1", "QAD", "ResNet-50", "CDFv2 mixed")] == pytest.approx(0.9836)
    got = shown(ref, "quality_agnostic", "qad", ("FFIW10K", "FFIW10K/mixed", "", None), "frame")
    assert got[("qad Table 1", "QAD", "ResNet-50", "FFIW10K mixed")] == pytest.approx(0.9910)
    aware = shown(ref, "quality_aware", "erm", ("", "CDFv2/mean(orig,c23,c40)", "", None), "frame")
    assert aware[("qad Table 3", "ERM [x3]", "ResNet-50", "CDFv2")] == pytest.approx(0.9709)
    # the Avg columns over all seven: QAD-R Table 2 (random JPEG) 94.56; Table 3's QAD-R 97.18
    # and ERM [x3] ResNet-50 96.90, the mean of the seven means of three qualities
    jpeg = shown(ref, "quality_agnostic", "qad", ("", "Avg/raw+random_jpeg", "random_jpeg", 60.0), "frame")
    assert jpeg == {("qad Table 2", "QAD", "ResNet-50", "mixed"): pytest.approx(0.9456),
                    ("qad Table 2", "QAD", "EfficientNet-B1", "mixed"): pytest.approx(0.9494)}
    mean = shown(ref, "quality_agnostic", "qad", ("", "Avg/mean(raw,c23,c40)", "", None), "frame")
    assert mean[("qad Table 3", "QAD", "ResNet-50", "mixed")] == pytest.approx(0.9718)
    aware = shown(ref, "quality_aware", "erm", ("", "Avg/mean(raw,c23,c40)", "", None), "frame")
    assert aware == {("qad Table 3", "ERM [x3]", "ResNet-50", ""): pytest.approx(0.9690),
                     ("qad Table 3", "ERM [x3]", "EfficientNet-B1", ""): pytest.approx(0.9639)}
    reasons = dict(tables[("qad", "Table 1")].uncovered)
    assert not any(r.startswith(("no compressed version", "no dataset adapter: FFIW10K")) for r in reasons)
