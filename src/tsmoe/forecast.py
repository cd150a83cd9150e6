"""Forecasts of what follows a table (a CSV file read by ``tsmoe predict``, or a DataFrame given to
:meth:`tsmoe.Estimator.forecast`) or a data set (the run's own, ``tsmoe predict --after-data``) with a
saved forecasting run.

- A table of series: long format (``unique_id, ds, y`` ...) or, from a file, wide (a ``date`` column and
  the trained channels). The last ``lookback`` rows of each series are forecast ``horizon`` steps ahead:
  ``unique_id, step, ds`` (when the frequency can be inferred) and one column per target. A model that
  reads text needs a ``text`` column (a csv run: its ``data.text_col``), each row's text dated by its
  row; a forecast sees the ``text_k`` most recent texts dated before its first step, as in training.
- A table of windows (a column ``input_seq``: each row's ``lookback`` input values, and ``text`` for a
  model that reads it, as the MoME paper's files hold them): one forecast per row, ``row, step, value``,
  or for a trend model ``row, prediction, probability_down/flat/up``.
- A data set as its loader gives it (raw Time-MMD with its dated reports, say): the next ``horizon``
  steps of each series, the texts aligned as for a series table.

``where`` (``file 'x.csv'``, ``the frame``, ``data set 'time_mmd'``) names the input in every error.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

from tsmoe.data.adapter import text_encoder_options
from tsmoe.data.csv_files import wide_frame_to_series
from tsmoe.data.fixed_windows import parse_number_lists
from tsmoe.data.long_format import from_long_dataframe
from tsmoe.data.parsing import check_texts_column
from tsmoe.data.sampling import elapsed_before, parse_step, step_text, usual_step, warn_of_gaps
from tsmoe.data.series import SeriesSet
from tsmoe.data.text_windows import (
    TREND_CLASSES,
    TextWindowDataset,
    WindowFacts,
    collate_text_windows,
    dated_tables,
    encode_texts,
    visible_facts,
)
from tsmoe.data.windows import StandardScaler
from tsmoe.errors import DataError
from tsmoe.intervals import level_name, recent_half_widths
from tsmoe.tasks import get_task

log = logging.getLogger(__name__)

TEXT_COLUMN = "text"  # a file's text column (a run on a csv data set reads its own data.text_col)
WINDOW_COLUMN = "input_seq"  # a file with this column holds one window per row (the MoME paper's files)


class TextSetting(NamedTuple):
    """How a run reads text: its encoder and the encoder's options, and for dated text the ``k`` most
    recent texts a forecast sees (``None`` for runs trained on fixed windows with one text each), their
    order, and whether each is encoded on its own (``each_fact``) or all joined."""

    encoder: str
    options: dict
    k: int | None
    newest_first: bool
    each_fact: bool


def reads_text(estimator) -> bool:
    """Whether a loaded run's model reads text (it was trained with a text encoder)."""
    return bool(estimator.meta_["dims"].get("text_dim"))


def _text_setting(estimator) -> TextSetting:
    params = estimator.data_params()
    return TextSetting(
        params.text_encoder,
        text_encoder_options(params),
        getattr(params, "text_k", None),
        getattr(params, "text_newest_first", False),
        getattr(params, "text_each_fact", False),
    )


def text_column(estimator) -> str:
    """The column a series file's texts are read from: the run's ``data.text_col``, else ``text``."""
    return getattr(estimator.data_params(), "text_col", None) or TEXT_COLUMN


def _text_cells(frame: pd.DataFrame, column: str, where: str) -> list[str | None]:
    """The ``column`` of ``frame`` as texts (NA: the null text); anything but a string is an error."""
    cells = frame[column]
    check_texts_column(cells, lambda i: f"{where}, column '{column}', row {i + 1}")
    return [v if isinstance(v, str) else None for v in cells]


