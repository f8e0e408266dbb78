"""DFDC preview (``dfdcp``): the official layout.

```
<root>/original_videos/…   real
<root>/method_A/…          fake
<root>/method_B/…          fake
<root>/dataset.json        {"<relative path>.mp4": {"label": "fake"|"real", "set": "train"|"test", …}, …}
```

Every index row comes from one ``dataset.json`` entry. The entry's key is a path relative
to the root and is confined to it: an absolute key, a ``..`` or a symlink leading outside
is refused (``UnsafePathError`` naming the entry). Labels: "fake" → 1, "real" → 0
(case-insensitive). Splits: ``set`` train/test as given; DFDCP has no validation split and
none is carved (it is only ever a test set in dfbench's protocols). The method is the
key's first folder; the name is the rest of the key without ``.mp4``. Quality: ``orig``.
"""

from __future__ import annotations

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
REAL_DIR = "original_videos"
METADATA = "dataset.json"
LABELS = {"fake": 1, "real": 0}
SETS = ("train", "test")


@register_dataset
class DFDCPreview(ScannedAdapter):
    """DFDC preview: about 1131 real / 4119 fake videos, ``set`` train/test in dataset.json."""

    name: ClassVar[str] = "dfdcp"
    description: ClassVar[str] = "DFDC preview (dataset.json: label, set train/test)"
    real_methods: ClassVar[tuple[str, ...]] = (REAL_DIR,)
    fake_methods: ClassVar[tuple[str, ...] | None] = ("method_A", "method_B")
    qualities: ClassVar[tuple[str, ...]] = (QUALITY,)
    frames_are_crops: ClassVar[bool] = False
    embedded_subdir: ClassVar[str | None] = "dfdcp"
    default_dirname: ClassVar[str] = "DFDCP"
    official_real: ClassVar[int] = 1131
    official_fake: ClassVar[int] = 4119

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        root = Path(root)
        return (root / METADATA).is_file() and (root / REAL_DIR).is_dir()

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        real, fake = int((index["label"] == 0).sum()), int((index["label"] == 1).sum())
        if (real, fake) != (self.official_real, self.official_fake):
            report.notes.append(
                f"{real} real / {fake} fake videos indexed; the official release has about "
                f"{self.official_real} / {self.official_fake}."
            )

    def _scan(self, findings: Findings) -> pd.DataFrame:
        meta_path = self.root / METADATA
        if meta_path.exists():
            meta_path = self.resolve(METADATA)  # a link out of the root is refused
        meta = load_json(meta_path)
        if not isinstance(meta, dict):
            raise DatasetError(f"{meta_path} must hold an object mapping video paths to entries.")
        rows = []
        for key in sorted(meta):
            entry = meta[key]
            where = f"{meta_path} entry {key!r}"
            entry_name = f"{METADATA} entry {key!r}"
            try:
                path = self.resolve(key)
            except UnsafePathError as exc:
                findings.reject(entry_name, UnsafePathError(f"{where} points outside the dataset root {self.root} ({exc})"))
                continue
            if not isinstance(entry, dict):
                findings.reject(entry_name, DatasetError(f"{where} is not an object with 'label' and 'set'."))
                continue
            label = LABELS.get(str(entry.get("label", "")).lower())
            if label is None:
                findings.reject(entry_name, DatasetError(f"{where} has label {entry.get('label')!r}; expected 'fake' or 'real'."))
                continue
            split = str(entry.get("set", "")).lower()
            if split not in SETS:
                findings.reject(entry_name, DatasetError(f"{where} has set {entry.get('set')!r}; expected 'train' or 'test'."))
                continue
            parts = key.split("/")
            method, rest = parts[0], "/".join(parts[1:])
            if len(parts) < 2 or not rest.lower().endswith(".mp4"):
                findings.reject(entry_name, DatasetError(f"{where} is not '<folder>/…/<name>.mp4'."))
                continue
            if (method == REAL_DIR) != (label == 0):
                findings.reject(
                    entry_name,
                    DatasetError(f"{where} is labelled {entry.get('label')!r} but lies in {method}/ (reals are in {REAL_DIR}/)."),
                )
                continue
            if not path.is_file():
                findings.reject(entry_name, DatasetError(f"{where} names a video that does not exist under {self.root}."))
                continue
            name = rest[: -len(".mp4")]
            rows.append(
                {
                    "dataset": self.name,
                    "split": split,
                    "video_id": make_video_id(self.name, method, QUALITY, name),
                    "path": str(path),
                    "label": label,
                    "method": method,
                    "quality": QUALITY,
                    # dataset.json does not name the real video a fake was made from
                    "target_id": name if label == 0 else "",
                    "source_id": name if label == 0 else "",
                    "mask_path": "",
                }
            )
        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        return validate_index(index, f"{self.name} at {self.root}")
