"""Celeb-DF v2 (``celebdf``) and v1 (``celebdf_v1``): the official layout.

```
<root>/Celeb-real/id0_0000.mp4 …         real (celebrity interviews)
<root>/YouTube-real/00000.mp4 …          real (extra YouTube clips)
<root>/Celeb-synthesis/id0_id1_0000.mp4  fake: identity id1 swapped onto real video id0_0000
<root>/List_of_testing_videos.txt        "<label> <subdir>/<name>.mp4", label 1 = REAL, 0 = FAKE
```

Labels: the list's 1 = real becomes dfbench's 0 (and 0 = fake → 1); a listed label that
contradicts its folder is an error. Splits: test = the listed videos; every other video is
train, except a deterministic identity-held-out validation split carved from train
(Celeb-DF has no official one): identities ``idK`` with K divisible by 10 (id0, id10, …,
id60) and YouTube clips whose number is divisible by 10. A fake follows its *target*
identity (the real video it is made from), so a real video and its fakes share a split.
Quality: one label, ``orig`` (the videos as distributed, MPEG-4 compressed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.archives import Findings, ScannedAdapter
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    CheckReport,
    make_video_id,
    register_dataset,
    validate_index,
)

QUALITY = "orig"
REAL_DIRS = ("Celeb-real", "YouTube-real")
FAKE_DIR = "Celeb-synthesis"
TEST_LIST = "List_of_testing_videos.txt"
VAL_EVERY = 10  # identity / clip numbers divisible by this go to the carved validation split

_REAL_NAME = re.compile(r"^id(?P<target>\d+)_(?P<clip>\d+)$")
_FAKE_NAME = re.compile(r"^id(?P<target>\d+)_id(?P<source>\d+)_(?P<clip>\d+)$")
_YOUTUBE_NAME = re.compile(r"^(?P<clip>\d+)$")


class CelebDF(ScannedAdapter):
    """Celeb-DF v2: 590 Celeb-real + 300 YouTube-real + 5639 Celeb-synthesis, 518 test videos."""

    name: ClassVar[str] = "celebdf"
    description: ClassVar[str] = "Celeb-DF v2 (List_of_testing_videos.txt: test; rest: train + identity-held-out val)"
    real_methods: ClassVar[tuple[str, ...]] = REAL_DIRS
    fake_methods: ClassVar[tuple[str, ...] | None] = (FAKE_DIR,)
    qualities: ClassVar[tuple[str, ...]] = (QUALITY,)
    frames_are_crops: ClassVar[bool] = False
    embedded_subdir: ClassVar[str | None] = "celebdf"
    default_dirname: ClassVar[str] = "Celeb-DF-v2"
    # official per-folder counts and the length of the test list
    official_counts: ClassVar[dict[str, int]] = {"Celeb-real": 590, "YouTube-real": 300, "Celeb-synthesis": 5639}
    official_test_videos: ClassVar[int | None] = 518

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        """``root`` holds the test list and the fake folder (v1 and v2 look alike: v2 wins)."""
        root = Path(root)
        return (root / TEST_LIST).is_file() and (root / FAKE_DIR).is_dir()

    # ------------------------------------------------------------------ scanning
    def _scan(self, findings: Findings) -> pd.DataFrame:
        on_disk: dict[str, str] = {}  # "<subdir>/<file>" -> absolute path
        for subdir in (*REAL_DIRS, FAKE_DIR):
            folder = self.root / subdir
            if not folder.is_dir():
                findings.problem(DatasetError(f"Folder {folder} is missing; the official Celeb-DF layout has {subdir}/."))
                continue
            for file in sorted(folder.iterdir()):
                if file.suffix.lower() != ".mp4":
                    continue
                rel = f"{subdir}/{file.name}"
                try:
                    on_disk[rel] = str(self.resolve(rel))
                except UnsafePathError as exc:
                    findings.reject(rel, exc)
        test, doubtful = self._read_test_list(on_disk, findings)
        rows = []
        for rel, path in on_disk.items():
            if rel in doubtful:
                continue  # its test-list line was rejected: neither test nor train is certain
            subdir, filename = rel.split("/", 1)
            stem = filename[: -len(".mp4")]
            row = self._row(subdir, stem, path, findings)
            if row is None:
                continue
            row["split"] = "test" if rel in test else self._train_or_val(subdir, stem)
            rows.append(row)
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        return validate_index(index, f"{self.name} at {self.root}")

    def _read_test_list(self, on_disk: dict[str, str], findings: Findings) -> tuple[set[str], set[str]]:
        """(videos listed as test, videos named by a rejected line). A bad line is skipped and
        recorded; the video it names (when it names one) is left out of every split, since
        whether it is a test video is then unknown."""
        path = self.root / TEST_LIST
        if not path.is_file():
            findings.problem(DatasetError(f"Test list {path} is missing; Celeb-DF's split comes from it."))
            return set(), set()
        try:
            path = self.resolve(TEST_LIST)
        except UnsafePathError as exc:
            findings.problem(exc)
            return set(), set()
        listed: set[str] = set()
        doubtful: set[str] = set()
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            entry = f"{TEST_LIST} line {lineno}"
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ("0", "1"):
                findings.reject(entry, DatasetError(f"{path} line {lineno} ({line.strip()!r}) is not '<0|1> <subdir>/<name>.mp4'."))
                if parts:
                    doubtful.add(parts[-1])
                continue
            label_real, rel = parts[0] == "1", parts[1]  # the list's 1 = REAL
            try:
                self.resolve(rel)
            except UnsafePathError as exc:
                findings.reject(entry, UnsafePathError(f"{path} line {lineno}: {exc}"))
                continue
            subdir = rel.split("/", 1)[0]
            if subdir not in (*REAL_DIRS, FAKE_DIR) or rel.count("/") != 1:
                findings.reject(entry, DatasetError(f"{path} line {lineno} names {rel!r}, which is not in {REAL_DIRS + (FAKE_DIR,)}."))
                continue
            if label_real != (subdir in REAL_DIRS):
                findings.reject(
                    entry,
                    DatasetError(
                        f"{path} line {lineno} labels {rel!r} as {'real' if label_real else 'fake'} (1 = real), "
                        f"which contradicts its folder {subdir}/."
                    ),
                )
                doubtful.add(rel)
                continue
            if rel not in on_disk:
                findings.reject(entry, DatasetError(f"{path} line {lineno} names {rel!r}, which does not exist under {self.root}."))
                continue
            if rel in listed:
                findings.reject(entry, DatasetError(f"{path} line {lineno} lists {rel!r} a second time."))
                continue
            listed.add(rel)
        return listed, doubtful - listed

    def _row(self, subdir: str, stem: str, path: str, findings: Findings) -> dict | None:
        if subdir == FAKE_DIR:
            m = _FAKE_NAME.match(stem)
            if m is None:
                findings.reject(
                    f"{FAKE_DIR}/{stem}.mp4",
                    DatasetError(f"{FAKE_DIR}/{stem}.mp4 is not named id<target>_id<source>_<clip>.mp4."),
                )
                return None
            # the real video this fake is made from is Celeb-real/id<target>_<clip>
            target_id, source_id, label = f"id{m['target']}_{m['clip']}", f"id{m['source']}", 1
        else:
            target_id, source_id, label = stem, stem, 0  # as FF++: a real is its own target and source
        return {
            "dataset": self.name,
            "split": "",
            "video_id": make_video_id(self.name, subdir, QUALITY, stem),
            "path": path,
            "label": label,
            "method": subdir,
            "quality": QUALITY,
            "target_id": target_id,
            "source_id": source_id,
            "mask_path": "",
        }

    @staticmethod
    def _train_or_val(subdir: str, stem: str) -> str:
        """Deterministic identity-held-out validation (Celeb-DF has no official val)."""
        pattern = {FAKE_DIR: _FAKE_NAME, "Celeb-real": _REAL_NAME, "YouTube-real": _YOUTUBE_NAME}[subdir]
        m = pattern.match(stem)
        if m is None:
            return "train"
        number = int(m["clip"]) if subdir == "YouTube-real" else int(m["target"])
        return "val" if number % VAL_EVERY == 0 else "train"

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        per_method = index.groupby("method").size().to_dict() if not index.empty else {}
        for method, expected in self.official_counts.items():
            found = int(per_method.get(method, 0))
            if found != expected:
                report.problems.append(f"{method}/ holds {found} videos; the official release has {expected}.")
        n_test = int((index["split"] == "test").sum()) if not index.empty else 0
        if self.official_test_videos is not None and n_test != self.official_test_videos:
            report.problems.append(f"{TEST_LIST} yields {n_test} test videos; the official list has {self.official_test_videos}.")


class CelebDFv1(CelebDF):
    """Celeb-DF v1: the same layout with 408 real and 795 fake videos."""

    name: ClassVar[str] = "celebdf_v1"
    description: ClassVar[str] = "Celeb-DF v1 (same layout as v2: 408 real / 795 fake)"
    default_dirname: ClassVar[str] = "Celeb-DF"
    embedded_subdir: ClassVar[str | None] = None
    official_counts: ClassVar[dict[str, int]] = {}
    official_test_videos: ClassVar[int | None] = None
    official_real: ClassVar[int] = 408
    official_fake: ClassVar[int] = 795

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        return False  # indistinguishable from v2 by layout: found under its default_dirname only

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        # v1's per-folder split of the 408 reals is not documented: compare the totals
        real = int((index["label"] == 0).sum()) if not index.empty else 0
        fake = int((index["label"] == 1).sum()) if not index.empty else 0
        if real != self.official_real:
            report.problems.append(f"{real} real videos found; the official v1 release has {self.official_real}.")
        if fake != self.official_fake:
            report.problems.append(f"{fake} fake videos found; the official v1 release has {self.official_fake}.")


register_dataset(CelebDF)
register_dataset(CelebDFv1)
