"""The dataset-adapter interface and the fixed index schema every adapter produces.

An adapter turns one dataset's official on-disk layout into an index DataFrame with
``INDEX_COLUMNS``. Adding a dataset = one module with one ``DatasetAdapter`` subclass,
registered with ``register_dataset``. Nothing outside an adapter knows a dataset's layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.benchmark.registry import Registry

# label: 1 = fake, 0 = real. video_id is unique across everything dfbench indexes:
# "<dataset>/<method>/<quality>/<name>", e.g. "ffpp/NeuralTextures/c23/071_054".
INDEX_COLUMNS: tuple[str, ...] = (
    "dataset",
    "split",
    "video_id",
    "path",
    "label",
    "method",
    "quality",
    "target_id",
    "source_id",
    "mask_path",
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# index column the data layer adds: the quality a row's file is re-encoded to ("" = as shipped;
# dfbench.benchmark.preprocess.reencode)
REENCODED = "reencode"


def make_video_id(dataset: str, method: str, quality: str, name: str) -> str:
    """The full key frames are grouped by: FF++ fakes of different methods share names."""
    return f"{dataset}/{method}/{quality}/{name}"


def confined_path(root: Path, relative: str | Path) -> Path:
    """``root / relative``, refusing anything that would leave ``root`` (absolute, ``..``, links)."""
    rel = Path(relative)
    if rel.is_absolute() or any(part == ".." for part in rel.parts):
        raise UnsafePathError(f"Path {str(relative)!r} in the metadata of {root} points outside the dataset root.")
    root_resolved = root.resolve()
    full = (root_resolved / rel).resolve()
    if not full.is_relative_to(root_resolved):
        raise UnsafePathError(
            f"Path {str(relative)!r} under {root} resolves outside the dataset root (a link leading out of it); "
            f"it is refused."
        )
    return full


@dataclass(frozen=True)
class Rejected:
    """An entry of a dataset an adapter refused and skipped: ``entry`` names it inside the
    dataset root (a path relative to the root, or a metadata file and its line/key), ``reason``
    says why in one sentence. The runner and ``dfbench preprocess`` count these as failures."""

    dataset: str
    entry: str
    reason: str

    def __str__(self) -> str:
        return f"{self.dataset}: {self.entry}: {self.reason}"


@dataclass
class CheckReport:
    """What ``dfbench datasets check`` prints: counts, and each missing or unexpected part."""

    dataset: str
    root: Path
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class DatasetAdapter(ABC):
    """Reads one public dataset's official layout into the index schema."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # methods whose videos are real (FF++: youtube, actors); every other method is fake
    real_methods: ClassVar[tuple[str, ...]] = ()
    # every fake method the official layout can hold (None = not a fixed set); a protocol
    # naming another method is refused before any data is read
    fake_methods: ClassVar[tuple[str, ...] | None] = None
    # best quality first; boxes are detected on the first quality a video has
    qualities: ClassVar[tuple[str, ...]] = ("raw",)
    # True when the files already are face crops (WildDeepfake): preprocessing skips detection
    frames_are_crops: ClassVar[bool] = False
    # subfolder of the embedded synthetic benchmark holding this dataset's stand-in (or None)
    embedded_subdir: ClassVar[str | None] = None
    # "module:attribute" of a stand-in (``dfbench.datasets.synth.standins.StandIn``) written into
    # ``embedded_subdir`` on demand: only when a run without --data-root needs this dataset, so
    # runs that do not use it never pay for it (None: the stand-in, if any, comes with the
    # embedded benchmark itself)
    embedded_generator: ClassVar[str | None] = None
    # conventional folder name under --data-root (e.g. "FaceForensics++")
    default_dirname: ClassVar[str | None] = None

    @classmethod
    def looks_like(cls, root: str | Path) -> bool:
        """Whether ``root`` itself holds this dataset's official layout (adapters override)."""
        return False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        # entries the last build_index refused and left out (the rest of the dataset is used)
        self.rejected: list[Rejected] = []

    @abstractmethod
    def build_index(self) -> pd.DataFrame:
        """The index of every video under ``root`` (``INDEX_COLUMNS``). Raises DatasetError."""

    @abstractmethod
    def check(self) -> CheckReport:
        """Validate the layout against the official one; counts per method/quality/split."""

    def resolve(self, relative: str | Path) -> Path:
        return confined_path(self.root, relative)

    def reject(self, entry: str | Path, reason: str) -> None:
        """Record an entry ``build_index`` leaves out (named by its path inside the root)."""
        self.rejected.append(Rejected(self.name, str(entry), reason))

    def require_root(self) -> None:
        if not self.root.is_dir():
            raise DatasetError(
                f"Dataset root {self.root} for {self.name!r} does not exist; pass the folder that holds "
                f"the official {self.name} layout (see `dfbench datasets check`)."
            )


def validate_index(index: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check an adapter's index against the schema; returns it with the canonical column order."""
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise DatasetError(f"Index from {source} lacks columns {missing}.")
    if index["video_id"].duplicated().any():
        dup = index.loc[index["video_id"].duplicated(), "video_id"].iloc[0]
        raise DatasetError(f"Index from {source} has duplicate video_id {dup!r}.")
    if not index["label"].isin([0, 1]).all():
        raise DatasetError(f"Index from {source} has labels other than 0 (real) and 1 (fake).")
    extra = [c for c in index.columns if c not in INDEX_COLUMNS]
    return index[list(INDEX_COLUMNS) + extra].reset_index(drop=True)


@dataclass(frozen=True)
class Selection:
    """A declarative slice of one dataset's index, as named in a protocol spec.

    ``methods``: fake methods to include (None = every fake method);
    ``reals``: real methods to include (None = the adapter's ``real_methods``; () = none);
    ``qualities``: None = every quality the dataset ships (not the c23/c40 re-encodings the
    data layer offers for a single-quality dataset: those are used only when named).
    """

    dataset: str
    split: str
    methods: tuple[str, ...] | None = None
    reals: tuple[str, ...] | None = None
    qualities: tuple[str, ...] | None = None

    def apply(self, index: pd.DataFrame, real_methods: Sequence[str]) -> pd.DataFrame:
        rows = index[(index["dataset"] == self.dataset) & (index["split"] == self.split)]
        reals = tuple(real_methods) if self.reals is None else self.reals
        fake = rows["label"] == 1
        keep_fake = fake if self.methods is None else fake & rows["method"].isin(self.methods)
        keep_real = ~fake & rows["method"].isin(reals)
        rows = rows[keep_fake | keep_real]
        if self.qualities is not None:
            rows = rows[rows["quality"].isin(self.qualities)]
        elif REENCODED in rows.columns:  # no quality named: the dataset's own videos only
            rows = rows[rows[REENCODED] == ""]
        return rows.reset_index(drop=True)


DATASETS: Registry[type[DatasetAdapter]] = Registry("dataset", base=DatasetAdapter)


def register_dataset(cls: type[DatasetAdapter]) -> type[DatasetAdapter]:
    """Class decorator: register an adapter under its ``name``."""
    DATASETS.register(cls.name, cls, description=cls.description)
    return cls


def get_dataset(name: str, root: str | Path) -> DatasetAdapter:
    return DATASETS.get(name)(root)


def list_datasets() -> list[str]:
    return DATASETS.names()
