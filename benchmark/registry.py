"""One registry type for detectors, datasets, protocols and protocol procedures.

Modelled on timm's and lm-evaluation-harness's registries: names map to entries, a
duplicate name raises, entries may be checked against a base class, and an entry may be
a lazy ``"module:attr"`` string resolved on first use.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from dfbench.benchmark.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry mapping that refuses duplicates and explains unknown names."""

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, T | str] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, entry: T | str, **meta: Any) -> T | str:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not isinstance(entry, str):
            self._check_base(name, entry)
        self._entries[name] = entry
        self._meta[name] = meta
        return entry

    def decorator(self, name: str, **meta: Any) -> Callable[[T], T]:
        def wrap(entry: T) -> T:
            self.register(name, entry, **meta)
            return entry

        return wrap

    def _check_base(self, name: str, entry: Any) -> None:
        if self.base is None:
            return
        target = entry if isinstance(entry, type) else type(entry)
        if not issubclass(target, self.base):
            raise TypeError(f"{self.kind} {name!r} must derive from {self.base.__name__}")

    def get(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"Unknown {self.kind} {name!r}.{hint} Run `dfbench list {self.kind}s` to see all."
            )
        entry = self._entries[name]
        if isinstance(entry, str):  # lazy "module:attr"
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._check_base(name, entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
