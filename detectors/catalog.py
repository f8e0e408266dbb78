"""Every built-in detector by name: a lazy ``"module:Class"`` entry plus its metadata.

Listing detectors (``dfbench list detectors``, ``dfbench papers``, the leaderboard's paper
mapping) reads only this table, so it imports no recipe module and no torch; a recipe's
module is imported the first time its detector is created. A variant is its recipe class
plus config overrides (e.g. an ablation). Adding a recipe = its module + its lines here.

Names that are not registered are resolved by ``dfbench.benchmark.plugins.PluginFinder``:
a user's ``file.py:Class`` or ``package.module:Class``, or an installed package's
``dfbench.detectors`` entry point.
"""

from __future__ import annotations

from typing import Any

from dfbench.benchmark.plugins import DETECTOR_BASE, PluginFinder
from dfbench.benchmark.registry import Registry

DETECTORS: Registry = Registry("detector", base=DETECTOR_BASE, finder=PluginFinder())


def register_detector(
    name: str,
    cls: type | str,
    *,
    description: str = "",
    paper: str = "",
    paper_methods: tuple[str, ...] = (),
    variant_methods: dict[str, tuple[str, ...]] | None = None,
    **config_overrides: Any,
) -> None:
    """Register a detector variant: a recipe class (or ``"module:Class"``) plus config overrides.

    ``paper_methods``: the method names the papers print for exactly this recipe and setting,
    as the reference CSV spells them; the leaderboard shows those rows beside this detector.
    ``variant_methods``: where one run writes rows of several variants that are different
    paper methods (PBNet's frozen detector and the detector with the bleach), which of the
    names each variant's rows are; a variant not named there is shown beside no paper row.
    """
    DETECTORS.register(
        name, cls, description=description, paper=paper, paper_methods=tuple(paper_methods),
        variant_methods=dict(variant_methods or {}), overrides=config_overrides,
    )


def list_detectors() -> list[str]:
    return DETECTORS.names()


_M = "dfbench.detectors."
TWO_GEN_BAT = "two_gen_bat"
BIG_ARTS = "Chen et al., Watching the BiG artifacts: Exposing DeepFake videos via Bi-granularity artifacts, Pattern Recognition 2023"

# ---- baselines (two_gen_bat App. E)
# "ERM [x3]": QAD Table 3's per-quality baseline (quality_aware); "Rössler et al. (Xception)": the
# FF++ paper's plain Xception classifier, QAD Tables 1-2 (trained on raw+c23+c40 together);
# big_arts prints the same classifier as "XceptionNet [11]", retrained "using their released
# codes" (Sec. 4.2), i.e. ERM with --backbone legacy_xception.
register_detector(
    "erm", _M + "baselines:ERM", description="plain cross-entropy (ERM) on any timm backbone", paper="baseline",
    paper_methods=("ERM", "ERM [x3]", "Rössler et al. (Xception)", "big_arts:XceptionNet"),
)
_AUG = _M + "baselines:TraditionalAugmentation"
register_detector("aug_noise", _AUG, augmentations=("noise",), description="ERM + Gaussian noise (App. E)", paper=TWO_GEN_BAT, paper_methods=("Gaussian Noise",))
register_detector("aug_blur", _AUG, augmentations=("blur",), description="ERM + Gaussian blur, k=9 (App. E)", paper=TWO_GEN_BAT, paper_methods=("Gaussian Blur",))
register_detector("aug_jpeg", _AUG, augmentations=("jpeg",), description="ERM + JPEG QF 60-100 (App. E)", paper=TWO_GEN_BAT, paper_methods=("JPEG Compression",))
register_detector("aug_combined", _AUG, description="ERM + blur, noise and JPEG combined (App. E)", paper=TWO_GEN_BAT, paper_methods=("Combined Traditional",))

