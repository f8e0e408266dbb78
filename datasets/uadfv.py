"""UADFV (``uadfv``, Yang, Li & Lyu, ICASSP 2019): the layout of the public release.

```
<root>/real/<n>.mp4          49 real videos (e.g. 0000.mp4)
<root>/fake/<n>_fake.mp4     49 fakes: the DeepFake face swap of real video <n>
```

Where the layout comes from: DeepfakeBench's ``preprocessing/rearrange.py`` (UADFV branch)
reads ``UADFV/real/`` and ``UADFV/fake/`` and names fakes ``<video>_fake``; its README shows
the same tree. Another public loader describes a repackaged tree
(``original_content/real/videos/<n>.mp4``, ``manipulated_content/fake/videos/<n>_fake.mp4``);
dfbench reads the release's two folders (move the videos up for that variant).

Labels: ``real/`` → 0, ``fake/`` → 1. Splits: UADFV has no official split (49 real / 49 fake
"without training and testing split", big_arts Sec. 4.1), so every video is ``test``. Method:
the folder (``real`` / ``fake``). Quality: ``orig`` (the videos as distributed). A fake's
``target_id`` is its real video ``<n>`` (face boxes are detected on it and reused); the source
identity is not recorded by the release. Every file is confined to the root: a link that
leads out of it is refused and left out (``adapter.rejected``), as is a fake not named
``<n>_fake.mp4``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.archives import Findings, ScannedAdapter, count_table
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    CheckReport,
    make_video_id,
    register_dataset,
    validate_index,
)

QUALITY = "orig"
REAL_DIR = "real"
FAKE_DIR = "fake"
FAKE_SUFFIX = "_fake"
VIDEO_SUFFIX = ".mp4"


@register_dataset
class UADFV(ScannedAdapter):
    """UADFV: 49 real and 49 DeepFake videos, no official split (every video is test)."""

    name: ClassVar[str] = "uadfv"
    description: ClassVar[str] = "UADFV (real/<n>.mp4, fake/<n>_fake.mp4; all test)"
    real_methods: ClassVar[tuple[str, ...]] = (REAL_DIR,)
    fake_methods: ClassVar[tuple[str, ...] | None] = (FAKE_DIR,)
    qualities: ClassVar[tuple[str, ...]] = (QUALITY,)
    frames_are_crops: ClassVar[bool] = False
    embedded_subdir: ClassVar[str | None] = "uadfv"
    embedded_generator: ClassVar[str | None] = "dfbench.datasets.synth.uadfv:STANDIN"
    default_dirname: ClassVar[str] = "UADFV"
    official_real: ClassVar[int] = 49
    official_fake: ClassVar[int] = 49

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        root = Path(root)
        fake = root / FAKE_DIR
        return (root / REAL_DIR).is_dir() and fake.is_dir() and any(fake.glob(f"*{FAKE_SUFFIX}{VIDEO_SUFFIX}"))

    def _scan(self, findings: Findings) -> pd.DataFrame:
        rows = []
        for folder, label in ((REAL_DIR, 0), (FAKE_DIR, 1)):
            directory = self.root / folder
            if not directory.is_dir():
                findings.problem(DatasetError(f"Folder {directory} is missing; the UADFV release has {REAL_DIR}/ and {FAKE_DIR}/."))
                continue
            for file in sorted(directory.iterdir()):
                if file.suffix.lower() != VIDEO_SUFFIX:
                    continue
                rel = f"{folder}/{file.name}"
                try:
                    path = self.resolve(rel)
                except UnsafePathError as exc:
                    findings.reject(rel, exc)
                    continue
                stem = file.name[: -len(VIDEO_SUFFIX)]
                if label == 1 and not (stem.endswith(FAKE_SUFFIX) and len(stem) > len(FAKE_SUFFIX)):
                    findings.reject(rel, DatasetError(f"{rel} is not named <video>{FAKE_SUFFIX}{VIDEO_SUFFIX}: its real video is unknown."))
                    continue
                target = stem[: -len(FAKE_SUFFIX)] if label == 1 else stem
                rows.append(
                    {
                        "dataset": self.name,
                        "split": "test",
                        "video_id": make_video_id(self.name, folder, QUALITY, stem),
                        "path": str(path),
                        "label": label,
                        "method": folder,
                        "quality": QUALITY,
                        "target_id": target,
                        "source_id": stem if label == 0 else "",
                        "mask_path": "",
                    }
                )
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        return validate_index(index, f"{self.name} at {self.root}")

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        report.counts = count_table(index, {("test", REAL_DIR): self.official_real, ("test", FAKE_DIR): self.official_fake})
        real, fake = int((index["label"] == 0).sum()), int((index["label"] == 1).sum())
        if real != self.official_real:
            report.problems.append(f"{real} real videos found; the official release has {self.official_real}.")
        if fake != self.official_fake:
            report.problems.append(f"{fake} fake videos found; the official release has {self.official_fake}.")
        reals = set(index.loc[index["label"] == 0, "target_id"])
        orphans = sorted(set(index.loc[index["label"] == 1, "target_id"]) - reals)
        if orphans:
            report.notes.append(
                f"{len(orphans)} fake(s) without their real video (e.g. {orphans[0]}{FAKE_SUFFIX}{VIDEO_SUFFIX}); "
                f"their face boxes are detected on the fake itself."
            )
