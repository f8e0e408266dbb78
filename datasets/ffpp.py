"""FaceForensics++ (incl. DeepFakeDetection and FaceShifter) in its official download layout.

::

    <root>/original_sequences/youtube/<q>/videos/000.mp4                     real
    <root>/original_sequences/actors/<q>/videos/<actor>__<scene>.mp4         real (DFD)
    <root>/manipulated_sequences/<method>/<q>/videos/<target>_<source>.mp4   fake
    <root>/manipulated_sequences/DeepFakeDetection/<q>/videos/<t>_<s>__<scene>__<id>.mp4
    <root>/manipulated_sequences/<method>/masks/videos/<name>.mp4            optional masks
    <root>/splits/{train,val,test}.json  (or <root>/{train,val,test}.json)   lists of pairs

A pair ``[a, b]`` puts the fakes ``a_b`` and ``b_a`` and the reals ``a`` and ``b`` in its split.
DeepFakeDetection has no official split: its fakes and the ``actors`` reals are all "test".

Ids: ``071_054`` → target 071 (the video whose face is replaced), source 054; a real's
target and source are its own name. A DFD fake ``01_02__scene__id`` has target
``01__scene`` and source ``02__scene``: the names of the actors' real videos, so the generic
reference lookup (``reference_video_ids``) finds the real a DFD fake was made from.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    SPLITS,
    CheckReport,
    DatasetAdapter,
    make_video_id,
    register_dataset,
    validate_index,
)

FAKE_METHODS: tuple[str, ...] = (
    "Deepfakes",
    "Face2Face",
    "FaceSwap",
    "NeuralTextures",
    "FaceShifter",
    "DeepFakeDetection",
)
# methods without an official split: every video is a test video
UNSPLIT_METHODS: tuple[str, ...] = ("actors", "DeepFakeDetection")
# official sizes (per quality), compared with when the split files are the official ones
OFFICIAL_PAIRS = {"train": 360, "val": 70, "test": 70}
OFFICIAL_VIDEOS = {"youtube": 1000, "Deepfakes": 1000, "Face2Face": 1000, "FaceSwap": 1000,
                   "NeuralTextures": 1000, "FaceShifter": 1000, "actors": 363, "DeepFakeDetection": 3068}

_PAIR_NAME = re.compile(r"^([^_]+)_([^_]+)$")
_DFD_NAME = re.compile(r"^([^_]+)_([^_]+)__(.+)__([^_]+)$")
_ACTOR_NAME = re.compile(r"^([^_]+)__(.+)$")


def _ids(method: str, name: str) -> tuple[str, str] | None:
    """(target_id, source_id) from a file stem, or None when the stem has the wrong form."""
    if method == "youtube":
        return (name, name) if "_" not in name else None
    if method == "actors":
        return (name, name) if _ACTOR_NAME.match(name) else None
    if method == "DeepFakeDetection":
        m = _DFD_NAME.match(name)
        return (f"{m[1]}__{m[3]}", f"{m[2]}__{m[3]}") if m else None
    m = _PAIR_NAME.match(name)
    return (m[1], m[2]) if m else None


@register_dataset
class FaceForensicsPP(DatasetAdapter):
    name = "ffpp"
    description = "FaceForensics++ (youtube reals; DF, F2F, FS, NT, FaceShifter; DFD with actors), raw/c23/c40"
    real_methods = ("youtube", "actors")
    fake_methods = FAKE_METHODS
    qualities = ("raw", "c23", "c40")
    embedded_subdir = "ffpp"
    default_dirname: ClassVar[str] = "FaceForensics++"

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        """Whether ``root`` itself is an FF++ root (holds the official top-level folders)."""
        root = Path(root)
        return (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir()

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.warnings: list[str] = []  # what build_index ignored (unknown folders, odd names, no split)

    # -- layout scan -----------------------------------------------------------------
    def _scan(self) -> tuple[list[dict[str, str]], list[str], list[tuple[Path, str]]]:
        """Every video file as {method, quality, name, path, mask_path}, the unknown folders /
        unexpected names found on the way (as messages), and the files refused because they
        resolve outside the root (path inside the root, reason)."""
        found: list[dict[str, str]] = []
        unknown: list[str] = []
        refused: list[tuple[Path, str]] = []
        for group, known in (("original_sequences", self.real_methods), ("manipulated_sequences", FAKE_METHODS)):
            base = self.root / group
            if not base.is_dir():
                continue
            for method_dir in sorted(p for p in base.iterdir() if p.is_dir()):
                method = method_dir.name
                if method not in known:
                    unknown.append(
                        f"Folder {method_dir} is not a known FF++ method ({', '.join(known)}); it is ignored."
                    )
                    continue
                masks = method_dir / "masks" / "videos"
                for q_dir in sorted(p for p in method_dir.iterdir() if p.is_dir()):
                    if q_dir.name == "masks":
                        continue
                    if q_dir.name not in self.qualities:
                        unknown.append(
                            f"Folder {q_dir} is not a known quality ({', '.join(self.qualities)}); it is ignored."
                        )
                        continue
                    for video in sorted((q_dir / "videos").glob("*.mp4")):
                        if _ids(method, video.stem) is None:
                            unknown.append(f"File {video} does not follow the {method} naming; it is ignored.")
                            continue
                        # confined: a link whose target leaves the root is refused before
                        # anything opens, hashes or decodes the target
                        rel = video.relative_to(self.root)
                        try:
                            path = self.resolve(rel)
                        except UnsafePathError as exc:
                            refused.append((rel, str(exc)))
                            continue
                        mask_path = ""
                        mask = masks / video.name
                        if mask.is_file():
                            try:
                                mask_path = str(self.resolve(mask.relative_to(self.root)))
                            except UnsafePathError as exc:
                                refused.append((mask.relative_to(self.root), f"{exc} The video is used without a mask."))
                        found.append(
                            {
                                "method": method,
                                "quality": q_dir.name,
                                "name": video.stem,
                                "path": str(path),
                                "mask_path": mask_path,
                            }
                        )
        return found, unknown, refused

    def split_file(self, split: str) -> Path | None:
        for candidate in (self.root / "splits" / f"{split}.json", self.root / f"{split}.json"):
            if candidate.is_file():
                return self.resolve(candidate.relative_to(self.root))  # a link out of the root is refused
        return None

    def load_splits(self) -> dict[str, list[tuple[str, str]]]:
        """The official pairs per split. Raises DatasetError for a missing or malformed file."""
        return {split: self.load_split(split) for split in SPLITS}

    def load_split(self, split: str) -> list[tuple[str, str]]:
        """One split file's pairs. Raises DatasetError when it is missing or malformed."""
        path = self.split_file(split)
        if path is None:
            raise DatasetError(
                f"FF++ split file {self.root / 'splits' / f'{split}.json'} is missing (also looked for "
                f"{self.root / f'{split}.json'}); copy the official splits/ folder from the FaceForensics "
                f"repository into the dataset root."
            )
        try:
            pairs = json.loads(path.read_text())
            return [(str(a), str(b)) for a, b in pairs]
        except (ValueError, TypeError) as exc:
            raise DatasetError(
                f"FF++ split file {path} is not a JSON list of [target, source] pairs ({exc}); "
                f"restore the official file."
            ) from exc

    @staticmethod
    def _split_of(splits: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
        """Video name (real ``a`` or fake ``a_b``) → split."""
        split_of: dict[str, str] = {}
        for split, pairs in splits.items():
            for a, b in pairs:
                for name in (a, b, f"{a}_{b}", f"{b}_{a}"):
                    previous = split_of.setdefault(name, split)
                    if previous != split:
                        raise DatasetError(
                            f"Video {name!r} is in both the {previous} and the {split} FF++ split files; "
                            f"the official splits are disjoint, restore them."
                        )
        return split_of

    # -- adapter API -----------------------------------------------------------------
    def build_index(self) -> pd.DataFrame:
        self.require_root()
        found, unknown, refused = self._scan()
        self.warnings = list(unknown)
        self.rejected = []
        for rel, reason in refused:
            self.reject(rel, reason)
        needs_split = any(v["method"] not in UNSPLIT_METHODS for v in found)
        split_of = self._split_of(self.load_splits()) if needs_split else {}
        rows = []
        no_split: list[str] = []
        for v in found:
            method, name = v["method"], v["name"]
            if method in UNSPLIT_METHODS:
                split = "test"
            elif name in split_of:
                split = split_of[name]
            else:
                no_split.append(f"{method}/{v['quality']}/{name}")
                continue
            target, source = _ids(method, name)  # type: ignore[misc]  # _scan kept only valid names
            rows.append(
                {
                    "dataset": self.name,
                    "split": split,
                    "video_id": make_video_id(self.name, method, v["quality"], name),
                    "path": v["path"],
                    "label": 0 if method in self.real_methods else 1,
                    "method": method,
                    "quality": v["quality"],
                    "target_id": target,
                    "source_id": source,
                    "mask_path": v["mask_path"],
                }
            )
        if no_split:
            self.warnings.append(
                f"{len(no_split)} videos under {self.root} are in no split file and are left out "
                f"(e.g. {', '.join(no_split[:3])})."
            )
        if not rows:
            raise DatasetError(
                f"No FF++ videos found under {self.root}; expected "
                f"original_sequences/youtube/<quality>/videos/*.mp4 (run `dfbench datasets check {self.root}`)."
            )
        if self.warnings:
            warnings.warn(" ".join(self.warnings), UserWarning, stacklevel=2)
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        index["label"] = index["label"].astype("int64")
        return validate_index(index, str(self.root))

    def check(self) -> CheckReport:
        report = CheckReport(dataset=self.name, root=self.root)
        if not self.root.is_dir():
            report.problems.append(f"Dataset root {self.root} does not exist.")
            return report
        found, unknown, refused = self._scan()
        report.problems.extend(unknown)
        report.problems.extend(reason for _, reason in refused)
        if not found:
            report.problems.append(
                f"No videos under {self.root}/original_sequences or {self.root}/manipulated_sequences."
            )
            return report
        # each split file on its own: a missing val.json still lets train and test be counted
        splits: dict[str, list[tuple[str, str]]] = {}
        for split in SPLITS:
            try:
                splits[split] = self.load_split(split)
            except DatasetError as exc:
                report.problems.append(str(exc))
        split_of: dict[str, str] = {}
        try:
            split_of = self._split_of(splits)
        except DatasetError as exc:
            report.problems.append(str(exc))
        frame = pd.DataFrame(found)
        frame["split"] = [
            "test" if m in UNSPLIT_METHODS else split_of.get(n, "none") for m, n in zip(frame["method"], frame["name"])
        ]
        report.counts = (
            frame.groupby(["method", "quality", "split"]).size().rename("videos").reset_index()
        )
        # qualities present for some method but not for another
        present = frame.groupby("method")["quality"].unique().to_dict()
        all_q = [q for q in self.qualities if q in set(frame["quality"])]
        for method, qs in sorted(present.items()):
            missing = [q for q in all_q if q not in set(qs)]
            if missing:
                report.problems.append(f"{method} lacks qualities {missing} that other methods have.")
        unsplit = frame[frame["split"] == "none"]
        if splits and len(unsplit):
            report.problems.append(
                f"{len(unsplit)} videos are in no split file (e.g. "
                f"{', '.join((unsplit['method'] + '/' + unsplit['name']).head(3))})."
            )
        if splits:
            self._check_pairs(frame, splits, report)
        if len(splits) == len(SPLITS):
            self._check_official(frame, splits, report)
        return report

    def _check_pairs(self, frame: pd.DataFrame, splits: dict[str, list[tuple[str, str]]], report: CheckReport) -> None:
        """Each split pair names reals a, b and fakes a_b, b_a: report those missing, per
        method and quality present on disk."""
        have = set(zip(frame["method"], frame["quality"], frame["name"]))
        for (method, quality), _ in frame.groupby(["method", "quality"]):
            if method in UNSPLIT_METHODS:
                continue
            wanted = []
            for pairs in splits.values():
                for a, b in pairs:
                    wanted += [a, b] if method in self.real_methods else [f"{a}_{b}", f"{b}_{a}"]
            missing = [n for n in wanted if (method, quality, n) not in have]
            if missing:
                report.problems.append(
                    f"{method}/{quality}: {len(missing)} videos named by the split files are missing "
                    f"(e.g. {', '.join(missing[:3])})."
                )

    def _check_official(self, frame: pd.DataFrame, splits: dict[str, list[tuple[str, str]]], report: CheckReport) -> None:
        sizes = {s: len(p) for s, p in splits.items()}
        if sizes != OFFICIAL_PAIRS:
            report.notes.append(
                f"Split files hold {sizes['train']}/{sizes['val']}/{sizes['test']} pairs, not the official "
                f"360/70/70: counts are not compared with the official ones."
            )
            return
        report.notes.append("Official split files found: counts compared with the official FF++ release.")
        for (method, quality), rows in frame.groupby(["method", "quality"]):
            expected = OFFICIAL_VIDEOS.get(method)
            if expected is not None and len(rows) != expected:
                report.problems.append(f"{method}/{quality} has {len(rows)} videos; the official release has {expected}.")
            if method in UNSPLIT_METHODS:
                continue
            per_split = rows["split"].value_counts().to_dict()
            for split, pairs in OFFICIAL_PAIRS.items():
                if per_split.get(split, 0) != 2 * pairs:
                    report.problems.append(
                        f"{method}/{quality} has {per_split.get(split, 0)} {split} videos; the official split has {2 * pairs}."
                    )
