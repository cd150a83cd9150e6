"""The clock of irregular data: times as numbers in a unit, and timestamps converted to it.

A table's timestamps and a stream's are read by the same rule, so that both give a step the same time: an
instant is its nanoseconds since 1970-01-01 (its UTC reading if it carries a time zone, its wall-clock
reading if it does not), divided in float64 by the unit's nanoseconds. A duration (time since some start,
as pandas' timedelta gives it) is a number of the unit: its nanoseconds divided likewise.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from tsmoe.errors import DataError

TimeUnit = Literal["seconds", "minutes", "hours", "days"]
NANOSECONDS = {"seconds": 1e9, "minutes": 60e9, "hours": 3600e9, "days": 86400e9}
INSTANT_TYPES = (datetime.date, np.datetime64, str)  # a datetime (and pd.Timestamp) is a date
DURATION_TYPES = (datetime.timedelta, np.timedelta64)  # a pd.Timedelta is a timedelta


def is_instant(value: Any) -> bool:
    """Whether ``value`` is given as a timestamp (a datetime, date, numpy datetime64 or text), not a number."""
    return isinstance(value, INSTANT_TYPES)


def instant_in_unit(value: Any, unit: TimeUnit, what: str) -> float:
    """One timestamp (datetime, pandas Timestamp, numpy datetime64, or ISO 8601 text, as a table's time
    column is parsed) -> float64 in ``unit`` since 1970-01-01. ``what`` names it in an error."""
    try:
        if isinstance(value, str):
            stamp = pd.to_datetime(value, format="ISO8601", utc=True)
        else:
            stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{what}: {value!r} is not a time (a number, a timestamp or an ISO 8601 date)") from None
    if pd.isna(stamp):
        raise DataError(f"{what}: the time is missing ({value!r})")
    return float(stamp.value) / NANOSECONDS[unit]  # .value: nanoseconds since the epoch, UTC for an aware time


def duration_in_unit(value: Any, unit: TimeUnit, what: str) -> float:
    """One duration (datetime.timedelta, pandas Timedelta, numpy timedelta64) -> float64 in ``unit``."""
    length = pd.Timedelta(value)
    if pd.isna(length):
        raise DataError(f"{what}: the time is missing ({value!r})")
    return float(length.value) / NANOSECONDS[unit]


def as_given(values: np.ndarray, kind: str, unit: TimeUnit) -> np.ndarray:
    """Times in the clock's unit ``(n,)`` float64 (NaN: none) back as a table gave them: numbers as they
    are; timestamps (``kind == "timestamp"``, the unit since 1970-01-01) as datetime64 to the microsecond
    (a float64 of hours since 1970 holds a time to well under one), the UTC reading of a zoned time."""
    if kind != "timestamp":
        return values
    microseconds = np.round(values * (NANOSECONDS[unit] / 1000))
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[us]")
    known = ~np.isnan(microseconds)
    out[known] = microseconds[known].astype(np.int64).astype("datetime64[us]")
    return out
