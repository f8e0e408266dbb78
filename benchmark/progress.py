"""rich progress for long work, as a ``(description, done, total)`` callback."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressReporter:
    """One bar per description prefix (``epoch 3/6`` and ``epoch 4/6`` share the training bar)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty() or enabled == "force"
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> ProgressReporter:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
            )
            self._progress.start()
        return self

    def update(self, description: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        key = description.split(" ")[0]
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(description, total=total)
        self._progress.update(self._tasks[key], description=description, completed=done, total=total)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