def key_columns(estimator) -> tuple[str, str]:
    """The names a run gives a series' id and time columns: its ``data.id_col`` and ``data.time_col`` (a run
    on a CSV of the user's), else ``unique_id`` and ``ds``. Tables it reads and writes use these."""
    params = estimator.data_params()
    return getattr(params, "id_col", "unique_id"), getattr(params, "time_col", "ds")


WIDE_FRAME_NAME = "series"  # the id a wide frame's one series takes in the forecast table (a file: its name)


def _read_series(
    frame: pd.DataFrame,
    where: str,
    path: Path | None,
    channel_names: list[str],
    text_col: str | None,
    keys: tuple[str, str] = ("unique_id", "ds"),
) -> SeriesSet:
    """The table's series, with each series' dated texts (``SeriesSet.texts``) when ``text_col`` is named.
    Long format names each series in ``keys`` (id and time columns, the run's own names); a wide table (a
    column per channel, times in the run's time column or ``date``, or none) is one series, named after its
    file (``path``), or :data:`WIDE_FRAME_NAME` for a frame in memory."""
    id_col, time_col = keys
    if {id_col, time_col} <= set(frame.columns):
        return from_long_dataframe(
            frame, id_col=id_col, time_col=time_col, target_col=channel_names[0],
            covariates=tuple(channel_names[1:]), text_col=text_col, source=where,
        )  # fmt: skip
    missing = [c for c in channel_names if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: give series in long format (columns {id_col}, {time_col}, {', '.join(channel_names)}), wide "
            f"(a column per channel: the model needs {missing} too) or windows (a column '{WINDOW_COLUMN}'); it has "
            f"{list(frame.columns)}"
        )
    stamps = next((c for c in (time_col, "date") if c in frame.columns and c not in channel_names), None)
    if stamps and frame[stamps].duplicated().any():  # one wide series has each time once: several series?
        row = int(np.flatnonzero(frame[stamps].duplicated().to_numpy())[0]) + 1
        raise DataError(
            f"{where}, column '{stamps}', row {row}: a time seen before; a table of several series in long format "
            f"names each in a column '{id_col}' (the run's data.id_col); it has {list(frame.columns)}"
        )
    name = path.stem if path is not None else WIDE_FRAME_NAME
    data = wide_frame_to_series(frame[([stamps] if stamps else []) + channel_names], where, stamps, None, name)
    if text_col:
        data.texts[name] = (data.series[0].timestamps, _text_cells(frame, text_col, where))
    return data


def _future_stamps(stamps: np.ndarray, horizon: int) -> np.ndarray | pd.DatetimeIndex | None:
    """The timestamps of the ``horizon`` steps after ``stamps``: dates at the frequency pandas infers from
    the last 50, else at their most common step where more than half the steps are that step (weekly data
    with a gap, say); the next integers for integer stamps; ``None`` when neither is known."""
    if np.issubdtype(stamps.dtype, np.datetime64) and len(stamps) >= 3:
        recent = pd.DatetimeIndex(stamps[-min(len(stamps), 50) :])
        with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
            warnings.simplefilter("ignore", DeprecationWarning)
            freq = pd.infer_freq(recent)
        if freq is not None:
            return pd.date_range(recent[-1], periods=horizon + 1, freq=to_offset(freq))[1:]
        steps = pd.Series(recent[1:] - recent[:-1]).value_counts()  # Timedelta -> how many times
        if steps.iloc[0] * 2 > steps.sum():
            return pd.DatetimeIndex([recent[-1] + steps.index[0] * k for k in range(1, horizon + 1)])
        return None
    if np.issubdtype(stamps.dtype, np.integer):
        return stamps[-1] + np.arange(1, horizon + 1)
    return None


