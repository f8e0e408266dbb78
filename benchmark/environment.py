"""What a result was computed with: package versions, platform, device and code revision.

Every results row carries this (``versions`` as a JSON string, ``device``, ``git_hash``), so a
number can always be traced to the software and hardware that produced it. The hostname is
deliberately left out: results files get shared, and the machine name says nothing about the
number but may say something about the person.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# Distribution names as pip knows them (import names differ: sklearn, av, facenet_pytorch).
TRACKED_DISTRIBUTIONS: tuple[str, ...] = (
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "pandas",
    "scikit-learn",
    "av",
    "facenet-pytorch",
    "pyarrow",
    "dfbench",
)

_GIT_TIMEOUT_S = 5.0


def package_versions() -> dict[str, str | None]:
    """Installed version of each tracked distribution (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_device(device: str) -> str:
    """The device string, with the GPU's model name when it is a CUDA device.

    torch is imported only for CUDA devices: a CPU run should not pay for initialising it here.
    """
    text = str(device)
    if not text.startswith("cuda"):
        return text
    try:
        import torch

        if not torch.cuda.is_available():
            return f"{text} (CUDA not available)"
        index = torch.device(text).index
        index = torch.cuda.current_device() if index is None else index
        return f"{text} ({torch.cuda.get_device_name(index)})"
    except (ImportError, RuntimeError, AssertionError) as exc:  # a broken CUDA setup must not lose the run
        return f"{text} (device query failed: {exc})"


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(path: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit hash, has uncommitted changes) of the git checkout holding ``path``.

    Defaults to the directory of the dfbench source itself (an editable install lives in the
    checkout), because the code revision is what makes a number reproducible. (None, None)
    outside a git repository or without git.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    commit = _git(["rev-parse", "HEAD"], where)
    if commit is None:
        return None, None
    # -uno: untracked files (results, caches) do not change what the code computes.
    status = _git(["status", "--porcelain", "-uno"], where)
    return commit, (bool(status) if status is not None else None)


def environment_info(device: str) -> dict[str, Any]:
    """Versions, platform, device description and git revision for ``run.json`` and results rows."""
    commit, dirty = git_revision()
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": describe_device(device),
        "git_hash": commit,
        "git_dirty": dirty,
    }
