"""BiG-Arts: DeepFake detection from bi-granularity artifacts (multi-task learning).

Chen, Li, Lin, Li, Wu, "Watching the BiG artifacts: Exposing DeepFake videos via
Bi-granularity artifacts", Pattern Recognition 136 (2023) 109179
(``/work/shared/seeds/big_arts--bi-granularity-artifacts.txt``).

Architecture (Section 3.2, Fig. 3): a backbone (ResNet-18; any timm ``features_only``
CNN) feeds three branches:

  classification  deepest feature → conv block (two 3×3 convs + 2×2 max-pool) → FC → O_Cls
  intrinsic       five decoder blocks (×2 up-sampling, skip from the backbone stage of that
                  stride, SCSE attention [31]) → 1×1 conv → O_In, a mask at input size
  extrinsic       the same decoder, own weights → O_Ex

Objective (Eq. 2): λ_In·L_In + λ_Ex·L_Ex + λ_Cls·L_Cls with pixel-wise binary
cross-entropy L_In (Eq. 3) against M_In, L_Ex (Eq. 4) against M_Ex, and cross-entropy
L_Cls (Eq. 5); λ_In = λ_Ex = 15, λ_Cls = 1. The decoders only guide training; a video is
scored by the classification branch (Section 4.1: mean of the frame scores).

Training batches (Section 4.1): 50 % real, 50 % fake; the fakes split in thirds into
original fakes, (Real, Real) and (Fake, Real) forgeries (Section 3.3, see
``artifact_masks``); every image is then JPEG-compressed at a quality in [75, 100].

Ablations (Table 6): ``big_arts_cls_only`` (no artifact branch), ``big_arts_in_only``
(M_In only), ``big_arts_ex_only`` (M_Ex only; the paper's Face X-ray re-implementation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.frames import FrameSet
from dfbench.detectors.artifact_masks import ForgeryAugmenter, forgery_slots
from dfbench.detectors.backbones import create_backbone, load_state_dict_file
from dfbench.detectors.base import Detector, DetectorConfig, make_optimizer, register_detector

PAPER = "Chen et al., Watching the BiG artifacts: Exposing DeepFake videos via Bi-granularity artifacts, Pattern Recognition 2023"


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class BiGArtsConfig(DetectorConfig):
    """The paper's hyperparameters (Section 4.1) as defaults; "choice:" marks where it is silent."""

    backbone: str = "resnet18"  # Section 3.2
    input_size: int = 256  # "the size of input images is set to 256×256"
    epochs: int = 1200
    batch_size: int = 32
    optimizer: str = "adam"  # Adam, lr 0.001, betas (0.9, 0.999)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0  # choice: none is named; torch.optim.Adam's default
    cosine_t_max: int = 40  # CosineAnnealingLR, T_max = 40 (stepped once per epoch)
    # Eq. (2) weights
    lambda_in: float = 15.0
    lambda_ex: float = 15.0
    lambda_cls: float = 1.0
    # which artifact branches exist (Table 6 ablations)
    intrinsic_branch: bool = True
    extrinsic_branch: bool = True
    # decoder (Fig. 3): five blocks; choice: U-Net widths halving per block
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    scse_reduction: int = 16  # choice: SENet's channel reduction r = 16
    # masks (Section 3.1); choice for every value: the paper names γ, D and E without numbers
    gamma: float = 20.0  # threshold on max-channel |x' − x|, 0–255 scale
    mask_open_iterations: int = 1  # 3×3 opening before the hull (drops isolated noisy pixels)
    band_frac: float = 0.02  # D/E radius as a fraction of the crop side (band = 2r wide)
    # forgery augmentation (Section 3.3); choice for the geometry values
    aug_real_real: bool = True
    aug_fake_real: bool = True
    hull_scale: float = 2.0  # 5-landmark hull ×2 ≈ Dlib's 68-landmark face hull
    distort_grid: int = 4  # piecewise-affine lattice: 4×4 cells
    distort_magnitude: float = 0.03  # control-point jitter, fraction of the crop side
    real_fraction: float = 0.5  # "50% are real images and 50% are fake images"
    jpeg_quality: tuple[int, int] = (75, 100)  # JPEG is the only augmentation, QF ∈ [75, 100]
    jpeg_prob: float = 1.0  # choice: the paper gives no probability: every image
    paper: str = PAPER

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "mini": {
            "backbone": "resnet10t",
            "input_size": 64,
            "epochs": 6,
            "cosine_t_max": 6,
            "decoder_channels": (128, 64, 32, 16, 16),
        },
        # Section 4.1; the paper names no ImageNet initialisation (choice: from scratch, which
        # also undoes the base paper preset's pretrained=True)
        "paper": {
            "backbone": "resnet18", "pretrained": False, "input_size": 256, "epochs": 1200, "batch_size": 32,
            "cosine_t_max": 40,
        },
    }