def _dated_text_setting(estimator, where: str) -> TextSetting | None:
    """The text setting of a run that reads dated text (``None`` for one that reads no text); a run trained
    on fixed windows with one text each is refused: it reads windows, not series."""
    meta = estimator.meta_
    lookback = meta["dims"]["lookback"]
    if get_task(meta["task"]).is_classifier:
        raise DataError(
            f"{where}: this run predicts a {meta['task']} label per window: give windows "
            f"(a column '{WINDOW_COLUMN}' holding each window's {lookback} values as a list)"
        )
    if not reads_text(estimator):
        return None
    setting = _text_setting(estimator)
    if setting.k is None:
        raise DataError(
            f"{where}: this run was trained on fixed windows with one text each: give windows, "
            f"columns '{WINDOW_COLUMN}' (the {lookback} input values as a list) and '{TEXT_COLUMN}'"
        )
    return setting


def forecast_series(estimator, frame: pd.DataFrame, where: str, path: Path | None = None) -> pd.DataFrame:
    """:func:`forecast_after` the series of ``frame`` (read from ``path``, if a file), with the texts of its
    text column for a model that reads text."""
    return forecast_after(estimator, *read_series_table(estimator, frame, where, path))


def read_series_table(
    estimator, frame: pd.DataFrame, where: str, path: Path | None = None
) -> tuple[SeriesSet, str, TextSetting | None]:
    """The series of ``frame`` as the run reads them (long format, or wide from a file), ``where``, and the
    run's text setting (``None`` for a run without text), with the texts of its text column."""
    text = _dated_text_setting(estimator, where)
    text_col = text_column(estimator) if text else None
    if text_col and text_col not in frame.columns:
        raise DataError(
            f"{where}: this run reads text ({text.encoder}), so it needs a text column '{text_col}' "
            f"(each row's text, dated by its row; an empty cell is no text); it has {list(frame.columns)}"
        )
    if not text and TEXT_COLUMN in frame.columns:
        log.warning("%s: column '%s' is not used: this run reads no text", where, TEXT_COLUMN)
    data = _read_series(frame, where, path, estimator.meta_["channel_names"], text_col, key_columns(estimator))
    return data, where, text


def forecast_data_set(estimator, data: object, where: str) -> pd.DataFrame:
    """:func:`forecast_after` the series of a data set as its loader gives them (the run's own, say), with
    the texts the loader holds for a model that reads text."""
    if not isinstance(data, SeriesSet):
        raise DataError(
            f"{where}: holds fixed windows, not series, so nothing follows it: give windows to forecast "
            f"(a column '{WINDOW_COLUMN}')"
        )
    text = _dated_text_setting(estimator, where)
    if text and not data.texts:
        raise DataError(f"{where}: this run reads text, but the data set holds none")
    return forecast_after(estimator, data, where, text)


def check_sampling(data: SeriesSet, trained: str | None, where: str) -> None:
    """Refuse series timed otherwise (dates, integer steps) or sampled at another step than the run was trained
    on; warn of each series' first hole
    (rows further apart than 1.5 steps), which the model reads as if its two sides were consecutive."""
    if trained is None:  # a run from before the step was stored, or trained on windows
        return
    step = parse_step(trained)
    trained_on_dates = isinstance(step, pd.Timedelta)
    for series in data.series:
        if np.issubdtype(series.timestamps.dtype, np.datetime64) != trained_on_dates:
            given, trained_on = ("integer steps", "dates") if trained_on_dates else ("dates", "integer steps")
            raise DataError(
                f"{where}, series '{series.name}': its times are {given}, but the run was trained on series timed "
                f"by {trained_on}; give the times as its training data did"
            )
        own = usual_step(series)
        if own is not None and type(own) is type(step) and own != step:
            raise DataError(
                f"{where}, series '{series.name}': sampled every {step_text(own)}, but the run was trained on "
                f"data sampled every {step_text(step)}; resample the series to that step first"
            )
    warn_of_gaps(data, where, step)


