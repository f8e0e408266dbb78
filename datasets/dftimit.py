"""DF-TIMIT (``dftimit``): DeepfakeTIMIT's fakes (Korshunov & Marcel 2018) and their VidTIMIT reals.

```
<root>/DeepfakeTIMIT/lower_quality/<subject>/<sentence>-video-<source>.avi    LQ: 64×64 faceswap-GAN
<root>/DeepfakeTIMIT/higher_quality/<subject>/<sentence>-video-<source>.avi   HQ: 128×128
<root>/VidTIMIT/<subject>/video/<sentence>/<frame number>                      reals: JPEG frames, no extension
```

Where the layout comes from: the Idiap DeepfakeTIMIT release (32 VidTIMIT subjects in 16 pairs
swapped both ways, 10 videos each, 320 per quality: folders ``lower_quality`` /
``higher_quality``, files such as ``fadg0/sa1-video-fram1.avi``, as public loaders and
analysis scripts open them) and the VidTIMIT release, which stores each recording as a folder
of numbered JPEG files without extension (``fadg0/video/sa1/001`` …; public loaders add
``.jpg`` before reading them). A fake lies in the folder of the subject whose recording it
re-renders (the *target*: ``fadg0/sa1`` is a VidTIMIT sentence of fadg0) and names the subject
whose face was swapped in (the *source*, ``fram1``).

Index rows. Fakes: method ``DeepfakeTIMIT``, quality ``LQ`` or ``HQ``, name
``<subject>/<sentence>-video-<source>``, ``target_id`` = ``<subject>/<sentence>`` (its real),
``source_id`` = ``<source>``. Reals: method ``VidTIMIT``, a frame folder read as a video
(``dfbench.benchmark.preprocess.video``): the ten sentence recordings of each subject that
DeepfakeTIMIT holds (the head-rotation sequences ``head``, ``head2``, ``head3`` are not
sentences and have no fakes). DF-TIMIT-LQ and -HQ are two test sets of 320 real and 320 fake
videos each (big_arts Sec. 4.1) that share their reals; the reals have one quality, so each is
listed once *per quality* (``dftimit/VidTIMIT/LQ/fadg0/sa1`` and ``…/HQ/…``, the same folder):
a protocol selects one set with ``qualities: [LQ]`` and gets its 320 + 320, exactly the paper's
set, and the crop cache stores the shared folder once (it is keyed by content). Select both
qualities at once and every real counts twice. Split: ``test`` (no official split).

Confinement: every folder is resolved inside the root (a link leading out is refused and the
entry left out); a frame that is a symbolic link refuses its recording.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.benchmark.preprocess.video import VideoReadError, frame_files
from dfbench.datasets.archives import Findings, ScannedAdapter
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    CheckReport,
    make_video_id,
    register_dataset,
    validate_index,
)

FAKE_ROOT = "DeepfakeTIMIT"
REAL_ROOT = "VidTIMIT"
FAKE_METHOD = "DeepfakeTIMIT"
REAL_METHOD = "VidTIMIT"
QUALITY_DIRS: dict[str, str] = {"higher_quality": "HQ", "lower_quality": "LQ"}  # best first
NOT_SENTENCES = re.compile(r"^head\d*$")  # VidTIMIT's head-rotation sequences
_FAKE_NAME = re.compile(r"^(?P<sentence>[^-/]+)-video-(?P<source>[^-/]+)\.avi$", re.IGNORECASE)


@register_dataset
class DFTIMIT(ScannedAdapter):
    """DF-TIMIT LQ / HQ: 320 DeepfakeTIMIT fakes per quality and their 320 VidTIMIT reals."""

    name: ClassVar[str] = "dftimit"
    description: ClassVar[str] = "DF-TIMIT (DeepfakeTIMIT/{lower,higher}_quality fakes LQ/HQ + VidTIMIT frame-folder reals; all test)"
    real_methods: ClassVar[tuple[str, ...]] = (REAL_METHOD,)
    fake_methods: ClassVar[tuple[str, ...] | None] = (FAKE_METHOD,)
    qualities: ClassVar[tuple[str, ...]] = tuple(QUALITY_DIRS.values())
    frames_are_crops: ClassVar[bool] = False
    embedded_subdir: ClassVar[str | None] = "dftimit"
    embedded_generator: ClassVar[str | None] = "dfbench.datasets.synth.dftimit:STANDIN"
    default_dirname: ClassVar[str] = "DF-TIMIT"
    official_per_quality: ClassVar[int] = 320  # real and fake videos in each of LQ and HQ
    official_subjects: ClassVar[int] = 32

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        root = Path(root)
        return (root / FAKE_ROOT).is_dir() and (root / REAL_ROOT).is_dir()

    def _scan(self, findings: Findings) -> pd.DataFrame:
        fakes_root = self.root / FAKE_ROOT
        reals_root = self.root / REAL_ROOT
        for folder in (fakes_root, reals_root):
            if not folder.is_dir():
                findings.problem(DatasetError(f"Folder {folder} is missing; DF-TIMIT needs {FAKE_ROOT}/ and {REAL_ROOT}/ side by side."))
        present = [d for d in QUALITY_DIRS if (fakes_root / d).is_dir()]
        if fakes_root.is_dir() and not present:
            findings.problem(DatasetError(f"Folder {fakes_root} holds neither {' nor '.join(QUALITY_DIRS)}/."))
        for d in QUALITY_DIRS:
            if fakes_root.is_dir() and d not in present:
                findings.note(f"{fakes_root / d} is missing: DF-TIMIT-{QUALITY_DIRS[d]} is not indexed.")
        rows: list[dict] = []
        subjects: set[str] = set()
        for d in present:
            quality = QUALITY_DIRS[d]
            for subject_dir in sorted(p for p in (fakes_root / d).iterdir() if p.is_dir()):
                subjects.add(subject_dir.name)
                for file in sorted(subject_dir.iterdir()):
                    if file.suffix.lower() != ".avi":
                        continue
                    rel = f"{FAKE_ROOT}/{d}/{subject_dir.name}/{file.name}"
                    m = _FAKE_NAME.match(file.name)
                    if m is None:
                        findings.reject(rel, DatasetError(f"{rel} is not named <sentence>-video-<source subject>.avi."))
                        continue
                    try:
                        path = self.resolve(rel)
                    except UnsafePathError as exc:
                        findings.reject(rel, exc)
                        continue
                    name = f"{subject_dir.name}/{file.name[: -len('.avi')]}"
                    rows.append(self._row(FAKE_METHOD, quality, name, path, 1, f"{subject_dir.name}/{m['sentence']}", m["source"]))
        if reals_root.is_dir():
            for subject in sorted(subjects):
                rows += self._reals(subject, [QUALITY_DIRS[d] for d in present], findings)
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        return validate_index(index, f"{self.name} at {self.root}")

    def _reals(self, subject: str, qualities: list[str], findings: Findings) -> list[dict]:
        """The subject's sentence recordings, one row per DeepfakeTIMIT quality present."""
        video_rel = f"{REAL_ROOT}/{subject}/video"
        if not (self.root / video_rel).is_dir():
            findings.reject(video_rel, DatasetError(f"{self.root / video_rel} is missing: the real videos of DeepfakeTIMIT subject {subject} are not indexed."))
            return []
        rows = []
        for sentence_dir in sorted(p for p in (self.root / video_rel).iterdir() if p.is_dir() or p.is_symlink()):
            if NOT_SENTENCES.match(sentence_dir.name) or sentence_dir.name.startswith("."):
                continue
            rel = f"{video_rel}/{sentence_dir.name}"
            try:
                path = self.resolve(rel)
                frame_files(path)  # an empty folder or a linked frame refuses the recording
            except UnsafePathError as exc:
                findings.reject(rel, exc)
                continue
            except VideoReadError as exc:
                findings.reject(rel, DatasetError(f"{rel}: {exc}."))
                continue
            name = f"{subject}/{sentence_dir.name}"
            rows += [self._row(REAL_METHOD, q, name, path, 0, name, subject) for q in qualities]
        return rows

    def _row(self, method: str, quality: str, name: str, path: Path, label: int, target: str, source: str) -> dict:
        return {
            "dataset": self.name,
            "split": "test",
            "video_id": make_video_id(self.name, method, quality, name),
            "path": str(path),
            "label": label,
            "method": method,
            "quality": quality,
            "target_id": target,
            "source_id": source,
            "mask_path": "",
        }

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        # one row per (split, method, quality, label): the LQ and HQ sets side by side, each
        # with its official count (the shared reals appear under both qualities)
        if not index.empty:
            table = index.groupby(["split", "method", "quality", "label"]).size().reset_index(name="videos")
            table["official"] = self.official_per_quality
            report.counts = table
        for quality in self.qualities:
            part = index[index["quality"] == quality]
            if part.empty:
                continue
            real, fake = int((part["label"] == 0).sum()), int((part["label"] == 1).sum())
            for what, found in (("real", real), ("fake", fake)):
                if found != self.official_per_quality:
                    report.problems.append(
                        f"DF-TIMIT-{quality} has {found} {what} videos; the official set has {self.official_per_quality}."
                    )
        fakes = index[index["label"] == 1]
        reals = set(index.loc[index["label"] == 0, "target_id"])
        orphans = sorted(set(fakes["target_id"]) - reals)
        if orphans:
            report.notes.append(
                f"{len(orphans)} fake target(s) without a VidTIMIT recording (e.g. {REAL_ROOT}/{orphans[0].replace('/', '/video/')}); "
                f"their face boxes are detected on the fakes."
            )
        report.notes.append("DF-TIMIT-LQ and -HQ share their VidTIMIT reals: each real is listed under both qualities.")
