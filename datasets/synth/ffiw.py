"""A small FFIW10K-like set in the official layout, generated only when a run needs it.

```
<embedded>/<scale>/ffiw10k/source/{train,val,test}/<split>_<NNNNNNNN>.mp4   real
<embedded>/<scale>/ffiw10k/target/{train,val,test}/<split>_<NNNNNNNN>.mp4   fake
```

The FFIW10K adapter (``dfbench.datasets.ffiw10k``) reads it. It is an on-demand stand-in
(``standins.py``): the adapter's ``embedded_generator`` names ``STANDIN``, which
``standins.ensure_standins`` writes only for a run whose protocol names ``ffiw10k`` (the
embedded benchmark's other sets do not wait for it).
The real FFIW10K release has no test split in its main download (a separate test release
holds it); the stand-in holds all three splits so that a protocol trains, selects and tests.

Content: every real video is a new capture (identities, motion and sensor noise from random
streams keyed ``[seed, CROSS_STREAM, DATASET_CODES["ffiw10k"], part, k]``, disjoint from the
other stand-ins'); its fake, the ``target`` video of the same name, is the same capture with
the face swapped for another capture's person by ``cross_dataset.swap`` in ``FFIW_SWAP``
style: half the source's skin colour, a decoder at 1/2.5 resolution, a narrow blend and
little colour matching — traces about as strong as the FF++-like Deepfakes', so that 8
training videos per class suffice to learn it at mini (a subtler swap, tried first, left
ERM near chance) and c40 visibly washes it out. Frames are wider than tall (in-the-wild footage),
faces a smaller part of the frame. One face per frame: FFIW10K shows about three people per
frame with a subset swapped; the stand-in keeps one person (dfbench crops one face per frame
anyway), so it tests the adapter, the re-encoding and the protocols, not multi-person
detection. Videos are encoded as ``VIDEO_QUALITY`` (H.264 crf 23), like the other stand-ins
of compressed datasets. Generation is deterministic given (scale, seed); ``standins`` writes
the set to a temporary folder and renames it into place, its marker
(``FFIW_GENERATOR_VERSION``) last.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dfbench.datasets.synth.cross_dataset import (
    VIDEO_QUALITY,
    Capture,
    SwapStyle,
    _Bar,
    _rng,
    _screen,
    render_capture,
    swap_onto,
)
from dfbench.datasets.synth.encode import write_video
from dfbench.datasets.synth.faces import random_identity, random_motion, to_uint8
from dfbench.datasets.synth.standins import StandIn

FFIW_GENERATOR_VERSION = 1  # bump when the content changes, so the stand-in is regenerated
DATASET = "ffiw10k"  # its key in cross_dataset.DATASET_CODES
FFIW_SWAP = SwapStyle(skin_mix=0.5, downscale=2.5, blend_sigma=0.07, noise_gain=0.3, colour_match=0.3)
SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class FFIWScale:
    """Size of the FFIW10K-like set at one scale (videos per class and split)."""

    frames: int
    size: int  # frame width; height is 3/4 of it (a multiple of 128: reproducible H.264)
    train: int
    val: int
    test: int

    def __post_init__(self) -> None:
        if self.size % 128:
            raise ValueError("size must be a multiple of 128 for byte-reproducible H.264")

    def per_split(self) -> dict[str, int]:
        return {"train": self.train, "val": self.val, "test": self.test}


FFIW_SCALES: dict[str, FFIWScale] = {
    "tiny": FFIWScale(6, 128, 2, 1, 1),
    "mini": FFIWScale(12, 128, 8, 4, 4),  # 16 real / 16 fake
    "small": FFIWScale(16, 128, 20, 6, 10),
    "full": FFIWScale(32, 256, 60, 20, 40),
}


def frame_shape(sc: FFIWScale) -> tuple[int, int]:
    """(height, width): 4:3 landscape, rendered square at the width and cut."""
    return sc.size * 3 // 4, sc.size


def write_ffiw_like(out: Path, scale: str, seed: int, progress: bool) -> dict[str, int]:
    """Fill the empty folder ``out`` with the set of ``scale`` (``StandIn.write``); returns
    its counts (videos per class folder and split)."""
    sc = FFIW_SCALES[scale]
    height, width = frame_shape(sc)
    top = (width - height) // 2
    rows = slice(top, top + height)

    def capture(k: int) -> Capture:
        rng = _rng(seed, DATASET, 6, k)
        motion = random_motion(_rng(seed, DATASET, 2, k), sc.frames)
        motion = replace(motion, scale=motion.scale * rng.uniform(0.6, 0.75))
        return Capture(random_identity(_rng(seed, DATASET, 1, k)), motion, (3, k), noise_gain=float(rng.uniform(1.0, 1.5)))

    total = sum(sc.per_split().values())
    caps = _screen(capture, total, width, seed, DATASET, crop_rows=rows)
    counts: dict[str, int] = {}
    with _Bar(progress, total, f"synthetic FFIW10K ({2 * total} videos)") as tick:
        frames_of = {k: render_capture(cap, width, seed, DATASET) for k, cap in enumerate(caps)}
        k = 0
        for split in SPLIT_ORDER:
            n = sc.per_split()[split]
            for j in range(n):
                name = f"{split}_{j:08d}.mp4"
                real, noise = frames_of[k]
                write_video(out / "source" / split / name, to_uint8(real[:, rows]), VIDEO_QUALITY)
                s = (k + 1 + int(_rng(seed, DATASET, 4, k).integers(0, len(caps) - 1))) % len(caps)
                source = caps[s].identity
                fake = swap_onto(caps[k].identity, caps[k].motion, real, noise, source, FFIW_SWAP, _rng(seed, DATASET, 5, k))
                write_video(out / "target" / split / name, fake[:, rows], VIDEO_QUALITY)
                k += 1
                tick()
            counts[f"source/{split}"] = counts[f"target/{split}"] = n
    return counts


STANDIN = StandIn(label="FFIW10K-like", version=FFIW_GENERATOR_VERSION, scales=tuple(FFIW_SCALES), write=write_ffiw_like)


__all__ = [
    "FFIW_GENERATOR_VERSION",
    "FFIW_SCALES",
    "FFIW_SWAP",
    "STANDIN",
    "frame_shape",
    "write_ffiw_like",
]
