"""Every input a command could not use, collected in one place and summarised once at its end.

Two kinds: dataset entries an adapter refused while indexing (``Rejected``: a link out of
the root, a bad list line, metadata key or archive member; left out of the index), and
videos that failed preprocessing or whose paired real / other quality failed (video_id →
reason; scored 0.5 at video level by the procedures). ``dfbench run`` and ``dfbench
preprocess`` print ``summary()`` and exit with ``EXIT_FAILED_INPUTS`` when the log is not
empty, unless ``--allow-failures`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dfbench.datasets.base import Rejected

# exit codes of the CLI (documented in the README)
EXIT_OK = 0
EXIT_FAILED_INPUTS = 1  # the command finished, but some inputs were rejected or failed
EXIT_ERROR = 2  # a user mistake or an unusable environment: nothing (more) was done
EXIT_INTERRUPTED = 130


@dataclass
class FailureLog:
    """Failed videos (video_id → reason) and rejected dataset entries, without duplicates."""

    videos: dict[str, str] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)

    def add_videos(self, failed: Mapping[str, str]) -> None:
        for vid, reason in failed.items():
            self.videos.setdefault(str(vid), str(reason))

    def add_rejected(self, rejected: Iterable[Rejected]) -> None:
        for r in rejected:
            if r not in self.rejected:
                self.rejected.append(r)

    def __len__(self) -> int:
        return len(self.videos) + len(self.rejected)

    def __bool__(self) -> bool:
        return len(self) > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "failed_videos": dict(sorted(self.videos.items())),
            "rejected_entries": [{"dataset": r.dataset, "entry": r.entry, "reason": r.reason} for r in self.rejected],
        }

    def merge_json(self, data: Mapping[str, Any]) -> None:
        """Add what ``to_json`` wrote (e.g. an earlier run.json of a resumed run)."""
        self.add_videos(data.get("failed_videos") or {})
        self.add_rejected(Rejected(**r) for r in data.get("rejected_entries") or [])

    def summary(self) -> str:
        """One block naming each rejected entry and failed video with its reason."""
        if not self:
            return "All inputs were used: no rejected entries, no failed videos."
        lines = [
            f"{len(self)} input(s) failed: {len(self.rejected)} dataset entries rejected (left out of the index), "
            f"{len(self.videos)} videos failed (left out of training; scored 0.5 at video level in tests):"
        ]
        lines += [f"  REJECTED {r.dataset}:{r.entry}: {r.reason}" for r in self.rejected]
        lines += [f"  FAILED {vid}: {reason}" for vid, reason in sorted(self.videos.items())]
        return "\n".join(lines)