# ---- adversarial blur (two_gen_bat)
_ADV = _M + "adversarial_blur:"
register_detector("grad_aat", _ADV + "GradAAT", description="FGSM additive adversarial training (Eq. 1, 3)", paper=TWO_GEN_BAT, paper_methods=("Grad-AAT",))
register_detector("grad_sat", _ADV + "GradSAT", description="Spatially-transformed (flow) adversarial training", paper=TWO_GEN_BAT, paper_methods=("Grad-SAT",))
register_detector("grad_bat", _ADV + "GradBAT", description="Blurring adversarial training, one-step gradient σ map (Eq. 4-6)", paper=TWO_GEN_BAT, paper_methods=("Grad-BAT",))
register_detector("gen_bat", _ADV + "GenBAT", description="Blurring adversarial training with a σ-map generator (Eq. 7)", paper=TWO_GEN_BAT, paper_methods=("Gen-BAT",))
register_detector("two_gen_bat", _ADV + "TwoGenBAT", description="Blurring adversarial training with one generator per class", paper=TWO_GEN_BAT, paper_methods=("Two-Gen-BAT", "Two-Gen-BAT (k=9)"))  # k = 9 is the default (Sec. IV)
register_detector("combined_at", _ADV + "CombinedAT", description="Two-Gen-BAT blur followed by FGSM (Fig. 3)", paper=TWO_GEN_BAT, paper_methods=("Combined AT",))
register_detector("grad_aat_3step", _ADV + "GradAAT", description="Iterative FGSM, 3 steps (App. C)", paper=TWO_GEN_BAT, paper_methods=("Grad-AAT (3-step)",), attack_steps=3)
register_detector("grad_bat_3step", _ADV + "GradBAT", description="Gradient blurring, 3 steps of Eq. 6 (App. C)", paper=TWO_GEN_BAT, paper_methods=("Grad-BAT (3-step)",), attack_steps=3)
# App. D, Tables XV/XVI: Two-Gen-BAT trained with a smaller blur kernel k (Eq. 4-5), all else as
# Tables I/II (k = 9 is `two_gen_bat` itself).
register_detector("two_gen_bat_k3", _ADV + "TwoGenBAT", description="Two-Gen-BAT with kernel size k=3 (App. D, Tables XV-XVI)", paper=TWO_GEN_BAT, paper_methods=("Two-Gen-BAT (k=3)",), kernel_size=3)
register_detector("two_gen_bat_k5", _ADV + "TwoGenBAT", description="Two-Gen-BAT with kernel size k=5 (App. D, Tables XV-XVI)", paper=TWO_GEN_BAT, paper_methods=("Two-Gen-BAT (k=5)",), kernel_size=5)
register_detector("two_gen_bat_k7", _ADV + "TwoGenBAT", description="Two-Gen-BAT with kernel size k=7 (App. D, Tables XV-XVI)", paper=TWO_GEN_BAT, paper_methods=("Two-Gen-BAT (k=7)",), kernel_size=7)

# ---- BiG-Arts
_BIG = _M + "big_arts:BiGArts"
register_detector(
    "big_arts",
    _BIG,
    description="BiG-Arts: classifier + intrinsic (M_In) and extrinsic (M_Ex) artifact decoders, forgery augmentation",
    paper=BIG_ARTS,
    # the full model: Table 5 with all augmentations, Table 6 with both artifact branches
    paper_methods=("BiG-Arts", "BiG-Arts (aug=all)", "BiG-Arts (artifacts=M_In+M_Ex)"),
)
register_detector(
    "big_arts_cls_only",
    _BIG,
    description="BiG-Arts ablation (Table 6 'None'): classification branch only, same data and augmentation",
    paper=BIG_ARTS,
    paper_methods=("BiG-Arts (artifacts=none)",),
    intrinsic_branch=False,
    extrinsic_branch=False,
)
register_detector(
    "big_arts_in_only",
    _BIG,
    description="BiG-Arts ablation (Table 6 'M_In'): intrinsic-artifact branch only",
    paper=BIG_ARTS,
    paper_methods=("BiG-Arts (artifacts=M_In)",),
    extrinsic_branch=False,
)
register_detector(
    "big_arts_ex_only",
    _BIG,
    description="BiG-Arts ablation (Table 6 'M_Ex'): extrinsic-artifact branch only, the paper's Face X-ray re-implementation",
    paper=BIG_ARTS,
    # Sec. 4.2: "we implement Face X-ray using our method by pruning the intrinsic-granularity
    # artifacts branch": the Face X-ray rows of Tables 1-4 are this model
    paper_methods=("BiG-Arts (artifacts=M_Ex)", "big_arts:Face X-ray"),
    intrinsic_branch=False,
)
# Table 5: the forgery-face augmentation ablation ("None", "(Real, Real)", "(Fake, Real)"; "All"
# is `big_arts`), both artifact branches kept.
register_detector("big_arts_aug_none", _BIG, description="BiG-Arts without forgery augmentation (Table 5 'None')", paper=BIG_ARTS, paper_methods=("BiG-Arts (aug=none)",), aug_real_real=False, aug_fake_real=False)
register_detector("big_arts_aug_rr", _BIG, description="BiG-Arts with (Real, Real) forgeries only (Table 5)", paper=BIG_ARTS, paper_methods=("BiG-Arts (aug=(Real,Real))",), aug_fake_real=False)
register_detector("big_arts_aug_fr", _BIG, description="BiG-Arts with (Fake, Real) forgeries only (Table 5)", paper=BIG_ARTS, paper_methods=("BiG-Arts (aug=(Fake,Real))",), aug_real_real=False)

