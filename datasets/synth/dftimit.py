"""The DF-TIMIT-like stand-in (on demand, see ``standins.py``), in the DeepfakeTIMIT + VidTIMIT layout:

```
<out>/VidTIMIT/<subject>/video/<sentence>/<001…>                       reals: JPEG frames, no extension
<out>/VidTIMIT/<subject>/video/head/<001…>                             a head-rotation sequence (no fakes)
<out>/DeepfakeTIMIT/lower_quality/<subject>/<sentence>-video-<partner>.avi    LQ fakes
<out>/DeepfakeTIMIT/higher_quality/<subject>/<sentence>-video-<partner>.avi   HQ fakes
```

As in DeepfakeTIMIT, subjects come in pairs (0↔1, 2↔3, …) swapped both ways: each sentence
recording of a subject gets its partner's face, once per quality. The fakes re-render the
*JPEG-decoded* real frames (VidTIMIT is stored as JPEG, so the fakes carry that trace too)
and are H.264 AVI files (crf 23). Frames are 256 × 192 (VidTIMIT's 512 × 384 at half size),
cut from a 256² render, the face about a third of the frame height.

The two qualities differ the way faceswap-GAN's two models do. LQ's generator works at 64 × 64
and HQ's at 128 × 128 on a face crop of about 220 pixels of a 512 × 384 frame: the swapped face
is rendered at 1/3.4 (LQ) or 1/1.7 (HQ) of the frame resolution (kept at this half-size set).
Both match the face's colour to the target (histogram normalisation in both pipelines); LQ
keeps more of the source's skin tone and a narrower blend (a segmentation mask), HQ a wider,
landmark-aligned blend with sensor-like noise on the synthetic face: HQ is the harder set,
as in the paper's tables (DT-HQ AUCs below DT-LQ ones). Random streams are keyed
``[seed, 7001, 5, part, k]``: new people; every subject's face was screened with MTCNN.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

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

DFTIMIT_VERSION = 1  # bump when the content changes
WIDTH, HEIGHT = 256, 192  # frames (the width a multiple of 128: reproducible H.264)
ROWS = slice((WIDTH - HEIGHT) // 2, (WIDTH + HEIGHT) // 2)  # rendered square, cut to 4:3
FACE_SCALE = 0.75  # × the default face size of a 256² render
JPEG_QUALITY = 90
# scale -> (subjects, sentences per subject, frames per recording); the release: 32 subjects × 10
DFTIMIT_SCALES: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 1, 6),
    "mini": (8, 2, 12),
    "small": (16, 4, 16),
    "full": (32, 10, 32),
}
SENTENCES = ("sa1", "sa2", "si1101", "si1731", "si471", "sx111", "sx21", "sx201", "sx291", "sx381")
QUALITY_DIRS = {"lower_quality": "LQ", "higher_quality": "HQ"}
DFTIMIT_SWAPS = {
    "LQ": SwapStyle(skin_mix=0.35, downscale=3.4, blend_sigma=0.07, noise_gain=0.0, colour_match=1.0),
    "HQ": SwapStyle(skin_mix=0.2, downscale=1.7, blend_sigma=0.13, noise_gain=0.8, colour_match=1.0),
}
DS = "dftimit"


def subject_name(k: int) -> str:
    """TIMIT-style five-character speaker ids: sex, three letters, a digit."""
    return f"{'fm'[k % 2]}dt{chr(ord('a') + k // 10)}{k % 10}"


def _capture(seed: int, k: int, j: int, frames: int) -> Capture:
    motion = random_motion(_rng(seed, DS, 2, k, j), frames)
    return Capture(random_identity(_rng(seed, DS, 1, k)), replace(motion, scale=motion.scale * FACE_SCALE), (3, k, j))


def _jpeg_frames(frames: np.ndarray, folder: Path) -> np.ndarray:
    """Write each frame as ``folder/<001…>`` (JPEG, no extension); return what a reader decodes."""
    folder.mkdir(parents=True, exist_ok=True)
    decoded = []
    for t, frame in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=JPEG_QUALITY)
        (folder / f"{t + 1:03d}").write_bytes(buf.getvalue())
        decoded.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return np.stack(decoded)


def write_dftimit_like(out: Path, scale: str, seed: int, progress: bool) -> dict[str, Any]:
    n_subjects, n_sentences, frames = DFTIMIT_SCALES[scale]
    kept = _screen(lambda k: _capture(seed, k, 0, frames), n_subjects, WIDTH, seed, DS, crop_rows=ROWS)
    people = [cap.noise_key[1] for cap in kept]  # candidate numbers of the screened subjects
    names = [subject_name(i) for i in range(n_subjects)]
    with _Bar(progress, n_subjects * n_sentences, f"synthetic DF-TIMIT ({3 * n_subjects * n_sentences} videos)") as tick:
        for i, k in enumerate(people):
            video = out / "VidTIMIT" / names[i] / "video"
            head = render_capture(_capture(seed, k, 99, frames), WIDTH, seed, DS)[0]
            _jpeg_frames(to_uint8(head[:, ROWS]), video / "head")
            partner = i ^ 1  # pairs 0↔1, 2↔3, …: swapped both ways
            for j, sentence in enumerate(SENTENCES[:n_sentences]):
                cap = _capture(seed, k, j, frames)
                square, noise = render_capture(cap, WIDTH, seed, DS)
                square[:, ROWS] = _jpeg_frames(to_uint8(square[:, ROWS]), video / sentence)
                for folder, quality in QUALITY_DIRS.items():
                    rng = _rng(seed, DS, 5, k, j, 0 if quality == "LQ" else 1)
                    style = DFTIMIT_SWAPS[quality]
                    fake = swap_onto(cap.identity, cap.motion, square, noise, kept[partner].identity, style, rng)[:, ROWS]
                    path = out / "DeepfakeTIMIT" / folder / names[i] / f"{sentence}-video-{names[partner]}.avi"
                    write_video(path, fake, VIDEO_QUALITY)
                tick()
    n = n_subjects * n_sentences
    return {"subjects": n_subjects, "real": n, "fake_LQ": n, "fake_HQ": n, "head_sequences": n_subjects}


STANDIN = StandIn(label="DF-TIMIT-like", version=DFTIMIT_VERSION, scales=tuple(DFTIMIT_SCALES), write=write_dftimit_like)
