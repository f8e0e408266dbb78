"""WildDeepfake (``wdf``): face-crop sequences in tar shards, the official layout.

```
<root>/{real_train,real_test,fake_train,fake_test}/<n>.tar.gz
    members: ./<stem>/{real|fake}/<sequence_id>/<frame>.png      (already face crops)
```

The "video" of WildDeepfake is a face *sequence*: one index row per
(shard, stem, class, sequence_id). Its ``path`` is ``"<absolute shard path>::<stem>/<class>/<sequence_id>"``
(split on the last ``::``); ``read_sequence(path)`` streams the shard and returns the
sequence's frames in frame order. ``frames_are_crops = True``: preprocessing samples
frames from the sequence and skips face detection.

Labels: the folder's class (``real_*`` → 0, ``fake_*`` → 1); a member whose class folder
contradicts its shard's folder is an error. Splits: ``*_train`` → train, ``*_test`` → test;
no validation split (WildDeepfake has none and dfbench only tests on it). Method:
``real`` / ``fake``. Quality: ``orig``.

Safety: shards are streamed, never extracted, and every member is checked
(``dfbench.datasets.archives.safe_member_name``): a shard with an absolute or ``..`` member
name, a link, a device or a FIFO is refused with an ``UnsafePathError`` naming the shard and
the member. Regular files that are not ``<stem>/<class>/<seq>/<frame>.png`` are ignored
(and listed by ``check``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.benchmark.preprocess.video import frame_order, sample_indices
from dfbench.datasets.archives import Findings, ScannedAdapter, iter_tar_members
from dfbench.datasets.base import (
    INDEX_COLUMNS,
    CheckReport,
    confined_path,
    make_video_id,
    register_dataset,
    validate_index,
)

QUALITY = "orig"
SEPARATOR = "::"
FOLDERS = {"real_train": (0, "train"), "real_test": (0, "test"), "fake_train": (1, "train"), "fake_test": (1, "test")}
CLASSES = {0: "real", 1: "fake"}
SHARD_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_FRAME = re.compile(r"^(?P<stem>[^/]+)/(?P<cls>real|fake)/(?P<seq>[^/]+)/(?P<frame>[^/]+)\.png$", re.IGNORECASE)


def shard_stem(shard: Path) -> str:
    for suffix in SHARD_SUFFIXES:
        if shard.name.endswith(suffix):
            return shard.name[: -len(suffix)]
    return shard.stem


def split_sequence_path(path: str) -> tuple[Path, str]:
    """``"<shard>::<stem>/<class>/<seq>"`` → (shard path, sequence key)."""
    if SEPARATOR not in path:
        raise DatasetError(f"WildDeepfake path {path!r} is not '<shard.tar.gz>::<stem>/<class>/<sequence_id>'.")
    shard, key = path.rsplit(SEPARATOR, 1)
    if key.count("/") != 2 or any(not part or part in (".", "..") for part in key.split("/")):
        raise DatasetError(f"WildDeepfake path {path!r}: {key!r} is not '<stem>/<class>/<sequence_id>'.")
    return Path(shard), key


def list_sequences(shard: Path) -> tuple[dict[str, int], list[str]]:
    """``{"<stem>/<class>/<seq>": n_frames}`` of a shard, and the regular files that are not
    frames. Every member is safety-checked; nothing is decompressed into files."""
    sequences: dict[str, int] = {}
    ignored: list[str] = []
    for name, _ in iter_tar_members(shard):
        m = _FRAME.match(name)
        if m is None:
            ignored.append(name)
            continue
        key = f"{m['stem']}/{m['cls']}/{m['seq']}"
        sequences[key] = sequences.get(key, 0) + 1
    return sequences, ignored


def read_sequence(path: str, indices: Sequence[int] | None = None) -> list[np.ndarray]:
    """The frames (RGB uint8, H×W×3) of one sequence, in frame order (numeric frame names
    sort as numbers). ``indices`` picks positions in that order (default: all frames).

    The whole shard is streamed and every member checked, so a malicious member anywhere
    in the shard refuses the read, even outside the requested sequence.
    """
    shard, key = split_sequence_path(path)
    prefix = key + "/"
    frames: dict[str, bytes] = {}
    for name, data in iter_tar_members(shard, read=lambda n: n.startswith(prefix) and _FRAME.match(n) is not None):
        if data is not None:
            frames[name] = data
    if not frames:
        raise DatasetError(f"Archive {shard} holds no frames of sequence {key!r}.")
    names = sorted(frames, key=frame_order)
    if indices is None:
        chosen = names
    else:
        bad = [i for i in indices if not 0 <= int(i) < len(names)]
        if bad:
            raise DatasetError(f"Sequence {key!r} in {shard} has {len(names)} frames; indices {bad} are out of range.")
        chosen = [names[int(i)] for i in indices]
    out = []
    for name in chosen:
        try:
            with Image.open(io.BytesIO(frames[name])) as img:
                out.append(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"Archive {shard} member {name!r} is not a readable PNG ({exc}).") from exc
    return out


def sample_sequence(path: str, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` evenly spaced frames of a sequence (the video sampler's ``linspace`` rule:
    first and last included, a shorter sequence gives each frame once) and their positions."""
    shard, key = split_sequence_path(path)
    n = list_sequences(shard)[0].get(key, 0)
    if n == 0:
        raise DatasetError(f"Archive {shard} holds no frames of sequence {key!r}.")
    indices = sample_indices(n, count)
    return read_sequence(path, indices.tolist()), indices


