"""Logging for dfbench: every module logs through ``logging.getLogger(__name__)`` (all under
the ``dfbench`` logger); nothing in the package prints progress messages itself.

Two places attach handlers, both to the ``dfbench`` logger only (a program embedding dfbench
keeps its own logging set-up):

``console_logging()``  the CLI's terminal handler: INFO and above, one plain line each, to
                       whatever ``sys.stderr`` is when the record is written (a rich
                       progress bar redirects it and keeps the line above the bar; pytest's
                       capture sees it).
``run_log(folder)``    a ``run.log`` in a run folder for the duration of one run cell: the
                       same lines with a timestamp, appended (a resumed run continues the
                       file), and DEBUG ones too (a ``RunRequest(quiet=True)`` run logs its
                       messages at DEBUG: kept out of the terminal, not out of the file). It
                       lowers the ``dfbench`` logger's level while it is attached, so the
                       file is written also when nobody configured logging.

stdout stays for what a command produces (tables, paths); log lines go to stderr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

ROOT_LOGGER = "dfbench"
RUN_LOG_FILE = "run.log"
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _CurrentStderr(logging.StreamHandler):
    """A StreamHandler that writes to the ``sys.stderr`` of the moment, not the one at set-up."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it; ignored
        pass


_CONSOLE_MARK = "_dfbench_console"


def console_logging(level: int = logging.INFO) -> logging.Handler:
    """Attach (once per process) the terminal handler to the ``dfbench`` logger."""
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in logger.handlers:
        if getattr(handler, _CONSOLE_MARK, False):
            handler.setLevel(level)
            break
    else:
        handler = _CurrentStderr()
        setattr(handler, _CONSOLE_MARK, True)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.setLevel(level)
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler


@contextmanager
def run_log(folder: Path, level: int = logging.DEBUG) -> Iterator[Path]:
    """Write the ``dfbench`` log lines to ``folder/run.log`` while the block runs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_LOG_FILE
    logger = logging.getLogger(ROOT_LOGGER)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    handler.setLevel(level)
    before = logger.level
    if before == logging.NOTSET or before > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(before)