def forecast_after(estimator, data: SeriesSet, where: str, text: TextSetting | None = None) -> pd.DataFrame:
    """Forecast the ``horizon`` steps after the last ``lookback`` rows of each series of ``data``. With a
    ``text`` setting, each forecast sees, as in training, the ``text.k`` most recent texts of its series
    (``data.texts``) dated strictly before its first step (before or at the last row when no frequency
    can be inferred), in the run's order. Returns ``unique_id, step, ds`` (the run's own id and time column
    names; ``ds`` when known) and one column per target."""
    meta = estimator.meta_
    lookback, horizon = meta["dims"]["lookback"], meta["dims"]["horizon"]
    check_sampling(data, meta.get("time_step"), where)
    futures, origins = [], []
    for number, series in enumerate(data.series):
        if len(series.values) < lookback:
            raise DataError(f"{where}, series '{series.name}': {len(series.values)} rows, the model needs {lookback}")
        future = _future_stamps(series.timestamps, horizon)
        # texts strictly before the first forecast step; with no known step, anything up to the last row
        start = future[0] if future is not None else series.timestamps[-1] + np.timedelta64(1, "ns")
        futures.append(future)
        origins.append((number, len(series.values), start))
    items, collate = _window_items(estimator, data, origins, text)
    scaler = StandardScaler.from_state(estimator.state_)
    channels = meta["target_channels"]
    forecasts = estimator.predict_dataset(items, collate)
    quantiles = estimator.predict_quantiles(items, collate)  # (N, H, C, Q) for a quantile forecaster
    levels = getattr(estimator.model_, "levels", [])
    id_col, time_col = key_columns(estimator)
    rows = []
    for number, (series, forecast, future) in enumerate(zip(data.series, forecasts, futures, strict=True)):
        values = scaler.inverse(forecast[:, channels], channels).numpy()
        bands = [scaler.inverse(quantiles[number][:, channels, q], channels).numpy() for q in range(len(levels))]
        for step in range(horizon):
            row = {id_col: series.name, "step": step + 1}
            if future is not None:
                row[time_col] = future[step]
            row.update({meta["channel_names"][c]: float(values[step, j]) for j, c in enumerate(channels)})
            for level, band in zip(levels, bands, strict=True):  # <target>_q10, <target>_q90, ...
                row.update({f"{meta['channel_names'][c]}_q{level_name(level)}": float(band[step, j])
                            for j, c in enumerate(channels)})  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows)


def _window_items(
    estimator, data: SeriesSet, origins: list[tuple[int, int, object]], text: TextSetting | None
) -> tuple[list[dict], object]:
    """Model items for windows ending at given rows, and their collate function: per ``(series number, origin,
    start)`` the ``lookback`` rows before row ``origin`` (``x``, scaled; ``dt``, the gaps the liquid models
    integrate), the ``horizon`` rows from it where the series holds them (``y``, else zeros), and with a
    ``text`` setting the texts dated strictly before ``start``."""
    lookback, horizon = estimator.meta_["dims"]["lookback"], estimator.meta_["dims"]["horizon"]
    scaler = StandardScaler.from_state(estimator.state_)
    tables = dated_tables(data) if text else {}
    items, facts, gaps = [], [], {}
    for number, origin, start in origins:
        series = data.series[number]
        x = torch.from_numpy(scaler.transform(series.values[origin - lookback : origin]))
        known = series.values[origin : origin + horizon]
        y = torch.from_numpy(scaler.transform(known)) if len(known) == horizon else torch.zeros(horizon, x.shape[-1])
        if number not in gaps:  # once per series: a backtest asks for many windows of each
            gaps[number] = elapsed_before(series)
        dt = torch.from_numpy(gaps[number][origin - lookback : origin])
        items.append({"x": x, "y": y, "series": torch.tensor(number), "dt": dt})
        if text:
            facts.append(visible_facts(tables.get(series.name), start, text.k, text.newest_first))
    if not text:
        return items, None
    encoded = WindowFacts(facts, text.encoder, text.each_fact, **text.options)
    for number, item in enumerate(items):
        window = encoded.window(number)
        item["text_tokens"], item["text_pooled"] = torch.from_numpy(window.tokens), torch.from_numpy(window.pooled)
    return items, collate_text_windows


