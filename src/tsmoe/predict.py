"""Predicting from files with a saved run: ``tsmoe predict RUN INPUT -o OUTPUT``.

- Runs on a table of observations (data set ``irregular``) read another such table (a file or a folder,
  with the run's column names and its variables matched by name) and write one row per entity: its ID
  (under the run's ``id_col``) and the prediction columns (``probability, prediction`` for a binary task).
- Runs on PhysioNet 2012 read a PhysioNet-format folder (``set-<x>/`` or ``.tar.gz`` beside outcomes, or a
  folder of stay files with no outcomes) and write ``record_id, probability, prediction`` per stay.
- Forecasters read a CSV of series or of windows (:mod:`tsmoe.forecast`, which says what each holds and
  gives back): the next ``horizon`` steps of each series, or one forecast per window; a model that reads
  text reads it from the file's text column.

With several runs (``tsmoe predict RUN RUN ... INPUT``, :func:`predict_table`) the table is the
same, holding the members' mean probabilities (and the class they give) or mean forecasts, after every step
too; from Python the same (``Estimator.predict_table``, ``Ensemble.predict_table``), from a path or a pandas
frame of observations.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsmoe.data.clock import NANOSECONDS, as_given
from tsmoe.data.csv_files import read_table_checked
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.data.sources.irregular_table import load_irregular_table
from tsmoe.data.sources.physionet2012 import STATIC, VARIABLES, load_physionet2012, stay_rows, stays_to_steps
from tsmoe.data.table_files import frame_as_parquet
from tsmoe.errors import ConfigError, DataError
from tsmoe.forecast import TEXT_COLUMN, forecast_table, key_columns, text_column
from tsmoe.forecast import rolling_interval_widths as forecast_rolling_widths
from tsmoe.tasks import get_task

log = logging.getLogger(__name__)


def _stays_without_labels(folder: Path) -> IrregularSet:
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"'{folder}' holds no stay files (*.txt) and no PhysioNet set")
    skipped: Counter[str] = Counter()
    stays = [stay_rows(str(f), f.read_text(), skipped) for f in files]
    if skipped["empty parameter"]:  # the loader's stated policy, reported the same way
        log.warning("%s: skipped %d row(s) with an empty parameter field", folder, skipped["empty parameter"])
    steps = stays_to_steps(stays)
    return IrregularSet(
        record_ids=np.array([stay.record_id for stay in stays], dtype=np.int64),
        offsets=steps.offsets,
        times=steps.times,
        values=steps.values,
        static=np.stack([stay.static for stay in stays]),
        labels=np.full(len(stays), -1, dtype=np.int64),
        variables=VARIABLES,
        static_names=STATIC,
    )


def _irregular_table(estimator, path: Path, overrides: dict, cache: bool = True) -> IrregularSet:
    """A table of observations read as the run read its own (column names, layout, time unit, its
    variables matched by name), with ``overrides`` (e.g. another static table, ``until``); no labels.
    ``cache``: keep the prepared arrays in the cache (a file read again), or not (a frame read once)."""
    params, entry = estimator._data_params({**overrides, "observations": str(path)})
    return load_irregular_table(entry.for_run(params, estimator.meta_), with_labels=False, cache=cache)


def _predict_irregular(
    estimator,
    data: IrregularSet,
    id_column: str,
    every_step: bool = False,
    every: float | None = None,
    align: str = "start",
) -> pd.DataFrame:
    """One row per record (its prediction from all its steps), or with ``every_step`` one per step of
    each record (its prediction from the steps up to there), with the step's time since the start; with
    ``every`` as well, those rows read on a clock (:func:`on_a_clock`)."""
    dataset = IrregularDataset(data, IrregularNormalizer.from_state(estimator.state_))
    task = get_task(estimator.meta_["task"])
    if every_step:
        outputs, records, times = estimator.predict_every_step(dataset, collate_irregular, raw=True)
        params = estimator.data_params()
        clock = f"{getattr(params, 'time_unit', 'hours')}_since_start"
        columns = _columns(estimator, task, outputs)
        frame = pd.DataFrame({id_column: data.record_ids[records], clock: times, **columns})
        if data.clock is None:  # times only since each record's start (PhysioNet stays: since admission)
            return frame if every is None else on_a_clock(frame, id_column, clock, every)
        return _with_given_times(frame, data, records, id_column, clock, params, every, align == "clock")
    outputs = estimator.predict_dataset(dataset, collate_irregular, raw=True)
    return pd.DataFrame({id_column: data.record_ids, **_columns(estimator, task, outputs)})


def _with_given_times(
    frame: pd.DataFrame,
    data: IrregularSet,
    records: np.ndarray,
    id_column: str,
    clock: str,
    params,
    every: float | None,
    aligned: bool = False,
) -> pd.DataFrame:
    """The per-step ``frame`` with each step's time as the table gave it, in a column named as the table's
    (``time``); read on a clock (``every``), each row's time on that clock as the table would give it and
    since the record's start, and the step's in ``step_time`` and ``step_<clock>``. The clock runs from
    each record's start, or (``aligned``) on multiples of ``every`` of the table's own times, where a
    record without any step has no time and so no row."""
    name = params.time_col
    frame.insert(1, name, _step_times(data, records))
    if every is None:
        frame[name] = as_given(frame[name].to_numpy(), data.clock.kind, params.time_unit)
        return frame
    origin = dict(zip(data.record_ids.tolist(), data.clock.origins.tolist(), strict=True))
    if aligned:
        out = on_a_clock(frame[frame[name].notna()].reset_index(drop=True), id_column, name, every)
        out = out.rename(columns={clock: f"step_{clock}"})
        since = out[name].to_numpy(np.float64) - out[id_column].map(origin).to_numpy(np.float64)
        if data.clock.kind == "timestamp":  # to the microsecond, as the times are: no float noise of 1e-11 h
            per_unit = NANOSECONDS[params.time_unit] / 1000
            since = np.round(since * per_unit) / per_unit
        out.insert(2, clock, since)
    else:
        out = on_a_clock(frame, id_column, clock, every).rename(columns={name: f"step_{name}"})
        absolute = out[id_column].map(origin).to_numpy(np.float64) + out[clock].to_numpy(np.float64)
        out.insert(1, name, absolute)
    for column in (name, f"step_{name}"):
        out[column] = as_given(out[column].to_numpy(np.float64), data.clock.kind, params.time_unit)
    return out


def _step_times(data: IrregularSet, records: np.ndarray) -> np.ndarray:
    """Each per-step row's time as the table gave it (``records (n,)``: each row's record, its rows
    together and in time order); NaN for the one empty step of a record without any."""
    if not len(records):
        return np.zeros(0)
    starts = np.flatnonzero(np.r_[True, records[1:] != records[:-1]])
    rank = np.arange(len(records)) - np.repeat(starts, np.diff(np.r_[starts, len(records)]))
    real = rank < data.lengths()[records]
    out = np.full(len(records), np.nan)
    out[real] = data.clock.steps[(data.offsets[records] + rank)[real]]
    return out


MAX_CLOCK_ROWS = 100_000_000  # a clock finer than this many rows is a typo, not a request


def check_clock(every: Any) -> None:
    """Refuse a clock interval that is not a positive finite number (before any prediction is made)."""
    if isinstance(every, bool) or not isinstance(every, int | float) or not (math.isfinite(every) and every > 0):
        raise ConfigError(f"every (--every) must be a positive number of the run's time unit, got {every!r}")


def on_a_clock(frame: pd.DataFrame, id_column: str, clock: str, every: float) -> pd.DataFrame:
    """Per-step predictions read at regular times (a risk at every hour): for each record a row at each
    multiple of ``every`` from its first step's time to the first multiple at or after its last step,
    holding the prediction after the latest step at or before that time (what was known then), that
    step's time in ``step_<clock>``. Before a record's first step nothing was known: no row. A step within
    a millionth of ``every`` after a multiple counts as at it (times are float32).

    ``frame``: the rows of :func:`predict_file` with ``every_step``, each record's rows together and in
    time order; ``clock`` its time column."""
    check_clock(every)
    records = frame[id_column].to_numpy()
    times = frame[clock].to_numpy(np.float64)
    starts = np.flatnonzero(np.r_[True, records[1:] != records[:-1]]) if len(frame) else np.zeros(0, np.int64)
    ends = np.append(starts[1:], len(frame)) if len(frame) else starts
    slack = every * 1e-6
    first = np.ceil((times[starts] - slack) / every)
    counts = (np.ceil((times[ends - 1] - slack) / every) - first + 1).astype(np.int64)
    if counts.sum() > MAX_CLOCK_ROWS:
        raise ConfigError(
            f"--every {every} would write {int(counts.sum()):,} rows (more than {MAX_CLOCK_ROWS:,}): choose a "
            "longer interval, in the run's time unit"
        )
    grids, rows = [], []
    for start, end, k, n in zip(starts, ends, first, counts, strict=True):
        grid = (k + np.arange(n)) * every
        rows.append(start + np.searchsorted(times[start:end], grid + slack, side="right") - 1)
        grids.append(grid)
    picked = np.concatenate(rows) if rows else np.zeros(0, int)
    out = frame.iloc[picked].reset_index(drop=True).rename(columns={clock: f"step_{clock}"})
    out.insert(1, clock, np.concatenate(grids) if grids else np.zeros(0))
    return out


def _columns(estimator, task, raw: torch.Tensor) -> dict[str, np.ndarray]:
    """The table's columns for raw outputs: the task's (from the calibrated outputs) and, for a Venn-Abers
    run, the interval beside the probability (``probability_low``, ``probability_high``)."""
    columns = task.table_columns(estimator.calibrated(raw), estimator.state_, estimator.meta_.get("class_names"))
    bounds = estimator.probability_bounds(raw)
    if not bounds:
        return columns
    ordered = {"probability": columns.pop("probability"), **bounds}
    return ordered | columns


def predict_file(
    estimator,
    path: Path,
    overrides: dict | None = None,
    every_step: bool = False,
    every: float | None = None,
    align: str = "start",
    cache: bool = True,
) -> pd.DataFrame:
    """Predictions of a loaded :class:`~tsmoe.estimator.Estimator` for the file or folder at ``path``
    (``overrides``: ``data`` settings for reading it, for a run on a table of observations); with
    ``every_step`` (irregular data) the prediction after every step of every record, and with ``every``
    as well, those predictions read on a regular clock (:func:`on_a_clock`): multiples of ``every`` from
    each record's start (``align="start"``), or of a table's own times (``"clock"``). ``cache`` false: a
    table of observations is read without keeping its arrays in the cache (read once)."""
    if align not in ("start", "clock"):
        raise ConfigError(f"align is 'start' (each record's first step) or 'clock' (the table's own hours), "
                          f"got {align!r}")  # fmt: skip
    if not path.exists():
        raise DataError(f"input '{path}' does not exist")
    if every_step and estimator.meta_["input_kind"] != "irregular":
        raise DataError("--per-step is for runs on irregular observations: a forecaster predicts per window")
    if every is not None and not every_step:
        raise ConfigError("every reads the predictions after every step on a clock: it needs every_step")
    if estimator.config.data["name"] == "irregular":
        data = _irregular_table(estimator, path, overrides or {}, cache)
        return _predict_irregular(estimator, data, estimator.data_params().id_col, every_step, every, align)
    if overrides:
        raise DataError(f"--set data.* is for runs on a table of observations (data set 'irregular'), got {overrides}")
    if estimator.meta_["input_kind"] == "irregular":
        if not path.is_dir():
            raise DataError(f"input '{path}': a classifier of PhysioNet stays reads a PhysioNet-format folder")
        if align != "start":
            raise ConfigError("--align clock reads a table's own times; PhysioNet stays' clocks start at admission")
        data = load_physionet2012(path) if list(path.glob("set-*")) else _stays_without_labels(path)
        return _predict_irregular(estimator, data, "record_id", every_step, every)
    frame = read_table_checked(path, text_columns=(TEXT_COLUMN, text_column(estimator)))
    return forecast_table(estimator, frame, f"file '{path}'", path)


def rolling_interval_widths(
    estimators: list, path: Path, levels: list[float], windows: int | None = None
) -> tuple[str, dict[str, np.ndarray]]:
    """For ``tsmoe predict --intervals --calibration rolling``: :func:`tsmoe.forecast.rolling_interval_widths`
    of the series in the file at ``path``, for one run or the mean forecast of several."""
    frame = read_table_checked(path, text_columns=(TEXT_COLUMN, *(text_column(e) for e in estimators)))
    return forecast_rolling_widths(estimators, frame, f"file '{path}'", levels, windows, path)


KEYS = ("record_id", "unique_id", "row", "step", "ds")  # the columns that name what a row predicts


def predict_table(
    estimators: list,
    observations: str | Path | pd.DataFrame,
    per_step: bool = False,
    every: float | None = None,
    align: str = "start",
    overrides: dict | None = None,
) -> pd.DataFrame:
    """What ``tsmoe predict`` writes for one run, or for the mean of several (``estimators``), from a
    file or folder, or from a pandas frame of observations (a run on a table of observations): the frame is
    written as Parquet in a temporary folder, read by the same rules as a file and not cached; an error names
    the frame's column and row. ``every`` implies ``per_step``."""
    if every is not None:  # a clock reads the predictions after every step
        check_clock(every)
        per_step = True
    if isinstance(observations, str | Path):
        return _predict_path(estimators, Path(observations), overrides, per_step, every, align, cache=True)
    if not isinstance(observations, pd.DataFrame):
        raise DataError(f"predict_table reads a path or a pandas DataFrame, got {type(observations).__name__}")
    if estimators[0].config.data["name"] != "irregular":
        raise ConfigError(
            "predict_table reads a frame as a table of observations (data set 'irregular'); "
            "a forecaster forecasts a frame of series with forecast(frame)"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = frame_as_parquet(observations, Path(folder) / "observations.parquet", "the frame")
        try:
            return _predict_path(estimators, path, overrides, per_step, every, align, cache=False)
        except DataError as error:  # name the frame, not the file it passed through
            raise DataError(str(error).replace(f"file '{path}'", "the frame")) from None


def _predict_path(
    estimators: list, path: Path, overrides: dict | None, per_step: bool, every: float | None, align: str, cache: bool
) -> pd.DataFrame:
    """:func:`predict_file` for one run; for an ensemble, each member's table, then probabilities (or
    regression values, or forecasts) averaged row by row and classes from the mean probabilities. After every
    step the rows are each step's, or each clock time's, of every entity: the members must give the same ones
    (the same times, since the start too)."""
    frames = [predict_file(estimator, path, overrides, per_step, every, align, cache) for estimator in estimators]
    if len(frames) == 1:
        return frames[0]
    unit = getattr(estimators[0].data_params(), "time_unit", "hours")
    id_column, time_column = key_columns(estimators[0])
    since = f"{unit}_since_start"  # the clock's columns: each row's time and its step's (step_...)
    keys = (id_column, "record_id", time_column, since, f"step_{time_column}", f"step_{since}")
    return mean_prediction(frames, estimators[0].meta_, f"input '{path}'", keys)


def mean_prediction(
    frames: list[pd.DataFrame], meta: dict, where: str, extra_keys: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The members' tables (same rows, same columns) as one, by the rule of the task of the runs' ``meta``:
    probabilities, regression values or forecasts averaged row by row, and classes taken from the mean
    probabilities (by name where the runs name them)."""
    first = frames[0]
    keys = [c for c in first.columns if c in (*KEYS, *extra_keys)]
    for number, frame in enumerate(frames[1:], start=1):
        if list(frame.columns) != list(first.columns) or not frame[keys].equals(first[keys]):
            differ = set(frame.columns) ^ set(first.columns)
            why = ""
            if {"probability_low", "probability_high"} & differ:
                why = " (one run is calibrated with venn_abers, the other not: calibrate them alike)"
            elif any(re.fullmatch(r".+_q\d+(\.\d+)?", column) for column in differ):
                why = " (their quantile columns differ: train them with one model.quantiles)"
            raise DataError(
                f"{where}: ensemble members 0 and {number} predict different rows or columns "
                f"({list(first.columns)} against {list(frame.columns)}){why}"
            )
    return get_task(meta["task"]).mean_table(frames, keys, meta.get("class_names"))