@register_dataset
class WildDeepfake(ScannedAdapter):
    """WildDeepfake: 3805 real and 3509 fake face sequences in tar shards (train/test)."""

    name: ClassVar[str] = "wdf"
    description: ClassVar[str] = "WildDeepfake ({real,fake}_{train,test}/*.tar.gz face-crop sequences)"
    real_methods: ClassVar[tuple[str, ...]] = ("real",)
    fake_methods: ClassVar[tuple[str, ...] | None] = ("fake",)
    qualities: ClassVar[tuple[str, ...]] = (QUALITY,)
    frames_are_crops: ClassVar[bool] = True
    embedded_subdir: ClassVar[str | None] = "wdf"
    default_dirname: ClassVar[str] = "WildDeepfake"
    official_real: ClassVar[int] = 3805
    official_fake: ClassVar[int] = 3509

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        root = Path(root)
        return any((root / folder).is_dir() for folder in FOLDERS)

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        real, fake = int((index["label"] == 0).sum()), int((index["label"] == 1).sum())
        if real != self.official_real:
            report.problems.append(f"{real} real sequences found; the official release has {self.official_real}.")
        if fake != self.official_fake:
            report.problems.append(f"{fake} fake sequences found; the official release has {self.official_fake}.")

    def read_sequence(self, path: str, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        """``read_sequence`` for an index path, refusing a shard outside this dataset's root."""
        shard, _ = split_sequence_path(path)
        try:
            shard.resolve().relative_to(self.root.resolve())
        except ValueError as exc:
            raise UnsafePathError(f"WildDeepfake shard {shard} is outside the dataset root {self.root}.") from exc
        return read_sequence(path, indices)

    def _scan(self, findings: Findings) -> pd.DataFrame:
        rows = []
        for folder, (label, split) in FOLDERS.items():
            directory = self.root / folder
            if not directory.is_dir():
                findings.problem(DatasetError(f"Folder {directory} is missing; the official WildDeepfake layout has {folder}/."))
                continue
            shards = sorted(p for p in directory.iterdir() if p.name.endswith(SHARD_SUFFIXES))
            if not shards:
                findings.problem(DatasetError(f"Folder {directory} holds no .tar.gz shards."))
            for shard_file in shards:
                try:
                    shard = confined_path(self.root, f"{folder}/{shard_file.name}")
                    sequences, ignored = list_sequences(shard)
                except DatasetError as exc:  # includes UnsafePathError: the shard is skipped
                    findings.reject(f"{folder}/{shard_file.name}", exc)
                    continue
                if ignored:
                    findings.note(f"{shard}: {len(ignored)} member(s) that are not <stem>/<class>/<seq>/<frame>.png ignored, e.g. {ignored[0]!r}.")
                for key, _n in sorted(sequences.items()):
                    stem, cls, seq = key.split("/")
                    if cls.lower() != CLASSES[label]:
                        findings.reject(
                            f"{folder}/{shard_file.name}::{key}",
                            DatasetError(f"Archive {shard} holds {cls}/ sequence {key!r} but lies in {folder}/ ({CLASSES[label]})."),
                        )
                        continue
                    name = f"{folder}/{shard_stem(shard)}/{stem}/{seq}"
                    rows.append(
                        {
                            "dataset": self.name,
                            "split": split,
                            "video_id": make_video_id(self.name, CLASSES[label], QUALITY, name),
                            "path": f"{shard}{SEPARATOR}{key}",
                            "label": label,
                            "method": CLASSES[label],
                            "quality": QUALITY,
                            "target_id": name if label == 0 else "",
                            "source_id": name if label == 0 else "",
                            "mask_path": "",
                        }
                    )
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        return validate_index(index, f"{self.name} at {self.root}")
