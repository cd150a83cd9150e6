"""The errors tsmoe raises for anything a user can cause.

Every message says what was wrong, where (file, column, row, config key) and how to fix it.
They are raised before any tensor work starts.
"""

from __future__ import annotations


class TsmoeError(Exception):
    """Base class of every error tsmoe raises on purpose."""


class DataError(TsmoeError, ValueError):
    """Bad input data: a file, column, row or value that cannot be used."""


class ConfigError(TsmoeError, ValueError):
    """A bad configuration: unknown key, wrong type, unknown model or data set name."""


class ModelFileError(TsmoeError, ValueError):
    """A saved model that cannot be loaded: missing, truncated, edited or mismatched files."""


class TrainingError(TsmoeError, RuntimeError):
    """Training that cannot go on: a loss that became NaN or infinite, a run folder that cannot resume."""


class TrainingInterrupted(TrainingError):
    """Training stopped by the user (Ctrl-C); the run's last checkpoint is kept for ``--resume``."""


def where(path: object = None, column: str | None = None, row: int | None = None) -> str:
    """Format a location as ``file 'x.csv', column 'y', row 12`` (rows counted from 1, header excluded)."""
    parts = []
    if path is not None:
        parts.append(f"file '{path}'")
    if column is not None:
        parts.append(f"column '{column}'")
    if row is not None:
        parts.append(f"row {row}")
    return ", ".join(parts) if parts else "input"
