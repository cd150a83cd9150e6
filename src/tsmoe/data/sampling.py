"""The sampling step of regular series, and the gaps where a series skips it.

A model on windows reads rows as consecutive steps: a series sampled at another step than the run was
trained on is a different problem, and a hole in a series joins its two sides as if nothing were between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsmoe.data.notes import note
from tsmoe.data.series import Series, SeriesSet

log = logging.getLogger(__name__)


def step_text(step: object) -> str:
    """A step as people read it: ``1 day``, ``1 hour``, ``15 minutes`` or ``7 (index steps)``."""
    if isinstance(step, int | np.integer) and not isinstance(step, np.timedelta64):  # timedelta64 is an integer
        return f"{int(step)} (index steps)"
    delta = pd.Timedelta(step)
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count = delta.total_seconds() / seconds
        if count >= 1 and float(count).is_integer():
            return f"{int(count)} {unit}{'s' if count != 1 else ''}"
    return str(delta)


def when(stamp: object) -> str:
    """A timestamp as people read it (a date, or an index)."""
    return str(pd.Timestamp(stamp)) if isinstance(stamp, np.datetime64) else str(stamp)


def usual_step(series: Series) -> object | None:
    """The step most of a series' rows are apart by (a ``pd.Timedelta`` or an int), or ``None`` for fewer
    than two rows."""
    if len(series.timestamps) < 2:
        return None
    steps = pd.Series(np.diff(series.timestamps)).value_counts()
    step = steps.index[0]
    return int(step) if np.issubdtype(series.timestamps.dtype, np.integer) else pd.Timedelta(step)


def data_step(data: SeriesSet) -> str | None:
    """The usual step over every series of ``data`` as stored in a run's ``meta.json`` (``None``: unknown)."""
    steps = [s for s in (usual_step(series) for series in data.series) if s is not None]
    if not steps:
        return None
    step = pd.Series([str(s) for s in steps]).value_counts().index[0]
    return step


def parse_step(stored: str) -> object:
    """A step as :func:`data_step` stored it."""
    return int(stored) if stored.lstrip("-").isdigit() else pd.Timedelta(stored)


@dataclass(frozen=True)
class Gap:
    series: str
    after: object  # the timestamp before the hole
    length: object  # the time from that row to the next


def gaps(data: SeriesSet, step: object) -> list[Gap]:
    """Each series' first hole: two consecutive rows further apart than 1.5 steps."""
    found = []
    for series in data.series:
        differences = np.diff(series.timestamps)
        if not len(differences):
            continue
        limit = step * 1.5 if isinstance(step, int) else np.timedelta64(pd.Timedelta(step) * 1.5)
        holes = np.flatnonzero(differences > limit)
        if len(holes):
            i = int(holes[0])
            found.append(Gap(series.name, series.timestamps[i], differences[i]))
    return found


def warn_of_gaps(data: SeriesSet, where: str, step: object | None = None) -> None:
    """Log each series' first hole (at ``step``, default the data's own usual step)."""
    if step is None:
        stored = data_step(data)
        if stored is None:
            return
        step = parse_step(stored)
    for gap in gaps(data, step):
        note(
            log, "%s, series '%s': a gap of %s after %s (the usual step is %s); models of fixed steps (DLinear, "
            "PatchTST, iTransformer, MoME) read the rows on either side as consecutive, the recurrent ones (MR-MoE "
            "and its rungs, LSTM, GRU) the gap's length", where, gap.series, step_text(gap.length), when(gap.after),
            step_text(step),
        )  # fmt: skip


def in_clock_units(step: object) -> float:
    """A step (a ``pd.Timedelta`` or an int, as :func:`usual_step` gives) in the liquid models' clock:
    hours for datetime stamps, the stamps' own unit for integer ones."""
    return pd.Timedelta(step).total_seconds() / 3600 if isinstance(step, pd.Timedelta) else float(step)


def elapsed_before(series: Series) -> np.ndarray:
    """``(T,)`` float32: the time from each row's previous row to it, in hours for datetime stamps (in the
    stamps' own unit for integer ones); the first row, which has no previous row, gets the series' usual
    step (1 for a single row). A window model on continuous time (the liquid networks) integrates these
    gaps, so a hole in a series is a longer step, not two rows glued together."""
    stamps = series.timestamps
    if len(stamps) < 2:
        return np.ones(len(stamps), np.float32)
    if np.issubdtype(stamps.dtype, np.datetime64):
        gaps = np.diff(stamps).astype("timedelta64[ns]").astype(np.float64) / 3.6e12
    else:
        gaps = np.diff(stamps).astype(np.float64)
    return np.concatenate([[in_clock_units(usual_step(series))], gaps]).astype(np.float32)


def usual_elapsed(data: SeriesSet) -> float:
    """The usual step over every series (:func:`data_step`, what a run stores as ``time_step``) in the
    liquid models' clock: the sampling interval they take their time scales from (1 when unknown)."""
    step = data_step(data)
    return in_clock_units(parse_step(step)) if step is not None else 1.0
