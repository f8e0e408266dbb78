"""Every filesystem root dfbench uses comes from here (never from the package directory).

Environment variables:
  DFBENCH_HOME     base directory (default ``~/.dfbench``)
  DFBENCH_DATA     root of the embedded synthetic benchmark (default ``$DFBENCH_HOME/data``)
  DFBENCH_CACHE    face-crop cache (default ``$DFBENCH_HOME/cache``)
  DFBENCH_RESULTS  results store (default ``./results/runs``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    data: Path
    cache: Path
    results: Path

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("DFBENCH_HOME", Path.home() / ".dfbench")).expanduser()
        return cls(
            home=home,
            data=Path(os.environ.get("DFBENCH_DATA", home / "data")).expanduser(),
            cache=Path(os.environ.get("DFBENCH_CACHE", home / "cache")).expanduser(),
            results=Path(os.environ.get("DFBENCH_RESULTS", Path("results") / "runs")).expanduser(),
        )


def get_settings() -> Settings:
    """Settings read from the environment at call time (tests change the environment)."""
    return Settings.from_env()
