"""Detectors from outside the package: a file, a module, or an installed package's entry point.

A researcher's detector is a ``dfbench.detectors.Detector`` subclass. Any place that takes a
detector name (``--detector``, ``create_detector``, ``dfbench check-detector``) also takes

  ``path/to/my_detector.py:MyDetector``   a Python file (imported under a private module name)
  ``my_pkg.module:MyDetector``            an importable module
  ``NAME``                                an entry point ``NAME = "my_pkg.module:MyDetector"``
                                          in the ``dfbench.detectors`` group of an installed package

The detector registry (``dfbench.detectors.DETECTORS``) asks ``PluginFinder`` for a name it
does not know, so resolution lives in that one lookup. A plug-in is registered under the
string the user gave; its metadata records where it came from (``source``) and the sha256 of
the file that defines it (``sha256``), and every result row carries both
(``detector_source``, ``detector_sha256``): a row produced by a plug-in says which code
produced it. Built-in detectors leave both empty (the run's ``git_hash`` covers them).

Importing this module imports nothing heavy: entry points are listed from package metadata
(``importlib.metadata``) without importing the packages that declare them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import warnings
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from dfbench.benchmark.errors import ConfigError

ENTRY_POINT_GROUP = "dfbench.detectors"
DETECTOR_BASE = "dfbench.detectors.base:Detector"


def is_plugin_spec(name: str) -> bool:
    """``file.py:Class`` or ``package.module:Class`` (a registered name never holds a colon)."""
    target, sep, attr = name.rpartition(":")
    return bool(sep and target and attr)


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (weight files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _import_file(path: Path, spec: str) -> Any:
    """The module of ``path``, imported once per file content under a private name."""
    digest = file_sha256(path)
    name = f"dfbench_plugin_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"--detector {spec}: {path} cannot be imported as a Python file.")
    module = importlib.util.module_from_spec(module_spec)
    # registered before it runs: dataclasses and pydantic look their module up by name
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: one line naming the file, not our traceback
        sys.modules.pop(name, None)
        raise ConfigError(f"--detector {spec}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"--detector {spec}: no module named {module_name!r} (for a file, give its path ending in .py)."
            ) from exc
        raise ConfigError(f"--detector {spec}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ConfigError(f"--detector {spec}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc


def _detector_class(module: Any, attr: str, where: str, spec: str) -> type:
    from dfbench.detectors.base import Detector

    cls = getattr(module, attr, None)
    if cls is None:
        found = sorted(
            n for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, Detector) and v is not Detector
        )
        listed = f"; Detector subclasses there: {', '.join(found)}" if found else "; it defines no Detector subclass"
        raise ConfigError(f"--detector {spec}: {where} has no attribute {attr!r}{listed}.")
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise ConfigError(
            f"--detector {spec}: {attr} in {where} is a {type(cls).__name__}, not a subclass of "
            f"dfbench.detectors.Detector."
        )
    return cls


def load_plugin(spec: str) -> tuple[type, dict[str, Any]]:
    """The Detector subclass ``spec`` names and its registry metadata (source, sha256, ...)."""
    target, _, attr = spec.rpartition(":")
    if _is_file_target(target):
        path = Path(target).expanduser()
        if not path.is_file():
            raise ConfigError(f"--detector {spec}: file {path} does not exist.")
        path = path.resolve()
        cls = _detector_class(_import_file(path, spec), attr, str(path), spec)
        source = f"{path}:{attr}"
    else:
        cls = _detector_class(_import_module(target, spec), attr, f"module {target}", spec)
        source = f"{target}:{attr}"
    file = inspect.getsourcefile(cls)
    meta = {
        "description": (inspect.getdoc(cls) or "").strip().splitlines()[0] if inspect.getdoc(cls) else "",
        "paper": "",
        "paper_methods": (),
        "overrides": {},
        "plugin": True,
        "source": source,
        "sha256": file_sha256(file) if file and Path(file).is_file() else "",
    }
    return cls, meta


@cache
def _entry_points() -> dict[str, tuple[str, dict[str, Any]]]:
    """name → (``module:attr``, listing metadata) of every ``dfbench.detectors`` entry point."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "an installed package"
        if ep.name in out:
            warnings.warn(f"detector entry point {ep.name!r} is declared twice; {out[ep.name][0]} is used", stacklevel=2)
            continue
        out[ep.name] = (ep.value, {
            "description": f"plug-in {ep.value} from {origin}", "paper": "", "paper_methods": (),
            "overrides": {}, "plugin": True, "source": ep.value, "sha256": "",
        })
    return out


class PluginFinder:
    """The detector registry's finder (see ``dfbench.benchmark.registry.Finder``)."""

    # the registry asks only about names it has not registered: a built-in name wins over an
    # entry point of the same name

    def listed(self) -> dict[str, dict[str, Any]]:
        return {name: meta for name, (_, meta) in _entry_points().items()}

    def find(self, name: str) -> tuple[type, dict[str, Any]] | None:
        points = _entry_points()
        if name in points:
            target, listed = points[name]
            cls, meta = load_plugin(target)
            return cls, {**meta, "description": meta["description"] or listed["description"], "entry_point": name}
        if is_plugin_spec(name):
            return load_plugin(name)
        return None

    def hint(self) -> str:
        return "A detector of your own: --detector path/to/file.py:ClassName or package.module:ClassName."


def plugin_identity(name: str) -> dict[str, str]:
    """``detector_source`` / ``detector_sha256`` for result rows ("" for a built-in detector)."""
    from dfbench.detectors import DETECTORS

    meta = DETECTORS.meta(name)
    if not meta.get("plugin"):
        return {"detector_source": "", "detector_sha256": ""}
    return {"detector_source": str(meta.get("source", "")), "detector_sha256": str(meta.get("sha256", ""))}
