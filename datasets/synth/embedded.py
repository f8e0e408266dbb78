"""The embedded benchmark: generated on first use under ``get_settings().data / <scale>``.

Layout: ``<data>/<scale>/ffpp/`` holds the FF++-like set; the sibling folders ``celebdf/``,
``dfdcp/`` and ``wdf/`` hold the Celeb-DF-, DFDC-preview- and WildDeepfake-like stand-ins
(``cross_dataset.py``), each in its dataset's official layout.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from dfbench.benchmark.settings import get_settings
from dfbench.datasets.synth.ffpp import generate_ffpp_like, get_scale, read_marker

EMBEDDED_SEED = 0  # the embedded benchmark is one fixed set per scale
FFPP_SUBDIR = "ffpp"

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (blocks while another process holds it).

    Where ``fcntl`` is missing (Windows) no lock is taken: generation still writes into a
    private temp folder and renames, and the loser of a race keeps the winner's set.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # another process is generating: say so rather than look hung
            logger.info("waiting for another dfbench process generating the embedded benchmark (%s)", lock_path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def embedded_root(scale: str = "mini") -> Path:
    """Where the embedded benchmark of ``scale`` lives (it may not exist yet)."""
    get_scale(scale)
    return get_settings().data / scale


def ensure_embedded_data(scale: str = "mini", *, progress: bool = True) -> Path:
    """Root of the embedded benchmark of ``scale``: the FF++-like set in ``ffpp/`` and the
    Celeb-DF-, DFDCP- and WildDeepfake-like sets beside it, each generated if missing.

    Safe when several processes call it at once: the first generates under a lock, the
    others wait and then find the finished set. A set written by an older generator version
    is replaced.
    """
    from dfbench.datasets.synth.cross_dataset import cross_dataset_complete, generate_cross_dataset_sets

    root = embedded_root(scale)
    ffpp = root / FFPP_SUBDIR
    if not _complete(ffpp, scale):
        with _exclusive(root / ".ffpp.lock"):
            if not _complete(ffpp, scale):
                logger.info("generating the embedded benchmark (%s) in %s: once, a few CPU minutes", scale, root)
                generate_ffpp_like(ffpp, scale=scale, seed=EMBEDDED_SEED, progress=progress, overwrite=True)
    if not cross_dataset_complete(root, scale, EMBEDDED_SEED):
        with _exclusive(root / ".cross.lock"):
            if not cross_dataset_complete(root, scale, EMBEDDED_SEED):
                logger.info("generating the embedded cross-dataset stand-ins (%s) in %s", scale, root)
            # keeps finished sets; replaces sets of an older version
            generate_cross_dataset_sets(root, scale=scale, seed=EMBEDDED_SEED, progress=progress)
    return root


def embedded_data_complete(scale: str = "mini") -> bool:
    """Whether the embedded benchmark of ``scale`` is generated already (nothing to write)."""
    from dfbench.datasets.synth.cross_dataset import cross_dataset_complete

    root = embedded_root(scale)
    return _complete(root / FFPP_SUBDIR, scale) and cross_dataset_complete(root, scale, EMBEDDED_SEED)


def _complete(ffpp: Path, scale: str) -> bool:
    from dfbench.datasets.synth.ffpp import GENERATOR_VERSION

    marker = read_marker(ffpp)
    return (
        marker is not None
        and marker.get("version") == GENERATOR_VERSION
        and marker.get("scale") == scale
        and marker.get("seed") == EMBEDDED_SEED
    )
