"""User-facing errors: one clear sentence naming the file, field or option and what to do.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""


class DfbenchError(Exception):
    """A mistake in the user's input or environment that dfbench can explain."""


class ConfigError(DfbenchError):
    """A wrong config key, value or preset."""


class DatasetError(DfbenchError):
    """A dataset layout, split file or metadata file that cannot be used as given."""


class UnsafePathError(DatasetError):
    """A path from dataset metadata or an archive that would escape its root."""
