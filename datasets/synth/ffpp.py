"""Writes a FaceForensics++-like synthetic benchmark in the official FF++ on-disk layout.

::

    <out>/original_sequences/youtube/{raw,c23,c40}/videos/NNN.mp4
    <out>/manipulated_sequences/<Method>/{raw,c23,c40}/videos/<target>_<source>.mp4
    <out>/manipulated_sequences/<Method>/masks/videos/<target>_<source>.mp4
    <out>/splits/{train,val,test}.json          lists of pairs [["071", "054"], ...]
    <out>/.dfbench_synth.json                   marker (written last): scale, seed, version
    <out>/.dfbench_synth_boxes.json             the generator's own face box per real frame

Every identity is in exactly one pair; for a pair [a, b] both fakes a_b and b_a exist
(``<target>_<source>``: the target's frames with the source's face or expression), and
the pair, its two fakes and the reals a and b all belong to the pair's split (the FF++
convention). Generation is deterministic given the seed: identities, motion, noise and
manipulations each draw from their own ``numpy`` stream keyed by the seed and indices.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfbench.benchmark.errors import ConfigError, DatasetError
from dfbench.datasets.synth.encode import QUALITIES, write_video
from dfbench.datasets.synth.faces import (
    Identity,
    Motion,
    face_box,
    random_identity,
    random_motion,
    render_face,
    render_video,
    sensor_noise,
    to_uint8,
)
from dfbench.datasets.synth.manipulations import MANIPULATIONS, METHODS, PairVideos

GENERATOR_VERSION = 4  # bump when the content changes, so embedded data is regenerated
MARKER = ".dfbench_synth.json"
BOXES_FILE = ".dfbench_synth_boxes.json"
REAL_DIR = Path("original_sequences") / "youtube"
FAKE_DIR = Path("manipulated_sequences")
# MTCNN probability a candidate identity must reach on every screened frame
DETECTION_THRESHOLD = 0.95


@dataclass(frozen=True)
class Scale:
    """Size of one synthetic FF++-like set."""

    identities: int  # real videos; every identity is in exactly one pair
    frames: int  # frames per video
    size: int  # frame side in pixels (square frames)
    split_pairs: tuple[int, int, int]  # pairs in train / val / test
    description: str = ""

    def __post_init__(self) -> None:
        if sum(self.split_pairs) * 2 != self.identities:
            raise ValueError("split_pairs must use every identity exactly once (2 per pair)")


SCALES: dict[str, Scale] = {
    "tiny": Scale(12, 8, 128, (4, 1, 1), "tests only: seconds"),
    "mini": Scale(80, 20, 128, (24, 8, 8), "default embedded benchmark: under 2 minutes on 2 CPU cores"),
    "small": Scale(200, 32, 128, (60, 20, 20), "a stronger check: a few minutes"),
    "full": Scale(1000, 48, 192, (360, 70, 70), "FF++'s pair counts (360/70/70); long"),
}


def get_scale(scale: str) -> Scale:
    if scale not in SCALES:
        raise ConfigError(f"Unknown synthetic scale {scale!r}; choose one of {sorted(SCALES)}.")
    return SCALES[scale]


# ----------------------------------------------------------------------------- identities
def _candidate(seed: int, k: int, n_frames: int) -> tuple[Identity, Motion]:
    identity = random_identity(np.random.default_rng([seed, 1, k]))
    motion = random_motion(np.random.default_rng([seed, 2, k]), n_frames)
    return identity, motion


def _noise_rng(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng([seed, 3, k])


def screen_identities(seed: int, scale: Scale, batch: int = 32) -> list[int]:
    """Candidate indices whose faces MTCNN detects, in order, until ``scale.identities``.

    Three frames (first, middle, last) of each candidate are checked, batched. About 9 in
    10 random faces pass; the rest (often low-contrast mouths) are skipped, never fixed up.
    """
    from facenet_pytorch import MTCNN  # heavy; imported only when generating
    from PIL import Image

    detector = MTCNN(keep_all=False, device="cpu")
    picks = (0, scale.frames // 2, scale.frames - 1)
    accepted: list[int] = []
    k = 0
    while len(accepted) < scale.identities:
        if k > 4 * scale.identities + 64:
            raise DatasetError("The synthetic face generator could not produce enough detectable faces.")
        ks = list(range(k, k + batch))
        k += batch
        images = []
        for kk in ks:
            identity, motion = _candidate(seed, kk, scale.frames)
            noise_rng = np.random.default_rng([seed, 9, kk])
            for t in picks:
                img = render_face(identity, motion.pose(t), scale.size) + sensor_noise(noise_rng, scale.size)
                images.append(Image.fromarray(to_uint8(img)))
        _, probs = detector.detect(images)
        for i, kk in enumerate(ks):
            ps = [probs[i * len(picks) + j] for j in range(len(picks))]
            ok = all(p is not None and p[0] is not None and float(p[0]) >= DETECTION_THRESHOLD for p in ps)
            if ok and len(accepted) < scale.identities:
                accepted.append(kk)
    return accepted


def make_pairs(
    seed: int, names: Sequence[str], split_pairs: tuple[int, int, int]
) -> dict[str, list[list[str]]]:
    """Shuffle identities into disjoint pairs and split the pairs into train/val/test."""
    order = np.random.default_rng([seed, 4]).permutation(len(names))
    pairs = [[names[order[2 * i]], names[order[2 * i + 1]]] for i in range(len(names) // 2)]
    n_train, n_val, _ = split_pairs
    return {
        "train": pairs[:n_train],
        "val": pairs[n_train : n_train + n_val],
        "test": pairs[n_train + n_val :],
    }


# ----------------------------------------------------------------------------- work units
@dataclass(frozen=True)
class _Unit:
    """One pair [a, b]: both real videos and the fakes a_b and b_a of every method.

    A pair is the natural unit of work: each identity's real video is rendered once and
    serves as target of one fake and source of the other.
    """

    out: str
    seed: int
    scale: Scale
    names: tuple[str, str]
    ks: tuple[int, int]  # candidate indices of the two identities


def _write_unit(unit: _Unit) -> dict[str, list[list[float]]]:
    out, sc = Path(unit.out), unit.scale
    people = [_candidate(unit.seed, k, sc.frames) for k in unit.ks]
    videos = [
        render_video(ident, motion, sc.size, _noise_rng(unit.seed, k))
        for (ident, motion), k in zip(people, unit.ks)
    ]
    boxes = {}
    for name, (ident, motion), (frames, _) in zip(unit.names, people, videos):
        real = to_uint8(frames)
        for q in QUALITIES:
            write_video(out / REAL_DIR / q / "videos" / f"{name}.mp4", real, q)
        boxes[name] = [
            [round(x, 2) for x in face_box(ident, motion.pose(t), sc.size)] for t in range(sc.frames)
        ]
    for ti, si in ((0, 1), (1, 0)):
        fake_name = f"{unit.names[ti]}_{unit.names[si]}.mp4"
        for m_index, method in enumerate(METHODS):
            pair = PairVideos(
                size=sc.size,
                target=people[ti][0],
                target_motion=people[ti][1],
                target_frames=videos[ti][0],
                target_noise=videos[ti][1],
                source=people[si][0],
                source_motion=people[si][1],
                source_frames=videos[si][0],
                rng=np.random.default_rng([unit.seed, 5, m_index, unit.ks[ti], unit.ks[si]]),
            )
            fake, mask = MANIPULATIONS[method](pair)
            for q in QUALITIES:
                write_video(out / FAKE_DIR / method / q / "videos" / fake_name, fake, q)
            write_video(out / FAKE_DIR / method / "masks" / "videos" / fake_name, mask, "mask")
    return boxes


# ----------------------------------------------------------------------------- public API
def read_marker(root: Path) -> dict[str, Any] | None:
    """The marker of a complete synthetic set under ``root``, or None."""
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _matches(marker: dict[str, Any] | None, scale: str, seed: int) -> bool:
    return (
        marker is not None
        and marker.get("version") == GENERATOR_VERSION
        and marker.get("scale") == scale
        and marker.get("seed") == seed
    )


def _merge(parts: Iterator[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return dict(sorted(merged.items()))


def _progress_map(
    executor: ProcessPoolExecutor | None, units: list[_Unit], progress: bool, label: str
) -> Iterator[dict[str, Any]]:
    results = executor.map(_write_unit, units) if executor is not None else map(_write_unit, units)
    if not progress:
        yield from results
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=len(units))
        for item in results:
            bar.advance(task)
            yield item


def generate_ffpp_like(
    out: Path,
    *,
    scale: str = "mini",
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Generate the FF++-like set into ``out`` (atomically) and return ``out``.

    If ``out`` already holds the same scale, seed and generator version, nothing is done.
    ``overwrite`` replaces an existing *synthetic* set (one with a marker); a folder that
    is not a synthetic set is never deleted. ``workers`` defaults to min(2, CPUs).
    """
    spec = get_scale(scale)
    out = Path(out).expanduser()
    if out.exists():
        marker = read_marker(out)
        if _matches(marker, scale, seed):
            return out
        if marker is None and any(out.iterdir()):
            raise DatasetError(
                f"{out} exists and is not a dfbench synthetic set; choose an empty or new folder."
            )
        if marker is not None and not overwrite:
            raise DatasetError(
                f"{out} holds a synthetic set with scale={marker.get('scale')!r} seed={marker.get('seed')!r} "
                f"version={marker.get('version')!r}; pass overwrite=True or choose another folder."
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    with removed_on_failure(tmp, out):
        ks = screen_identities(seed, spec)
        names = [f"{i:03d}" for i in range(spec.identities)]
        k_of = dict(zip(names, ks))
        splits = make_pairs(seed, names, spec.split_pairs)
        units = [
            _Unit(str(tmp), seed, spec, (a, b), (k_of[a], k_of[b]))
            for pairs in splits.values()
            for a, b in pairs
        ]
        n_workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        label = f"synthetic FF++ ({scale})"
        if n_workers > 1:
            import multiprocessing

            # spawn: the parent has run MTCNN (torch thread pools); forking that is unsafe
            with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as ex:
                boxes = _merge(_progress_map(ex, units, progress, label))
        else:
            boxes = _merge(_progress_map(None, units, progress, label))
        (tmp / "splits").mkdir(parents=True, exist_ok=True)
        for split, pairs in splits.items():
            (tmp / "splits" / f"{split}.json").write_text(json.dumps(pairs))
        (tmp / BOXES_FILE).write_text(json.dumps({"format": "x1,y1,x2,y2 pixels per frame", "boxes": boxes}))
        marker = {
            "generator": "dfbench synthetic FaceForensics++-like set",
            "version": GENERATOR_VERSION,
            "scale": scale,
            "seed": seed,
            "spec": asdict(spec),
            "methods": list(METHODS),
            "qualities": list(QUALITIES),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))  # last: the set is complete
        _install(tmp, out, scale, seed)
    return out


@contextlib.contextmanager
def removed_on_failure(tmp: Path, out: Path) -> Iterator[None]:
    """Delete the half-written ``tmp`` folder if generation fails; a full disk becomes one
    clear DatasetError naming where space is needed."""
    try:
        yield
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise DatasetError(f"The disk holding {out.parent} is full; free space and generate again.") from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _install(tmp: Path, out: Path, scale: str, seed: int) -> None:
    """Move the finished set into place; if another process won the race, keep theirs."""
    if out.exists():
        if _matches(read_marker(out), scale, seed):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        if read_marker(out) is not None:  # an older synthetic set (checked by the caller)
            trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, trash)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            out.rmdir()  # empty (checked by the caller)
    try:
        os.rename(tmp, out)
    except OSError:
        if _matches(read_marker(out), scale, seed):  # rename lost to a concurrent writer
            shutil.rmtree(tmp, ignore_errors=True)
            return
        raise
