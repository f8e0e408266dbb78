"""One registry type for detectors, datasets, protocols and protocol procedures.

Modelled on timm's and lm-evaluation-harness's registries: names map to entries, a
duplicate name raises, entries may be checked against a base class, and an entry may be
a lazy ``"module:attr"`` string resolved on first use.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from dfbench.benchmark.errors import ConfigError

T = TypeVar("T")


class Finder(Protocol):
    """Names a registry can resolve beyond what is registered (e.g. plug-ins)."""

    def listed(self) -> dict[str, dict[str, Any]]:
        """Names to list beside the registered ones, with their metadata (nothing imported)."""
        ...

    def find(self, name: str) -> tuple[Any, dict[str, Any]] | None:
        """``(entry, metadata)`` for ``name``, None when ``name`` is not the finder's to resolve;
        raises ConfigError when it is but cannot be used (missing file, wrong class, ...)."""
        ...

    def hint(self) -> str:
        """A sentence appended to the unknown-name error (how to name such an entry)."""
        ...


def _import_attr(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class Registry(Generic[T]):
    """Name → entry mapping that refuses duplicates and explains unknown names."""

    def __init__(self, kind: str, base: type | str | None = None, *, finder: Finder | None = None) -> None:
        self.kind = kind
        self._base = base  # a class, or "module:attr" imported on the first check
        self.finder = finder
        self._entries: dict[str, T | str] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    @property
    def base(self) -> type | None:
        if isinstance(self._base, str):
            self._base = _import_attr(self._base)
        return self._base  # type: ignore[return-value]

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

    def _require(self, name: str) -> None:
        """Register ``name`` through the finder when it is the finder's; else explain it."""
        if name in self._entries:
            return
        found = self.finder.find(name) if self.finder is not None else None
        if found is not None:
            self.register(name, found[0], **found[1])
            return
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        more = f" {self.finder.hint()}" if self.finder is not None else ""
        raise ConfigError(f"Unknown {self.kind} {name!r}.{hint} Run `dfbench list {self.kind}s` to see all.{more}")

    def get(self, name: str) -> T:
        self._require(name)
        entry = self._entries[name]
        if isinstance(entry, str):  # lazy "module:attr"
            entry = _import_attr(entry)
            self._check_base(name, entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata ``name`` was registered with; imports nothing for a lazy entry."""
        if name not in self._entries and self.finder is not None and name in (listed := self.finder.listed()):
            return dict(listed[name])
        self._require(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        extra = self.finder.listed() if self.finder is not None else {}
        return sorted(set(self._entries) | set(extra))

    def __contains__(self, name: object) -> bool:
        if name in self._entries:
            return True
        return self.finder is not None and name in self.finder.listed()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
