"""The shipped protocol files, found and summarised without validating them.

Light on purpose (YAML and the package's resources only): ``dfbench list protocols`` reads
this index and starts in a fraction of a second, while ``load_protocol`` validates the spec
it is asked for, with its full schema, when a run uses it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dfbench.benchmark.errors import ConfigError


def _shipped() -> dict[str, tuple[Path, dict[str, Any]]]:
    folder = resources.files("dfbench.benchmark") / "protocols"
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".yaml", ".yml")):
            path = Path(str(entry))
            with open(path) as fh:
                raw = yaml.safe_load(fh) or {}
            name = str(raw.get("name", path.stem)) if isinstance(raw, dict) else path.stem
            if name in out:
                raise ConfigError(f"Two protocol files are named {name!r}: {out[name][0]} and {path}.")
            out[name] = (path, raw if isinstance(raw, dict) else {})
    return out


def protocol_files() -> dict[str, Path]:
    """Every shipped protocol spec, by name (directory scan, like lm-eval's task index)."""
    return {name: path for name, (path, _) in _shipped().items()}


def protocol_headers() -> dict[str, tuple[str, str]]:
    """(version, description) of every shipped protocol, by name, as its file states them."""
    return {name: (str(raw.get("version", "")), str(raw.get("description", "")).strip()) for name, (_, raw) in _shipped().items()}
