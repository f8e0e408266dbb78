"""Safe reading of untrusted dataset files: tar shards, metadata JSON, and layout scans.

Tar shards (WildDeepfake ships its face crops as ``.tar.gz``) are *streamed*, never
extracted: every member is checked before anything is read, and a shard holding any
member that could escape a folder or is not a plain file (absolute name, ``..``, symlink,
hard link, device, FIFO) is refused as a whole with an ``UnsafePathError`` that names the
shard and the member. Directory members are allowed (they carry no data).

``Findings`` lets one scan serve both ``build_index`` and ``check``. A *problem* with the
layout itself (a missing folder or metadata file) raises in ``build_index`` and is listed by
``check``; a bad *entry* (a list line, metadata key, archive or archive member, a link out of
the root) is skipped and recorded in both: ``build_index`` goes on with the rest and leaves
the entry in ``adapter.rejected``, which the runner and ``dfbench preprocess`` report.
"""

from __future__ import annotations

import json
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from dfbench.benchmark.errors import DatasetError, UnsafePathError
from dfbench.datasets.base import CheckReport, DatasetAdapter

# a face crop PNG is a few hundred KB at most; anything far larger is not a frame
MAX_MEMBER_BYTES = 64 * 1024 * 1024

_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


def safe_member_name(shard: Path, member: tarfile.TarInfo) -> str | None:
    """The member's normalised relative name (``./a/b`` → ``a/b``) if it is a regular file,
    ``None`` for a directory; raises ``UnsafePathError`` for anything else."""
    name = member.name
    where = f"Archive {shard} member {name!r}"
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafePathError(f"{where} has an absolute path; the archive is refused.")
    if "\\" in name:
        raise UnsafePathError(f"{where} contains a backslash; the archive is refused.")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePathError(f"{where} contains '..' and would escape its folder; the archive is refused.")
    if member.isdir():
        return None
    if not member.isreg():
        kind = _KINDS.get(member.type, f"a non-regular entry (type {member.type!r})")
        raise UnsafePathError(f"{where} is {kind}, not a regular file; the archive is refused.")
    if not parts:
        raise UnsafePathError(f"{where} has an empty name; the archive is refused.")
    if member.size > MAX_MEMBER_BYTES:
        raise DatasetError(f"{where} is {member.size} bytes, larger than any face frame ({MAX_MEMBER_BYTES}); the archive is refused.")
    return "/".join(parts)


def iter_tar_members(shard: Path, *, read: Any = None) -> Iterator[tuple[str, bytes | None]]:
    """Stream ``(name, data)`` for every regular file of a tar(.gz) shard, in archive order.

    Every member (including ones the caller does not want) passes ``safe_member_name``.
    ``read(name) -> bool`` chooses which members' bytes are read (default: none; ``data``
    is then ``None``). Corrupt or truncated archives raise ``DatasetError`` naming the shard.
    """
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for member in tar:
                name = safe_member_name(shard, member)
                if name is None:
                    continue
                data = None
                if read is not None and read(name):
                    fh = tar.extractfile(member)
                    data = fh.read() if fh is not None else b""
                yield name, data
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DatasetError(f"Archive {shard} does not exist.") from exc
        raise DatasetError(f"Archive {shard} is corrupt or truncated ({exc}); re-download it.") from exc


def load_json(path: Path) -> Any:
    """A metadata JSON file, with one clear sentence when it is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetError(f"Metadata file {path} does not exist.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"Metadata file {path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from exc


@dataclass
class Findings:
    """Layout problems (raised at once when ``strict``, else collected) and rejected entries
    (always collected: the scan skips them and goes on)."""

    strict: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (entry inside the root, reason)

    def problem(self, error: DatasetError) -> None:
        if self.strict:
            raise error
        self.problems.append(str(error))

    def reject(self, entry: str, error: DatasetError) -> None:
        """Skip one bad entry, named by its place inside the dataset root."""
        self.rejected.append((entry, str(error)))

    def note(self, message: str) -> None:
        self.notes.append(message)


def count_table(index: pd.DataFrame, official: dict[tuple[str, str], int] | None = None) -> pd.DataFrame:
    """Videos per (split, method) with the label, plus the official count where one is known."""
    if index.empty:
        table = pd.DataFrame(columns=["split", "method", "label", "videos"])
    else:
        table = index.groupby(["split", "method", "label"]).size().reset_index(name="videos")
    if official is not None:
        table["official"] = [official.get((s, m)) for s, m in zip(table["split"], table["method"])]
    return table


class ScannedAdapter(DatasetAdapter):
    """An adapter whose one ``_scan(findings)`` serves both ``build_index`` (first problem
    raises) and ``check`` (every problem collected, then compared with the official counts)."""

    def _scan(self, findings: Findings) -> pd.DataFrame:
        raise NotImplementedError

    def _compare_official(self, index: pd.DataFrame, report: CheckReport) -> None:
        """Add the differences from the official release to ``report`` (adapters override)."""

    def build_index(self) -> pd.DataFrame:
        self.require_root()
        findings = Findings(strict=True)
        self.rejected = []
        index = self._scan(findings)
        for entry, reason in findings.rejected:
            self.reject(entry, reason)
        if index.empty and findings.rejected:
            raise DatasetError(
                f"Every entry of {self.name} at {self.root} was rejected ({len(findings.rejected)}, e.g. "
                f"{findings.rejected[0][1]}); run `dfbench datasets check {self.root} --dataset {self.name}`."
            )
        return index

    def check(self) -> CheckReport:
        report = CheckReport(dataset=self.name, root=self.root)
        if not self.root.is_dir():
            report.problems.append(f"Dataset root {self.root} does not exist.")
            return report
        findings = Findings(strict=False)
        try:
            index = self._scan(findings)
        except DatasetError as exc:  # e.g. the metadata file itself is missing: nothing to count
            report.problems.append(str(exc))
            return report
        report.counts = count_table(index)
        report.problems += findings.problems
        report.problems += [reason for _, reason in findings.rejected]
        report.notes += findings.notes
        self._compare_official(index, report)
        return report