# ---- gradient regularization (pim)
_GR = _M + "gradient_regularization:GradientRegularization"
register_detector(
    "pim",
    _GR,
    description="Perturbation Injection Module: shallow-stage statistics perturbed along the gradient, r=0.1, alpha=1 (Eq. 12)",
    paper="pim",
    # Table VIII's alpha=1, beta=0 row; Table IX is the same grid trained on FF++ reals + SBI (sbi_cross_dataset)
    paper_methods=("PIM", "PIM (alpha=1, r=0.1)", "DualFlat (a+b=1.0, a:b=1.0:0.0)", "SBI-DualFlat (a+b=1.0, a:b=1.0:0.0)"),
    alpha=1.0,
    beta=0.0,
)
register_detector(
    "sam",
    _GR,
    description="Sharpness-aware minimisation: weights perturbed along the gradient, r'=0.05 (Eq. 14 with alpha=0, beta=1)",
    paper="pim",
    # Table VIII: SAM is alpha=0, beta=1. Table V's "SBI*" (SBI retrained on ConvNeXt-base with the
    # official code, which trains with SAM) prints the numbers of Table IX's alpha=0, beta=1 row.
    paper_methods=("DualFlat (a+b=1.0, a:b=0.0:1.0)", "SBI-DualFlat (a+b=1.0, a:b=0.0:1.0)", "SBI*"),
    alpha=0.0,
    beta=1.0,
)
register_detector(
    "dualflat",
    _GR,
    description="DualFlat: PIM + SAM, alpha=beta=0.1 (Eq. 14, Table VIII)",
    paper="pim",
    paper_methods=("DualFlat (a+b=0.2, a:b=0.5:0.5)", "SBI-DualFlat (a+b=0.2, a:b=0.5:0.5)"),  # alpha+beta = 0.2, alpha:beta = 1:1
    alpha=0.1,
    beta=0.1,
)
register_detector(
    "pim_aug",
    _GR,
    description="PIM (alpha=1, r=0.1) trained with Table IV's augmentations (flip, RGB shift, HSV, brightness/contrast, JPEG, noise)",
    paper="pim",
    paper_methods=("PIM (w/ aug)",),
    alpha=1.0,
    beta=0.0,
    augment=True,
)
register_detector(
    "pim_erm_aug",
    _GR,
    description="ERM (Eq. 14 with alpha=beta=0) trained with Table IV's augmentations: the 'With' baseline rows",
    paper="pim",
    paper_methods=("ERM (w/ aug)",),
    alpha=0.0,
    beta=0.0,
    augment=True,
)
# Table VI (r with alpha = 1) and Table VII (alpha with r = 0.1): pim's ablations, one variant per row.
# r = 0 leaves the statistics unperturbed (Eq. 9); alpha = 0 is plain ERM (Eq. 12).
register_detector("pim_r0", _GR, description="PIM with r=0 (Table VI)", paper="pim", paper_methods=("PIM (alpha=1, r=0)",), alpha=1.0, beta=0.0, r=0.0)
register_detector("pim_r005", _GR, description="PIM with r=0.05 (Table VI)", paper="pim", paper_methods=("PIM (alpha=1, r=0.05)",), alpha=1.0, beta=0.0, r=0.05)
register_detector("pim_r02", _GR, description="PIM with r=0.2 (Table VI)", paper="pim", paper_methods=("PIM (alpha=1, r=0.2)",), alpha=1.0, beta=0.0, r=0.2)
register_detector("pim_a075", _GR, description="PIM with alpha=0.75, r=0.1 (Table VII)", paper="pim", paper_methods=("PIM (alpha=0.75, r=0.1)",), alpha=0.75, beta=0.0)
register_detector("pim_a050", _GR, description="PIM with alpha=0.5, r=0.1 (Table VII)", paper="pim", paper_methods=("PIM (alpha=0.50, r=0.1)",), alpha=0.5, beta=0.0)
register_detector("pim_a025", _GR, description="PIM with alpha=0.25, r=0.1 (Table VII)", paper="pim", paper_methods=("PIM (alpha=0.25, r=0.1)",), alpha=0.25, beta=0.0)
register_detector("pim_a0", _GR, description="PIM with alpha=0, r=0.1 (Table VII)", paper="pim", paper_methods=("PIM (alpha=0, r=0.1)",), alpha=0.0, beta=0.0)
# Table VIII's DualFlat grid (Eq. 14; Table IX: the same grid, "SBI-DualFlat", on FF++ reals + SBI): alpha = (a+b)·a/(a:b), beta = (a+b)·b/(a:b). Names give alpha
# and beta in hundredths; `pim` is the 1.0:0.0 row, `sam` 0.0:1.0, `dualflat` a+b=0.2, 0.5:0.5.
_DUALFLAT_GRID = (  # (alpha, beta, a+b, a:b) as Table VIII prints them
    (0.8, 0.2, "1.0", "0.8:0.2"), (0.5, 0.5, "1.0", "0.5:0.5"), (0.2, 0.8, "1.0", "0.2:0.8"),
    (0.64, 0.16, "0.8", "0.8:0.2"), (0.4, 0.4, "0.8", "0.5:0.5"), (0.16, 0.64, "0.8", "0.2:0.8"),
    (0.4, 0.1, "0.5", "0.8:0.2"), (0.25, 0.25, "0.5", "0.5:0.5"), (0.1, 0.4, "0.5", "0.2:0.8"),
    (0.16, 0.04, "0.2", "0.8:0.2"), (0.04, 0.16, "0.2", "0.2:0.8"),
)
for _a, _b, _sum, _ratio in _DUALFLAT_GRID:
    register_detector(
        f"dualflat_a{round(_a * 100):02d}_b{round(_b * 100):02d}", _GR,
        description=f"DualFlat alpha={_a:g}, beta={_b:g} (Tables VIII, IX)", paper="pim",
        paper_methods=(f"DualFlat (a+b={_sum}, a:b={_ratio})", f"SBI-DualFlat (a+b={_sum}, a:b={_ratio})"), alpha=_a, beta=_b,
    )

