"""Predicting from files with a saved run: ``tsmoe predict RUN INPUT -o OUTPUT``.

- Runs on a table of observations (data set ``irregular``) read another such table (a file or a folder,
  with the run's column names and its variables matched by name) and write one row per entity: its ID
  (under the run's ``id_col``) and the prediction columns (``probability, prediction`` for a binary task).
- Runs on PhysioNet 2012 read a PhysioNet-format folder (``set-<x>/`` or ``.tar.gz`` beside outcomes, or a
  folder of stay files with no outcomes) and write ``record_id, probability, prediction`` per stay.
- Forecasters read a CSV of series or of windows (:mod:`tsmoe.forecast`, which says what each holds and
  gives back): the next ``horizon`` steps of each series, or one forecast per window; a model that reads
  text reads it from the file's text column.

With several runs (``tsmoe predict RUN RUN ... INPUT``, :func:`predict_file_ensemble`) the table is the
same, holding the members' mean probabilities (and the class they give) or mean forecasts.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tsmoe.data.csv_files import read_csv_checked
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.data.sources.irregular_table import load_irregular_table
from tsmoe.data.sources.physionet2012 import STATIC, VARIABLES, load_physionet2012, stay_rows, stays_to_steps
from tsmoe.errors import DataError
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


def _irregular_table(estimator, path: Path, overrides: dict) -> IrregularSet:
    """A table of observations read as the run read its own (column names, layout, time unit, its
    variables matched by name), with ``overrides`` (e.g. another static table, ``until``); no labels."""
    params, entry = estimator._data_params({**overrides, "observations": str(path)})
    return load_irregular_table(entry.for_run(params, estimator.meta_), with_labels=False)


def _predict_irregular(estimator, data: IrregularSet, id_column: str, every_step: bool = False) -> pd.DataFrame:
    """One row per record (its prediction from all its steps), or with ``every_step`` one per step of
    each record (its prediction from the steps up to there), with the step's time since the start."""
    dataset = IrregularDataset(data, IrregularNormalizer.from_state(estimator.state_))
    task = get_task(estimator.meta_["task"])
    if every_step:
        outputs, records, times = estimator.predict_every_step(dataset, collate_irregular, raw=True)
        clock = f"{getattr(estimator.data_params(), 'time_unit', 'hours')}_since_start"
        columns = _columns(estimator, task, outputs)
        return pd.DataFrame({id_column: data.record_ids[records], clock: times, **columns})
    outputs = estimator.predict_dataset(dataset, collate_irregular, raw=True)
    return pd.DataFrame({id_column: data.record_ids, **_columns(estimator, task, outputs)})


def _columns(estimator, task, raw: torch.Tensor) -> dict[str, np.ndarray]:
    """The table's columns for raw outputs: the task's (from the calibrated outputs) and, for a Venn-Abers
    run, the interval beside the probability (``probability_low``, ``probability_high``)."""
    columns = task.table_columns(estimator.calibrated(raw), estimator.state_)
    bounds = estimator.probability_bounds(raw)
    if not bounds:
        return columns
    ordered = {"probability": columns.pop("probability"), **bounds}
    return ordered | columns


def predict_file(estimator, path: Path, overrides: dict | None = None, every_step: bool = False) -> pd.DataFrame:
    """Predictions of a loaded :class:`~tsmoe.estimator.Estimator` for the file or folder at ``path``
    (``overrides``: ``data`` settings for reading it, for a run on a table of observations); with
    ``every_step`` (irregular data) the prediction after every step of every record."""
    if not path.exists():
        raise DataError(f"input '{path}' does not exist")
    if every_step and estimator.meta_["input_kind"] != "irregular":
        raise DataError("--per-step is for runs on irregular observations: a forecaster predicts per window")
    if estimator.config.data["name"] == "irregular":
        data = _irregular_table(estimator, path, overrides or {})
        return _predict_irregular(estimator, data, estimator.data_params().id_col, every_step)
    if overrides:
        raise DataError(f"--set data.* is for runs on a table of observations (data set 'irregular'), got {overrides}")
    if estimator.meta_["input_kind"] == "irregular":
        if not path.is_dir():
            raise DataError(f"input '{path}': a classifier of PhysioNet stays reads a PhysioNet-format folder")
        data = load_physionet2012(path) if list(path.glob("set-*")) else _stays_without_labels(path)
        return _predict_irregular(estimator, data, "record_id", every_step)
    frame = read_csv_checked(path, text_columns=(TEXT_COLUMN, text_column(estimator)))
    return forecast_table(estimator, frame, f"file '{path}'", path)


def rolling_interval_widths(
    estimator, path: Path, levels: list[float], windows: int | None = None
) -> tuple[str, dict[str, np.ndarray]]:
    """For ``tsmoe predict --intervals --calibration rolling``: :func:`tsmoe.forecast.rolling_interval_widths`
    of the series in the file at ``path``."""
    frame = read_csv_checked(path, text_columns=(TEXT_COLUMN, text_column(estimator)))
    return forecast_rolling_widths(estimator, frame, f"file '{path}'", levels, windows, path)


KEYS = ("record_id", "unique_id", "row", "step", "ds")  # the columns that name what a row predicts


def predict_file_ensemble(estimators: list, path: Path, overrides: dict | None = None) -> pd.DataFrame:
    """The table of :func:`predict_file` for an ensemble: each member predicts, then probabilities (or
    regression values, or forecasts) are averaged row by row; classes come from the mean probabilities."""
    return mean_prediction([predict_file(estimator, path, overrides) for estimator in estimators],
                           estimators[0].meta_["task"], f"input '{path}'", key_columns(estimators[0]))  # fmt: skip


def mean_prediction(
    frames: list[pd.DataFrame], task: str, where: str, extra_keys: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The members' tables (same rows, same columns) as one, by the ``task``'s rule: probabilities,
    regression values or forecasts averaged row by row, and classes taken from the mean probabilities."""
    first = frames[0]
    keys = [c for c in first.columns if c in (*KEYS, *extra_keys)]
    for number, frame in enumerate(frames[1:], start=1):
        if list(frame.columns) != list(first.columns) or not frame[keys].equals(first[keys]):
            raise DataError(
                f"{where}: ensemble members 0 and {number} predict different rows or columns "
                f"({list(first.columns)} against {list(frame.columns)})"
            )
    return get_task(task).mean_table(frames, keys)
