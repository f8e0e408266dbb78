"""The UADFV-like stand-in (on demand, see ``standins.py``), in UADFV's layout:

```
<out>/real/<nnnn>.mp4         a real capture
<out>/fake/<nnnn>_fake.mp4    that capture with another person's face swapped in
```

UADFV (2019) holds early DeepFake videos: the face is synthesised at low resolution and
pasted with a visible colour and resolution mismatch. The swap here (``UADFV_SWAP``) is the
crudest of the embedded sets: the source's skin colour largely kept (``skin_mix`` 0.8, no
colour match), a decoder at 1/3.5 of the frame resolution, a narrow blend (0.04 × face
width) and no noise on the synthetic face; so it is easier than the Celeb-DF-like swap, as
UADFV is easier than Celeb-DF for detectors trained on either. Square 128-pixel frames,
H.264 crf 23 (one quality, ``orig`` in the adapter). People are new: random streams are keyed
``[seed, 7001, 4, part, k]`` (the cross-dataset sets use codes 1–3); every capture's face was
screened with MTCNN (``cross_dataset._screen``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

UADFV_VERSION = 1  # bump when the content changes
SIZE = 128  # frame side (a multiple of 128: reproducible H.264, see cross_dataset.CrossScale)
# scale -> (videos per class, frames per video); the release has 49 / 49
UADFV_SCALES: dict[str, tuple[int, int]] = {"tiny": (4, 6), "mini": (16, 12), "small": (32, 16), "full": (49, 32)}
UADFV_SWAP = SwapStyle(skin_mix=0.8, downscale=3.5, blend_sigma=0.04, noise_gain=0.0, colour_match=0.0)
DS = "uadfv"


def write_uadfv_like(out: Path, scale: str, seed: int, progress: bool) -> dict[str, Any]:
    n, frames = UADFV_SCALES[scale]

    def person(k: int) -> Capture:
        return Capture(random_identity(_rng(seed, DS, 1, k)), random_motion(_rng(seed, DS, 2, k), frames), (3, k))

    caps = _screen(person, n, SIZE, seed, DS)
    with _Bar(progress, n, f"synthetic UADFV ({2 * n} videos)") as tick:
        for k, cap in enumerate(caps):
            real, noise = render_capture(cap, SIZE, seed, DS)
            write_video(out / "real" / f"{k:04d}.mp4", to_uint8(real), VIDEO_QUALITY)
            s = (k + 1 + int(_rng(seed, DS, 4, k).integers(0, n - 1))) % n
            fake = swap_onto(cap.identity, cap.motion, real, noise, caps[s].identity, UADFV_SWAP, _rng(seed, DS, 5, k))
            write_video(out / "fake" / f"{k:04d}_fake.mp4", fake, VIDEO_QUALITY)
            tick()
    return {"real": n, "fake": n}


STANDIN = StandIn(label="UADFV-like", version=UADFV_VERSION, scales=tuple(UADFV_SCALES), write=write_uadfv_like)