# ---- PBNet
_PB = _M + "pbnet:BleachedDetector"
register_detector("pbnet", _PB, description="PBNet: frozen detector + pixel bleach (m=0.7, τ=0.2, k=50, α=1, γ=2)", paper="pbnet",
                  # pbnet prints the frozen detector (RECG ×) as ERM beside the bleached one (✓);
                  # "pbnet:ERM" claims that name in the pbnet paper only
                  paper_methods=("PBNet", "pbnet:ERM", "PBNet (m=0.7)"),
                  # rows "detector" are the frozen detector (RECG ×), "detector+bleach" PBNet (✓);
                  # "detector+bleach/c23" (bleach trained at c23: Table X) has no stated setting
                  variant_methods={"detector": ("pbnet:ERM",), "detector+bleach": ("PBNet", "PBNet (m=0.7)")})
register_detector("pbnet_m0", _PB, offset_m=0.0, description="PBNet, balanced offset m=0 (Table VIII)", paper="pbnet", paper_methods=("PBNet (m=0)",),
                  variant_methods={"detector+bleach": ("PBNet (m=0)",)})
register_detector("pbnet_m_neg07", _PB, offset_m=-0.7, description="PBNet, balanced offset m=-0.7 (Table VIII)", paper="pbnet", paper_methods=("PBNet (m=-0.7)",),
                  variant_methods={"detector+bleach": ("PBNet (m=-0.7)",)})
register_detector("pbnet_no_lrem", _PB, use_rem=False, description="PBNet without L_rem (Table VII)", paper="pbnet", paper_methods=("PBNet w/o L_rem",),
                  variant_methods={"detector+bleach": ("PBNet w/o L_rem",)})

# ---- QAD
_QAD = _M + "qad:QADDetector"
register_detector(
    "qad",
    _QAD,
    description="QAD: every frame at raw/c23/c40 in one batch; HSIC between qualities at each stage + one-step AWP",
    paper="qad",
    paper_methods=("QAD",),
)
register_detector(
    "qad_hsic_only",
    _QAD,
    description="QAD ablation (Table 4 'HSIC'): collaborative HSIC loss, no weight perturbation",
    paper="qad",
    paper_methods=("Coll. loss: HSIC",),
    use_awp=False,
)
register_detector(
    "qad_awp_only",
    _QAD,
    description="QAD ablation (Table 4 'AWP-XE'): one-step AWP on multi-quality batches, no collaborative loss",
    paper="qad",
    paper_methods=("Adv. loss: AWP-XE",),
    collab="none",
)
register_detector(
    "qad_pairwise",
    _QAD,
    description="QAD ablation (Table 4 'pairwise loss'): Eq. 3 instance distance between qualities at the HSIC layers",
    paper="qad",
    paper_methods=("Coll. loss: Pairwise",),
    collab="pairwise",
    use_awp=False,
)
# Not in the paper: the batch structure alone (every frame at all qualities, plain CE), so a
# QAD-vs-ERM gap can be split into what the aligned batches do and what HSIC/AWP add.
register_detector(
    "qad_plain",
    _QAD,
    description="QAD's aligned multi-quality batches with plain cross-entropy (no collaborative loss, no AWP)",
    paper="qad",
    collab="none",
    use_awp=False,
)
