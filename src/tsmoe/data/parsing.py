"""Checks every loader shares: numbers that fit float32, dates parsed one way, and text columns that
hold strings, each naming the row.

``location(position)`` formats where a bad value is (``file 'x.csv', column 'y', row 3``), so each
loader keeps its own wording of places while the rules stay in one place.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from tsmoe.errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32(values: np.ndarray, location: Callable[[int], str], role: str = "value") -> None:
    """Refuse NaN, infinite values and values beyond float32's range (they would become infinite in the
    model), naming the first bad one."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        position = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{location(position)}: NaN or infinite {role}; fill or drop it first")
    huge = np.abs(values) > FLOAT32_MAX
    if huge.any():
        position = int(np.flatnonzero(huge)[0])
        raise DataError(
            f"{location(position)}: {role} {values[position]:.3g} is beyond float32's range (±3.4e38); rescale it"
        )


def to_float32(values: np.ndarray, location: Callable[[int], str], role: str = "value") -> np.ndarray:
    """:func:`check_float32`, then the cast (which can then neither overflow nor warn)."""
    check_float32(values, location, role)
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def check_texts_column(cells: pd.Series, location: Callable[[int], str]) -> None:
    """Every cell is a string or NA (the null text); else a :class:`DataError` at the first other one."""
    bad = cells.notna() & ~cells.map(lambda value: isinstance(value, str))
    if bad.any():
        raise DataError(f"{location(int(np.flatnonzero(bad.to_numpy())[0]))}: text must be a string or NA")


def parse_dates(raw: pd.Series, location: Callable[[int], str]) -> np.ndarray:
    """Dates ``(N,)`` as datetime64[ns]. Every cell must be a date (not a number, not empty); dates with a
    time zone are converted to UTC, and a column mixing zoned and unzoned dates is refused."""
    raw = raw.reset_index(drop=True)
    if not pd.api.types.is_datetime64_any_dtype(raw):
        for position, value in enumerate(raw):
            if pd.isna(value):
                raise DataError(f"{location(position)}: the date is missing")
            if not isinstance(value, str | pd.Timestamp | np.datetime64) and not hasattr(value, "isoformat"):
                raise DataError(f"{location(position)}: '{value}' is a {type(value).__name__}, not a date")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a guessed, inconsistent format: parse cell by cell instead
            parsed = pd.to_datetime(raw)
    except (ValueError, TypeError, OverflowError, Warning):
        parsed = _dates_one_by_one(raw, location)
    missing = parsed.isna().to_numpy()
    if missing.any():
        position = int(np.flatnonzero(missing)[0])
        raise DataError(f"{location(position)}: '{raw.iloc[position]}' is not a date")
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy().astype("datetime64[ns]")


def _dates_one_by_one(raw: pd.Series, location: Callable[[int], str]) -> pd.Series:
    stamps = []
    for position, value in enumerate(raw):
        try:
            stamps.append(pd.Timestamp(value))
        except (ValueError, TypeError, OverflowError):
            raise DataError(f"{location(position)}: '{value}' is not a date") from None
    zoned = np.array([stamp.tzinfo is not None for stamp in stamps])
    if zoned.any() and not zoned.all():
        position = int(np.flatnonzero(zoned != zoned[0])[0])
        raise DataError(
            f"{location(position)}: '{raw.iloc[position]}' mixes dates with and without a time zone; "
            "write them all one way"
        )
    if zoned.all() and len(stamps):
        stamps = [stamp.tz_convert("UTC").tz_localize(None) for stamp in stamps]
    return pd.Series(pd.DatetimeIndex(stamps))