# --------------------------------------------------------------------------- network
def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze & excitation (Roy et al. [31]).

    cSE: global average pooling → FC → ReLU → FC → sigmoid, rescaling channels;
    sSE: 1×1 conv → sigmoid, rescaling positions; the two recalibrations are added.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.cse = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),  # FC on the pooled vector
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.sse = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.cse(x) + x * self.sse(x)


class DecoderBlock(nn.Module):
    """×2 up-sampling, concatenation with the backbone feature of that stride (if any),
    SCSE, two 3×3 conv-BN-ReLU, SCSE (Fig. 3, bottom right)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, reduction: int) -> None:
        super().__init__()
        merged = in_channels + skip_channels
        self.attend_in = SCSE(merged, reduction)
        self.conv1 = _conv_bn_relu(merged, out_channels)
        self.conv2 = _conv_bn_relu(out_channels, out_channels)
        self.attend_out = SCSE(out_channels, reduction)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        size = skip.shape[-2:] if skip is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.attend_out(self.conv2(self.conv1(self.attend_in(x))))


class MaskDecoder(nn.Module):
    """Five decoder blocks from the deepest backbone feature up to input resolution, then a
    1×1 conv predicting one artifact-mask logit per pixel."""

    def __init__(self, channels: list[int], reductions: list[int], decoder_channels: tuple[int, ...], reduction: int) -> None:
        super().__init__()
        by_stride = {r: i for i, r in enumerate(reductions)}
        stride = reductions[-1]
        cin = channels[-1]
        self.skip_index: list[int | None] = []
        blocks = []
        for cout in decoder_channels:
            stride //= 2
            skip = by_stride.get(stride) if stride >= 1 else None
            self.skip_index.append(skip)
            blocks.append(DecoderBlock(cin, channels[skip] if skip is not None else 0, cout, reduction))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, 1, kernel_size=1)

    def forward(self, feats: list[torch.Tensor], out_size: tuple[int, int]) -> torch.Tensor:
        x = feats[-1]
        for block, skip in zip(self.blocks, self.skip_index):
            x = block(x, feats[skip] if skip is not None else None)
        x = self.head(x)
        if tuple(x.shape[-2:]) != tuple(out_size):
            x = F.interpolate(x, size=out_size, mode="bilinear", align_corners=False)
        return x


def create_feature_backbone(cfg: BiGArtsConfig) -> nn.Module:
    """A timm backbone returning its multi-scale stage features (``features_only``)."""
    try:
        # a weights file wins over timm's ImageNet weights (as in ``create_backbone``)
        net = create_backbone(cfg.backbone, num_classes=2, pretrained=cfg.pretrained and cfg.weights is None, features_only=True)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"Backbone {cfg.backbone!r} cannot return multi-scale features (timm features_only: {exc}); "
            f"BiG-Arts needs a CNN backbone such as resnet18."
        ) from exc
    if cfg.weights is not None:
        own = net.state_dict()
        state = {k: v for k, v in load_state_dict_file(cfg.weights).items() if k in own}  # drops the classifier
        missing = sorted(set(own) - set(state))
        if missing:
            raise ConfigError(f"Weights file {cfg.weights} does not fit backbone {cfg.backbone!r}: missing {missing[:3]} ...")
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"Weights file {cfg.weights} does not fit backbone {cfg.backbone!r}: {exc}") from exc
    return net


class BiGArtsNet(nn.Module):
    """Backbone + classification branch + optional intrinsic/extrinsic decoders.

    ``forward`` is the inference network (normalised images → (N, 2) logits; decoders
    unused); ``forward_all`` adds the mask logits used in training.
    choice: the branches share the backbone and its skip features; that shared trunk is
    the "connection" through which the artifact branches guide the classifier.
    """

    def __init__(self, cfg: BiGArtsConfig) -> None:
        super().__init__()
        self.backbone = create_feature_backbone(cfg)
        channels = list(self.backbone.feature_info.channels())
        reductions = list(self.backbone.feature_info.reduction())
        deep = channels[-1]
        # "The Conv block before FC layer is a composition of two convolution layers and one
        # maxpooling layer"; choice: global average pooling between it and the FC layer
        self.conv_block = nn.Sequential(_conv_bn_relu(deep, deep), _conv_bn_relu(deep, deep), nn.MaxPool2d(2, ceil_mode=True))
        self.num_features = deep
        self.fc = nn.Linear(deep, 2)
        args = (channels, reductions, tuple(cfg.decoder_channels), cfg.scse_reduction)
        self.intrinsic = MaskDecoder(*args) if cfg.intrinsic_branch else None
        self.extrinsic = MaskDecoder(*args) if cfg.extrinsic_branch else None

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.backbone(x))

    def forward_head(self, feats: list[torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        z = F.adaptive_avg_pool2d(self.conv_block(feats[-1]), 1).flatten(1)
        return z if pre_logits else self.fc(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        feats = self.forward_features(x)
        size = (x.shape[-2], x.shape[-1])
        return {
            "logits": self.forward_head(feats),
            "in_logits": self.intrinsic(feats, size) if self.intrinsic is not None else None,
            "ex_logits": self.extrinsic(feats, size) if self.extrinsic is not None else None,
        }


# --------------------------------------------------------------------------- losses
def big_arts_losses(
    outputs: dict[str, torch.Tensor | None], labels: torch.Tensor, m_in: torch.Tensor, m_ex: torch.Tensor
) -> dict[str, torch.Tensor]:
    """L_Cls (Eq. 5) and, for the branches present, L_In (Eq. 3) and L_Ex (Eq. 4).

    Eqs. 3–4 sum the pixel-wise binary cross-entropy over (i, j); choice: the mean over
    pixels and images is used (PyTorch's BCE default), otherwise the 15× weighted mask terms
    would outweigh L_Cls by the pixel count (65 536 at 256²). Real images have all-zero
    mask targets and still contribute to L_In and L_Ex. Eq. 5 is the two-class softmax
    cross-entropy on the FC logits.
    """
    losses = {"cls": F.cross_entropy(outputs["logits"].float(), labels)}
    if outputs.get("in_logits") is not None:
        losses["in"] = F.binary_cross_entropy_with_logits(outputs["in_logits"].float().squeeze(1), m_in)
    if outputs.get("ex_logits") is not None:
        losses["ex"] = F.binary_cross_entropy_with_logits(outputs["ex_logits"].float().squeeze(1), m_ex)
    return losses


# --------------------------------------------------------------------------- batches
class BalancedBatchSampler(Sampler[list[int]]):
    """Batches with ``real_fraction`` real frames and the rest fake (Section 4.1).

    Each class is drawn without replacement from its own permutation (reshuffled when
    used up); an epoch has ``len(frames) // batch_size`` batches (at least one). A set
    holding one class only yields plain shuffled batches.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, real_fraction: float, seed: int) -> None:
        self.labels = np.asarray(labels)
        self.batch_size = batch_size
        self.real_fraction = real_fraction
        self.seed = seed

    def __len__(self) -> int:
        return max(1, len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed)
        reals, fakes = np.flatnonzero(self.labels == 0), np.flatnonzero(self.labels == 1)
        if reals.size == 0 or fakes.size == 0:
            order = rng.permutation(len(self.labels))
            for b in range(len(self)):
                yield order[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            return
        n_real = int(round(self.batch_size * self.real_fraction))
        n_real = min(max(n_real, 1), self.batch_size - 1) if self.batch_size > 1 else n_real
        draws = {"real": _cycle(reals, rng), "fake": _cycle(fakes, rng)}
        for _ in range(len(self)):
            batch = [next(draws["real"]) for _ in range(n_real)] + [next(draws["fake"]) for _ in range(self.batch_size - n_real)]
            yield [int(i) for i in rng.permutation(batch)]


def _cycle(pool: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rng.permutation(pool).tolist()


# --------------------------------------------------------------------------- detector
class BiGArts(Detector):
    """BiG-Arts recipe; variants differ only in config (see ``register_detector`` calls below)."""

    config_class = BiGArtsConfig
    requires: ClassVar[frozenset[str]] = frozenset({"paired_real", "landmarks"})
    name = "big_arts"
    _augmenter: ForgeryAugmenter | None = None

    def build(self) -> nn.Module:
        pretrained, weights = self.backbone_init()
        return BiGArtsNet(self.config.replace(pretrained=pretrained, weights=weights))

    def setup_training(self) -> None:
        cfg = self.config
        self.optimizers["model"] = make_optimizer(cfg, self.model.parameters())
        if cfg.cosine_t_max > 0:
            self.schedulers["model"] = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizers["model"], T_max=cfg.cosine_t_max)

    def augmenter(self, train: FrameSet) -> ForgeryAugmenter:
        """The forgery augmenter of this training set (built once per FrameSet)."""
        held = getattr(self, "_augmenter", None)
        if held is None or held.frames is not train:
            cfg = self.config
            held = ForgeryAugmenter(
                train,
                gamma=cfg.gamma,
                open_iterations=cfg.mask_open_iterations,
                band_frac=cfg.band_frac,
                hull_scale=cfg.hull_scale,
                distort_grid=cfg.distort_grid,
                distort_magnitude=cfg.distort_magnitude,
            )
            self._augmenter = held
        return held

    def train_loader(self, train: FrameSet, seed: int, epoch: int) -> DataLoader:
        self.augmenter(train)
        sampler = BalancedBatchSampler(train.labels, self.config.batch_size, self.config.real_fraction, seed * 1000 + epoch)
        return self.make_loader(train, batch_sampler=sampler)  # workers / pinned memory from the config

    def make_batch(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, Any]:
        """Section 3.3 / 4.1: original frames + forgeries, their M_In / M_Ex, then JPEG.

        Returns uint8 images (B, H, W, 3), labels, masks (B, H, W) and the kind of each
        sample (0 original, 1 (Real, Real), 2 (Fake, Real)).
        """
        cfg = self.config
        aug = self._augmenter
        images = batch["image"].permute(0, 2, 3, 1).numpy().copy()
        labels = batch["label"].numpy().copy()
        index = batch["index"].numpy()
        m_in, m_ex = aug.masks.masks(index, aug.radius)
        kind = np.zeros(len(labels), dtype=np.int64)
        _, rr_slots, fr_slots = forgery_slots(labels)
        if cfg.aug_real_real:
            for pos in rr_slots:
                forgery = aug.real_real(rng)
                if forgery is not None:
                    images[pos], m_in[pos], m_ex[pos], kind[pos] = forgery.image, forgery.m_in, forgery.m_ex, 1
        if cfg.aug_fake_real:
            for pos in fr_slots:
                forgery = aug.fake_real(int(index[pos]), rng)
                if forgery is not None:
                    images[pos], m_in[pos], m_ex[pos], kind[pos] = forgery.image, forgery.m_in, forgery.m_ex, 2
        # imported here: laundering imports the procedures registry, which imports the detectors
        from dfbench.benchmark.laundering import jpeg_image

        lo, hi = cfg.jpeg_quality
        for k in range(len(images)):
            if rng.random() < cfg.jpeg_prob:
                images[k] = jpeg_image(images[k], int(rng.integers(lo, hi + 1)))
        return {"images": images, "labels": labels, "m_in": m_in, "m_ex": m_ex, "kind": kind}

    def _mask_targets(self, masks: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(masks).float().unsqueeze(1).to(self.device)
        size = self.config.input_size
        if t.shape[-1] != size or t.shape[-2] != size:
            t = F.interpolate(t, size=(size, size), mode="nearest")
        return t.squeeze(1)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config
        # the augmentation draws from torch's global generator, which the resumable train
        # state saves, so an interrupted fit resumes with the same forgeries
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        made = self.make_batch(batch, rng)
        x = self.preprocess(torch.from_numpy(made["images"]).permute(0, 3, 1, 2))
        y = torch.from_numpy(made["labels"]).to(self.device)
        losses = big_arts_losses(self.model.forward_all(x), y, self._mask_targets(made["m_in"]), self._mask_targets(made["m_ex"]))
        weights = {"cls": cfg.lambda_cls, "in": cfg.lambda_in, "ex": cfg.lambda_ex}
        total = sum(weights[k] * v for k, v in losses.items())  # Eq. (2)
        self.optimizer_step(total)
        logs: dict[str, float | torch.Tensor] = {"loss": total.detach()}
        logs.update({f"loss_{k}": v.detach() for k, v in losses.items()})
        logs["forgeries"] = float((made["kind"] > 0).sum())
        return logs


# --------------------------------------------------------------------------- registry
register_detector(
    "big_arts",
    BiGArts,
    description="BiG-Arts: classifier + intrinsic (M_In) and extrinsic (M_Ex) artifact decoders, forgery augmentation",
    paper=PAPER,
    # the full model: Table 5 with all augmentations, Table 6 with both artifact branches
    paper_methods=("BiG-Arts", "BiG-Arts (aug=all)", "BiG-Arts (artifacts=M_In+M_Ex)"),
)
register_detector(
    "big_arts_cls_only",
    BiGArts,
    description="BiG-Arts ablation (Table 6 'None'): classification branch only, same data and augmentation",
    paper=PAPER,
    paper_methods=("BiG-Arts (artifacts=none)",),
    intrinsic_branch=False,
    extrinsic_branch=False,
)
register_detector(
    "big_arts_in_only",
    BiGArts,
    description="BiG-Arts ablation (Table 6 'M_In'): intrinsic-artifact branch only",
    paper=PAPER,
    paper_methods=("BiG-Arts (artifacts=M_In)",),
    extrinsic_branch=False,
)
register_detector(
    "big_arts_ex_only",
    BiGArts,
    description="BiG-Arts ablation (Table 6 'M_Ex'): extrinsic-artifact branch only, the paper's Face X-ray re-implementation",
    paper=PAPER,
    # Sec. 4.2: "we implement Face X-ray using our method by pruning the intrinsic-granularity
    # artifacts branch": the Face X-ray rows of Tables 1-4 are this model
    paper_methods=("BiG-Arts (artifacts=M_Ex)", "big_arts:Face X-ray"),
    intrinsic_branch=False,
)
# Table 5: the forgery-face augmentation ablation ("None", "(Real, Real)", "(Fake, Real)"; "All"
# is `big_arts`), both artifact branches kept.
register_detector("big_arts_aug_none", BiGArts, description="BiG-Arts without forgery augmentation (Table 5 'None')", paper=PAPER, paper_methods=("BiG-Arts (aug=none)",), aug_real_real=False, aug_fake_real=False)
register_detector("big_arts_aug_rr", BiGArts, description="BiG-Arts with (Real, Real) forgeries only (Table 5)", paper=PAPER, paper_methods=("BiG-Arts (aug=(Real,Real))",), aug_fake_real=False)
register_detector("big_arts_aug_fr", BiGArts, description="BiG-Arts with (Fake, Real) forgeries only (Table 5)", paper=PAPER, paper_methods=("BiG-Arts (aug=(Fake,Real))",), aug_real_real=False)
