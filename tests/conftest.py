"""Shared test fixtures (other areas may add theirs here).

``ffpp_fixture``: a tiny FaceForensics++-layout dataset of real public-domain face photos
(see ``dfbench.benchmark.preprocess.fixture``), built once per session. Tests that change
files copy it first (``ffpp_copy``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import dfbench  # noqa: F401  (torchvision guard before anything imports torchvision)

# The suite's tensors are tiny: intra-op threads only add overhead, and on a shared 2-core
# machine they contend (measured up to 10x slower with 2 threads). One thread for the session.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ffpp_fixture(tmp_path_factory: pytest.TempPathFactory):
    from dfbench.benchmark.preprocess.fixture import build_ffpp_fixture

    return build_ffpp_fixture(tmp_path_factory.mktemp("ffpp") / "FaceForensics++")


@pytest.fixture
def ffpp_copy(ffpp_fixture, tmp_path: Path) -> Path:
    """A private copy of the fixture's root that a test may modify."""
    root = tmp_path / "FaceForensics++"
    shutil.copytree(ffpp_fixture.root, root)
    return root


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """MTCNN runs many tiny ops; on a shared 2-core machine extra intra-op threads only
    contend (measured 8x slower under load), so detection tests use one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
