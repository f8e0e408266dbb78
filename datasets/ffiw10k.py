"""FFIW10K ("Face Forensics in the Wild", Zhou et al., CVPR 2021): the official layout.

```
<root>/source/{train,val}/<name>.mp4     real videos (the unmanipulated originals)
<root>/target/{train,val}/<name>.mp4     fake videos (some of the people in the scene swapped)
<root>/target_mask/{train,val}/…         manipulation masks (not read)
<root>/source/test/, <root>/target/test/ the test set: a separate download
                                         (FFIW10K-v1-release-test), unpacked into the same root
```

Where this comes from: the dataset's README (github.com/tfzhou/FFIW, "Dataset Structure":
``source``, ``target`` and ``target_mask``, each with ``train`` and ``val``); the evaluation
code of SBI (Shiohara & Yamasaki, CVPR 2022; github.com/mapooon/SelfBlendedImages,
``src/inference/datasets.py``), which reads ``FFIW10K-v1-release/source/val`` as real and
``target/val`` as fake and hard-codes 250 + 250 labels for them; and cross-dataset test
code that reads the test release as ``FFIW10K-v1-release-test/{source,target}/test/*.mp4``
(e.g. github.com/markobrodaric/HCSI-Net, ``test.py``). The test set's labels were given out
by the dataset's authors on request (github.com/yermandy/GenD issue 1). SBI's own arrangement
puts the files one level deeper (``source/val/videos/*.mp4``): a ``videos/`` folder inside a
split folder is read too.

Labels: ``source`` = real (0), ``target`` = fake (1). Splits: the folder's (train, val,
test). Quality: one, ``orig`` (the videos as distributed); QAD's c23/c40 are made by
re-encoding (``dfbench.benchmark.preprocess.reencode``). The release does not say which
source video a fake was made from, so fakes name no target (their face boxes are detected
on the fake itself). FFIW is multi-person (about three faces per frame, a subset swapped);
dfbench crops the one face MTCNN rates most likely per frame, so a fake's crop may show a
person who was not swapped (video-level labels, as the release gives).
Official counts known: val 250 real / 250 fake (SBI's evaluation code); the train and test
counts are not stated in a source we could read, so ``check`` reports what it finds.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.archives import Findings, ScannedAdapter, count_table
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    SPLITS,
    CheckReport,
    make_video_id,
    register_dataset,
    validate_index,
)

QUALITY = "orig"
REAL_DIR = "source"
FAKE_DIR = "target"
NESTED = "videos"  # SBI's arrangement: <split>/videos/*.mp4
TEST_RELEASE = "FFIW10K-v1-release-test"


class FFIW10K(ScannedAdapter):
    """FFIW10K v1: ``source/`` (real) and ``target/`` (fake) videos per split folder."""

    name: ClassVar[str] = "ffiw10k"
    description: ClassVar[str] = "FFIW10K (source/ = real, target/ = fake; split folders train, val, test)"
    real_methods: ClassVar[tuple[str, ...]] = (REAL_DIR,)
    fake_methods: ClassVar[tuple[str, ...] | None] = (FAKE_DIR,)
    qualities: ClassVar[tuple[str, ...]] = (QUALITY,)
    frames_are_crops: ClassVar[bool] = False
    embedded_subdir: ClassVar[str | None] = "ffiw10k"
    embedded_generator: ClassVar[str | None] = "dfbench.datasets.synth.ffiw:STANDIN"
    default_dirname: ClassVar[str] = "FFIW10K-v1-release"
    # (split, folder) -> videos in the official release, where a source states it
    official_counts: ClassVar[dict[tuple[str, str], int]] = {("val", REAL_DIR): 250, ("val", FAKE_DIR): 250}

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        root = Path(root)
        return (root / REAL_DIR).is_dir() and (root / FAKE_DIR).is_dir()

    def _scan(self, findings: Findings) -> pd.DataFrame:
        rows: list[dict] = []
        for folder, label in ((REAL_DIR, 0), (FAKE_DIR, 1)):
            top = self.root / folder
            if not top.is_dir():
                findings.problem(
                    DatasetError(f"Folder {top} is missing; the official FFIW10K layout has {folder}/<split>/*.mp4.")
                )
                continue
            seen: dict[str, str] = {}  # name -> the split it was first found in
            for split in SPLITS:
                for rel in self._videos(folder, split, findings):
                    name = Path(rel).stem
                    if name in seen:
                        findings.reject(
                            rel,
                            DatasetError(f"{rel} has the same name as a video of {folder}/{seen[name]}/; names must be unique."),
                        )
                        continue
                    try:
                        path = self.resolve(rel)  # a link leading out of the root is refused
                    except UnsafePathError as exc:
                        findings.reject(rel, exc)
                        continue
                    seen[name] = split
                    rows.append(
                        {
                            "dataset": self.name,
                            "split": split,
                            "video_id": make_video_id(self.name, folder, QUALITY, name),
                            "path": str(path),
                            "label": label,
                            "method": folder,
                            "quality": QUALITY,
                            # a real is its own target; the release does not name a fake's source video
                            "target_id": name if label == 0 else "",
                            "source_id": name if label == 0 else "",
                            "mask_path": "",
                        }
                    )
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        if index.empty and not findings.problems:
            findings.problem(
                DatasetError(
                    f"No .mp4 video under {self.root}/{{{REAL_DIR},{FAKE_DIR}}}/{{train,val,test}}/; "
                    f"pass the folder that holds the FFIW10K release."
                )
            )
        return validate_index(index, f"{self.name} at {self.root}")

    def _videos(self, folder: str, split: str, findings: Findings) -> list[str]:
        """Paths (relative to the root) of the .mp4 files of one split folder, its ``videos/``
        subfolder included; a missing split folder is noted (the test set is a separate download)."""
        base = self.root / folder / split
        if not base.is_dir():
            where = f" (the test set is a separate download, {TEST_RELEASE}: unpack its {folder}/test/ here)" if split == "test" else ""
            findings.note(f"{folder}/{split}/ is missing; no {split} videos of {folder}{where}.")
            return []
        out: list[str] = []
        for sub in (f"{folder}/{split}", f"{folder}/{split}/{NESTED}"):
            here = self.root / sub
            if not here.is_dir():
                continue
            out += [f"{sub}/{f.name}" for f in sorted(here.iterdir()) if f.suffix.lower() == ".mp4"]
        return out

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        report.counts = count_table(index, self.official_counts)
        found = index.groupby(["split", "method"]).size().to_dict() if not index.empty else {}
        for (split, folder), expected in self.official_counts.items():
            n = int(found.get((split, folder), 0))
            if n != expected:
                report.problems.append(f"{folder}/{split}/ holds {n} videos; the official release has {expected}.")
        for split in SPLITS:
            for folder in (REAL_DIR, FAKE_DIR):
                if (split, folder) not in self.official_counts and (split, folder) in found:
                    report.notes.append(
                        f"{folder}/{split}/ holds {found[(split, folder)]} videos (no official count is documented)."
                    )


register_dataset(FFIW10K)