def held_windows(estimator, data: SeriesSet) -> int:
    """How many windows with a known target the shortest series of ``data`` holds for this run (its lookback
    and horizon): rolling calibration's default pool."""
    lookback, horizon = estimator.meta_["dims"]["lookback"], estimator.meta_["dims"]["horizon"]
    return max(1, min(len(s.values) - lookback - horizon + 1 for s in data.series))


def recent_errors(estimator, data: SeriesSet, where: str, text: TextSetting | None, windows: int) -> np.ndarray:
    """The run's errors ``forecast - target`` ``(S, windows, H, C)`` (targets, original scale) on each of the
    ``S`` series of ``data``, from the ``windows`` latest windows whose whole target the series holds (origins
    ``L - H - windows + 1 .. L - H`` of a series of ``L`` rows): the errors known when forecasting what follows
    it, for intervals calibrated on the input's own recent past. Every run of an ensemble with this horizon
    forecasts the same targets here, whatever its lookback."""
    meta = estimator.meta_
    lookback, horizon, channels = meta["dims"]["lookback"], meta["dims"]["horizon"], meta["target_channels"]
    check_sampling(data, meta.get("time_step"), where)
    origins = []
    for number, series in enumerate(data.series):
        held = len(series.values) - lookback - horizon + 1
        if held < windows:
            raise DataError(
                f"{where}, series '{series.name}': {len(series.values)} rows hold {max(held, 0)} windows with a known "
                f"target (lookback {lookback} + horizon {horizon}); calibrating on {windows} needs "
                f"{lookback + horizon + windows - 1} rows"
            )
        last = len(series.values) - horizon
        origins += [(number, o, series.timestamps[o]) for o in range(last - windows + 1, last + 1)]
    items, collate = _window_items(estimator, data, origins, text)
    scaler = StandardScaler.from_state(estimator.state_)
    forecasts = scaler.inverse(estimator.predict_dataset(items, collate)[..., channels], channels)
    targets = scaler.inverse(torch.stack([item["y"] for item in items])[..., channels], channels)
    errors = (forecasts.double() - targets.double()).numpy()
    return errors.reshape(len(data.series), windows, horizon, len(channels))


def rolling_interval_widths(
    estimators: list,
    frame: pd.DataFrame,
    where: str,
    levels: list[float],
    windows: int | None = None,
    path: Path | None = None,
) -> tuple[str, dict[str, np.ndarray]]:
    """Each series of ``frame``'s own conformal half-widths ``(L, H, C)`` on the original scale, from the errors
    of one run (``estimators`` of one), or of the mean forecast of several (an ensemble), on the ``windows``
    latest windows of that series whose whole target it holds (default: as many as its shortest series holds
    for every run; :func:`recent_errors`), with the forecast table's id column: what
    :func:`tsmoe.intervals.with_interval_columns` takes as ``by_series``."""
    first = estimators[0]
    if first.meta_["task"] != "forecast":
        raise DataError(f"intervals are for forecasters; this run's task is {first.meta_['task']}")
    if WINDOW_COLUMN in frame.columns:
        raise DataError(
            f"{where} holds fixed windows, not series: no history to calibrate on; use calibration 'validation'"
        )
    read = [read_series_table(estimator, frame, where, path) for estimator in estimators]  # (data, where, text)
    if windows is None:
        windows = min(held_windows(estimator, data) for estimator, (data, _, _) in zip(estimators, read, strict=True))
    errors = [recent_errors(estimator, *each, windows) for estimator, each in zip(estimators, read, strict=True)]
    names = [series.name for series in read[0][0].series]
    for number, (data, _, _) in enumerate(read[1:], start=1):
        if [series.name for series in data.series] != names or errors[number].shape != errors[0].shape:
            raise DataError(
                f"{where}: ensemble members 0 and {number} read other series or targets from it "
                f"({names} against {[series.name for series in data.series]}, errors {errors[0].shape} against "
                f"{errors[number].shape})"
            )
    residuals = np.abs(np.mean(errors, axis=0))  # the mean forecast's errors: the targets are the same
    by_name = dict(zip(names, residuals, strict=True))
    return key_columns(first)[0], recent_half_widths(by_name, levels, read[0][1])


