import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dfbench.detectors import create_detector
from dfbench.detectors.baselines import gaussian_blur, gaussian_noise, jpeg_compress


def hand_blur(img: torch.Tensor, sigma2: float, k: int = 9) -> torch.Tensor:
    r = k // 2
    d = torch.arange(k, dtype=torch.float32) - r
    yy, xx = torch.meshgrid(d, d, indexing="ij")
    kernel = torch.exp(-(xx**2 + yy**2) / (2 * sigma2))
    kernel = (kernel / kernel.sum()).view(1, 1, k, k).repeat(3, 1, 1, 1)
    x = F.pad(img.float().unsqueeze(0), (r, r, r, r), mode="reflect")
    return F.conv2d(x, kernel, groups=3)[0].round().clamp(0, 255).to(torch.uint8)


def test_blur_matches_a_hand_built_2d_kernel_and_zero_variance_is_identity() -> None:
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8, generator=g)
    out = gaussian_blur(imgs, torch.tensor([4.0, 0.0]), 9)
    assert (out[0].int() - hand_blur(imgs[0], 4.0).int()).abs().max() <= 1  # separable == 2-D up to rounding
    assert torch.equal(out[1], imgs[1])


def test_noise_has_the_requested_variance() -> None:
    imgs = torch.full((4, 3, 64, 64), 128, dtype=torch.uint8)
    out = gaussian_noise(imgs, torch.tensor([0.0, 25.0, 25.0, 100.0]), torch.Generator().manual_seed(0))
    diff = out.float() - 128
    assert torch.equal(out[0], imgs[0])
    assert diff[1].var().item() == pytest.approx(25.0, rel=0.1)
    assert diff[3].var().item() == pytest.approx(100.0, rel=0.1)


def test_jpeg_round_trip_equals_pil() -> None:
    img = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=60)
    expected = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert np.array_equal(jpeg_compress(img, 60).permute(1, 2, 0).numpy(), expected)


@pytest.mark.parametrize("name", ["aug_noise", "aug_blur", "aug_jpeg", "aug_combined"])
def test_augmentation_changes_about_half_the_images_reproducibly(name: str) -> None:
    det = create_detector(name)
    imgs = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    det.ensure_built()
    torch.manual_seed(0)
    det.setup_training()
    a = det.augment(imgs)
    torch.manual_seed(0)
    det.setup_training()
    b = det.augment(imgs)
    assert torch.equal(a, b)
    changed = (a != imgs).flatten(1).any(1).float().mean().item()
    expected = 1 - 0.5 ** len(det.config.augmentations)  # each augmentation applied with p = 0.5
    assert abs(changed - expected) < 0.2
