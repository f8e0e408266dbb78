"""Embedded stand-ins generated on demand: a dataset's small synthetic set, in its official
layout, written only when a run without ``--data-root`` needs that dataset.

The embedded benchmark's FF++-like set and the Celeb-DF-, DFDCP- and WildDeepfake-like sets
are generated together on first use (``embedded.ensure_embedded_data``). Sets that only a few
protocols test on are *on demand* instead, so a run that does not use them (e.g. the README's
first ``cross_quality`` run) never waits for them: an adapter names its stand-in in
``embedded_generator`` (``"module:attribute"`` of a ``StandIn``), and ``ensure_standins``
writes it into ``<data>/<scale>/<embedded_subdir>`` the first time a run asks for that
dataset. Like the other sets: generated into a private temporary folder under a lock, the
marker (``.dfbench_synth.json``: generator, version, scale, seed, counts) written last, then
renamed into place; a set whose marker matches is kept, one of another version, scale or seed
is replaced, and a folder without a marker that holds files is never touched.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.datasets.synth.ffpp import MARKER, read_marker, removed_on_failure

# (output folder, scale, seed, progress) -> counts stored in the marker
Writer = Callable[[Path, str, int, bool], dict[str, Any]]


@dataclass(frozen=True)
class StandIn:
    """One on-demand stand-in: ``write`` fills an empty folder with the set of ``scale``."""

    label: str  # e.g. "UADFV-like", for messages and the marker
    version: int  # bump when the content changes, so stored sets are regenerated
    scales: tuple[str, ...]
    write: Writer

    def matches(self, marker: dict[str, Any] | None, scale: str, seed: int) -> bool:
        return (
            marker is not None
            and marker.get("generator") == f"dfbench synthetic {self.label} set"
            and marker.get("version") == self.version
            and marker.get("scale") == scale
            and marker.get("seed") == seed
        )


def load_standin(ref: str) -> StandIn:
    """The ``StandIn`` an adapter's ``embedded_generator`` names (``"module:attribute"``)."""
    module, sep, attr = ref.partition(":")
    if not sep:
        raise ConfigError(f"embedded_generator {ref!r} is not 'module:attribute'.")
    standin = getattr(importlib.import_module(module), attr, None)
    if not isinstance(standin, StandIn):
        raise ConfigError(f"embedded_generator {ref!r} does not name a StandIn.")
    return standin


def standin_complete(folder: Path, standin: StandIn, scale: str, seed: int) -> bool:
    return standin.matches(read_marker(Path(folder)), scale, seed)


def generate_standin(standin: StandIn, out: Path, *, scale: str, seed: int = 0, progress: bool = True) -> Path:
    """Write ``standin`` of ``scale`` into ``out`` (kept when its marker already matches)."""
    if scale not in standin.scales:
        raise ConfigError(f"The {standin.label} stand-in has no scale {scale!r}; choose one of {list(standin.scales)}.")
    out = Path(out).expanduser()
    if standin_complete(out, standin, scale, seed):
        return out
    if out.exists() and read_marker(out) is None and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not a dfbench synthetic set; move it away or choose another root.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"Cannot create {out.parent} for the {standin.label} stand-in ({exc.strerror or exc}); set DFBENCH_DATA to a writable folder.") from exc
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with removed_on_failure(tmp, out):
        tmp.mkdir()
        counts = standin.write(tmp, scale, seed, progress)
        marker = {
            "generator": f"dfbench synthetic {standin.label} set",
            "version": standin.version,
            "scale": scale,
            "seed": seed,
            "counts": counts,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))  # last: the set is complete
        if out.exists():  # an older version, or an empty folder (both checked above)
            trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(tmp, out)
    return out


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def ensure_standins(datasets: Iterable[str], scale: str = "mini", *, progress: bool = True) -> dict[str, Path]:
    """Generate, under ``<data>/<scale>``, the on-demand stand-in of each named dataset that has
    one (others are ignored); returns {dataset: folder}. Safe when several processes call it."""
    from dfbench.datasets.base import DATASETS
    from dfbench.datasets.synth.embedded import EMBEDDED_SEED, _exclusive, embedded_root

    root = embedded_root(scale)
    out: dict[str, Path] = {}
    for name in dict.fromkeys(datasets):
        if name not in DATASETS:
            continue
        cls = DATASETS.get(name)
        if not cls.embedded_generator or not cls.embedded_subdir:
            continue
        standin = load_standin(cls.embedded_generator)
        folder = root / cls.embedded_subdir
        if not standin_complete(folder, standin, scale, EMBEDDED_SEED):
            if not os.access(_existing_parent(root), os.W_OK):
                raise DatasetError(
                    f"Cannot write the {standin.label} stand-in under {root} (not writable); "
                    f"set DFBENCH_DATA to a writable folder."
                )
            with _exclusive(root / f".{cls.embedded_subdir}.lock"):
                generate_standin(standin, folder, scale=scale, seed=EMBEDDED_SEED, progress=progress)
        out[name] = folder
    return out


__all__ = ["StandIn", "ensure_standins", "generate_standin", "load_standin", "standin_complete"]