def forecast_windows(estimator, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """One forecast (or trend class) per row of a table of windows, as the MoME paper's files hold windows:
    ``input_seq`` (a JSON list of the ``lookback`` input values) and, for a model that reads text, that
    window's ``text``. Rows are numbered from 1 in table order."""
    meta = estimator.meta_
    lookback, horizon = meta["dims"]["lookback"], meta["dims"]["horizon"]
    if meta["dims"]["n_channels"] != 1:
        raise DataError(
            f"{where}: a table of windows holds one series per row, but this run reads "
            f"{meta['dims']['n_channels']} channels: give a series file (long or wide CSV)"
        )
    inputs = parse_number_lists(frame[WINDOW_COLUMN].tolist(), where, WINDOW_COLUMN)
    if inputs.shape[1] != lookback:
        raise DataError(
            f"{where}, column '{WINDOW_COLUMN}': windows of {inputs.shape[1]} values; the model reads {lookback}"
        )
    table = index = None
    if reads_text(estimator):
        if TEXT_COLUMN not in frame.columns:
            raise DataError(
                f"{where}: this run reads text, so it needs a column '{TEXT_COLUMN}' (each window's "
                f"text; an empty cell is no text); it has {list(frame.columns)}"
            )
        setting = _text_setting(estimator)
        table, index = encode_texts(_text_cells(frame, TEXT_COLUMN, where), setting.encoder, **setting.options)
    elif TEXT_COLUMN in frame.columns:
        log.warning("%s: column '%s' is not used: this run reads no text", where, TEXT_COLUMN)
    scaler = StandardScaler.from_state(estimator.state_)
    scaled = scaler.transform(inputs.reshape(-1, 1)).reshape(inputs.shape)
    dataset = TextWindowDataset(scaled, np.zeros((len(inputs), horizon), np.float32), table, index)
    output = estimator.predict_dataset(dataset, collate_text_windows)
    numbers = np.arange(1, len(inputs) + 1)
    task = get_task(meta["task"])
    if task.is_classifier:  # trend: down / flat / up
        return pd.DataFrame({"row": numbers, **task.table_columns(output, estimator.state_, TREND_CLASSES)})
    values = scaler.inverse(output[..., :1], [0]).numpy()[..., 0]  # (N, horizon)
    name = meta["channel_names"][0]
    columns = {"row": np.repeat(numbers, horizon), "step": np.tile(np.arange(1, horizon + 1), len(numbers)),
               name: values.reshape(-1)}  # fmt: skip
    quantiles = estimator.predict_quantiles(dataset, collate_text_windows)  # (N, horizon, 1, Q), or None
    for q, level in enumerate(getattr(estimator.model_, "levels", [])):
        columns[f"{name}_q{level_name(level)}"] = scaler.inverse(quantiles[..., :1, q], [0]).numpy().reshape(-1)
    return pd.DataFrame(columns)


def forecast_table(estimator, frame: pd.DataFrame, where: str, path: Path | None = None) -> pd.DataFrame:
    """Forecasts for a table of windows (it has ``input_seq``) or of series (any other)."""
    if WINDOW_COLUMN in frame.columns:
        return forecast_windows(estimator, frame, where)
    return forecast_series(estimator, frame, where, path)
