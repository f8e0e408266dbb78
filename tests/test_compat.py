"""The torchvision guard: pure-torch NMS matches a hand example; imports work after `import dfbench`."""

import subprocess
import sys

import torch

from dfbench.benchmark.compat import greedy_nms


def test_greedy_nms_hand_example() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]], dtype=torch.float)
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6])
    # box 1 (0.9) wins; box 0 overlaps it with IoU 81/119 = 0.68 > 0.5 → dropped;
    # box 3 overlaps box 1 with IoU 72/128 = 0.5625 → dropped; box 2 is far away → kept
    assert greedy_nms(boxes, scores, 0.5).tolist() == [1, 2]
    # with a looser threshold box 0 survives (0.68 < 0.7) and box 3 is suppressed by box 0 (IoU 0.9)
    assert greedy_nms(boxes, scores, 0.7).tolist() == [1, 0, 2]
    assert greedy_nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).numel() == 0


def test_greedy_nms_agrees_with_bruteforce_on_random_boxes() -> None:
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 100
    wh = torch.rand(300, 2, generator=g) * 30 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(300, generator=g)
    keep = greedy_nms(boxes, scores, 0.4).tolist()
    # brute force: walk by score, keep a box unless it overlaps a kept one above the threshold
    def iou(a, b):
        lt = torch.maximum(a[:2], b[:2])
        rb = torch.minimum(a[2:], b[2:])
        inter = (rb - lt).clamp(min=0).prod()
        return inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter)
    expected = []
    for i in scores.argsort(descending=True).tolist():
        if all(iou(boxes[i], boxes[j]) <= 0.4 for j in expected):
            expected.append(i)
    assert keep == expected


def test_guard_makes_torchvision_timm_and_box_ops_importable() -> None:
    code = (
        "import dfbench, torch, timm\n"
        "from torchvision.ops import batched_nms, nms\n"
        "b = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]]); s = torch.tensor([0.9, 0.8])\n"
        "assert nms(b, s, 0.5).tolist() == [0]\n"
        "assert batched_nms(b, s, torch.tensor([0, 1]), 0.5).tolist() == [0, 1]\n"
        "timm.create_model('resnet10t', pretrained=False, num_classes=2)\n"
        "print('guard', dfbench.TORCHVISION_GUARD_INSTALLED)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "guard" in out.stdout


def test_guard_is_installed_exactly_when_compiled_ops_fail() -> None:
    """The guard acts only where plain `import torchvision` fails (CUDA wheel on CPU torch)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import dfbench; print(dfbench.TORCHVISION_GUARD_INSTALLED)"],
        capture_output=True, text=True, timeout=120,
    )
    installed = probe.stdout.strip().endswith("True")
    plain = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True, timeout=120)
    if installed:
        assert plain.returncode != 0 and "torchvision::nms" in plain.stderr
    else:
        assert plain.returncode == 0
