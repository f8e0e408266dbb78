"""DFDC, the full Deepfake Detection Challenge set (``dfdc``): the official layout.

```
<root>/dfdc_train_part_{0..49}/metadata.json   {"abc.mp4": {"label": "FAKE"|"REAL", "original": "xyz.mp4", "split": "train"}, …}
<root>/dfdc_train_part_{0..49}/abc.mp4 …
<root>/test/videos/*.mp4
<root>/test/labels.csv                        filename,label   (1 = fake)
```

Labels: metadata "FAKE" → 1, "REAL" → 0 (case-insensitive); labels.csv is already 1 = fake.
Splits: every train part → train, ``test/`` → test; no validation split (DFDC is a test set
in dfbench's protocols). The train parts are optional (the public test set alone is what
cross-dataset evaluation needs); ``test/labels.csv`` is required when ``test/`` exists.
Method: ``real`` / ``fake`` (DFDC does not name the method per video); a fake's
``target_id`` is its ``original`` (the real video it was made from). Names are the file
stems, which DFDC keeps unique. Quality: ``orig``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.archives import Findings, ScannedAdapter, load_json
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    CheckReport,
    make_video_id,
    register_dataset,
    validate_index,
)

QUALITY = "orig"
PART = re.compile(r"^dfdc_train_part_(\d+)$")
LABELS = {"fake": 1, "real": 0}
METHODS = {0: "real", 1: "fake"}


@register_dataset
class DFDC(ScannedAdapter):
    """DFDC: 50 train parts with metadata.json, and the public test set with labels.csv."""

    name: ClassVar[str] = "dfdc"
    description: ClassVar[str] = "DFDC full (dfdc_train_part_*/metadata.json + test/labels.csv)"
    real_methods: ClassVar[tuple[str, ...]] = ("real",)
    fake_methods: ClassVar[tuple[str, ...] | None] = ("fake",)
    qualities: ClassVar[tuple[str, ...]] = (QUALITY,)
    frames_are_crops: ClassVar[bool] = False
    embedded_subdir: ClassVar[str | None] = None
    default_dirname: ClassVar[str] = "DFDC"
    official_parts: ClassVar[int] = 50
    official_test_videos: ClassVar[int] = 5000

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        root = Path(root)
        if (root / "test" / "labels.csv").is_file():
            return True
        return root.is_dir() and any(p.is_dir() and PART.match(p.name) for p in root.iterdir())

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        n_test = int((index["split"] == "test").sum()) if not index.empty else 0
        if n_test and n_test != self.official_test_videos:
            report.problems.append(f"test/ yields {n_test} videos; the official public test set has {self.official_test_videos}.")

    def _parts(self) -> list[str]:
        found = [p.name for p in self.root.iterdir() if p.is_dir() and PART.match(p.name)]
        return sorted(found, key=lambda n: int(PART.match(n).group(1)))

    def _scan(self, findings: Findings) -> pd.DataFrame:
        rows: list[dict] = []
        parts = self._parts()
        if len(parts) != self.official_parts:
            findings.note(f"{len(parts)} of the {self.official_parts} dfdc_train_part_* folders are present.")
        for part in parts:
            rows += self._train_part(part, findings)
        has_test = (self.root / "test").is_dir()
        if has_test:
            rows += self._test(findings)
        if not parts and not has_test:
            findings.problem(
                DatasetError(f"{self.root} holds neither dfdc_train_part_*/ folders nor test/; it is not a DFDC root.")
            )
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        return validate_index(index, f"{self.name} at {self.root}")

    def _row(self, split: str, path: str, stem: str, label: int, target: str) -> dict:
        return {
            "dataset": self.name,
            "split": split,
            "video_id": make_video_id(self.name, METHODS[label], QUALITY, stem),
            "path": path,
            "label": label,
            "method": METHODS[label],
            "quality": QUALITY,
            "target_id": target,
            "source_id": stem if label == 0 else "",
            "mask_path": "",
        }

    def _train_part(self, part: str, findings: Findings) -> list[dict]:
        meta_path = self.root / part / "metadata.json"
        try:
            if meta_path.exists():
                meta_path = self.resolve(f"{part}/metadata.json")  # a link out of the root is refused
            meta = load_json(meta_path)
        except DatasetError as exc:
            findings.reject(f"{part}/metadata.json", exc)
            return []
        if not isinstance(meta, dict):
            findings.reject(f"{part}/metadata.json", DatasetError(f"{meta_path} must hold an object mapping file names to entries."))
            return []
        rows = []
        for filename in sorted(meta):
            entry = meta[filename]
            where = f"{meta_path} entry {filename!r}"
            entry_name = f"{part}/metadata.json entry {filename!r}"
            try:
                path = self.resolve(f"{part}/{filename}")
            except UnsafePathError as exc:
                findings.reject(entry_name, UnsafePathError(f"{where} points outside the dataset root ({exc})"))
                continue
            if "/" in filename or not filename.lower().endswith(".mp4"):
                findings.reject(entry_name, DatasetError(f"{where} is not a bare '<name>.mp4' in {part}/."))
                continue
            label = LABELS.get(str(entry.get("label", "")).lower()) if isinstance(entry, dict) else None
            if label is None:
                findings.reject(entry_name, DatasetError(f"{where} has no label 'FAKE' or 'REAL'."))
                continue
            if entry.get("split", "train") != "train":
                findings.note(f"{where} says split {entry.get('split')!r}; files in train parts are indexed as train.")
            if not path.is_file():
                findings.reject(entry_name, DatasetError(f"{where} names a video that does not exist in {self.root / part}."))
                continue
            stem = filename[: -len(".mp4")]
            original = entry.get("original") or ""
            target = str(original)[: -len(".mp4")] if str(original).lower().endswith(".mp4") else ""
            rows.append(self._row("train", str(path), stem, label, target if label == 1 else stem))
        return rows

    def _test(self, findings: Findings) -> list[dict]:
        labels_path = self.root / "test" / "labels.csv"
        if not labels_path.is_file():
            findings.problem(DatasetError(f"{labels_path} is missing; the DFDC test labels come from it."))
            return []
        try:
            labels_path = self.resolve("test/labels.csv")
        except UnsafePathError as exc:
            findings.problem(exc)
            return []
        rows = []
        with labels_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"filename", "label"} <= set(reader.fieldnames):
                findings.problem(DatasetError(f"{labels_path} must have the header 'filename,label'."))
                return []
            for lineno, rec in enumerate(reader, start=2):
                filename, raw = (rec.get("filename") or "").strip(), (rec.get("label") or "").strip()
                where = f"{labels_path} line {lineno}"
                entry_name = f"test/labels.csv line {lineno}"
                try:
                    path = self.resolve(f"test/videos/{filename}")
                except UnsafePathError as exc:
                    findings.reject(entry_name, UnsafePathError(f"{where} points outside the dataset root ({exc})"))
                    continue
                if "/" in filename or not filename.lower().endswith(".mp4"):
                    findings.reject(entry_name, DatasetError(f"{where} names {filename!r}, not a bare '<name>.mp4'."))
                    continue
                try:
                    value = float(raw)
                except ValueError:
                    value = -1.0
                if value not in (0.0, 1.0):
                    findings.reject(entry_name, DatasetError(f"{where} has label {raw!r}; expected 1 (fake) or 0 (real)."))
                    continue
                if not path.is_file():
                    findings.reject(entry_name, DatasetError(f"{where} names {filename!r}, which does not exist in {path.parent}."))
                    continue
                stem = filename[: -len(".mp4")]
                # the test labels do not name a fake's original video
                rows.append(self._row("test", str(path), stem, int(value), stem if value == 0.0 else ""))
        return rows
