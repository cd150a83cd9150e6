"""Predicting from files with a saved run: ``tsmoe predict RUN INPUT -o OUTPUT``.

- Classifiers read a PhysioNet-format folder (``set-<x>/`` or ``.tar.gz`` beside outcomes, or a folder of
  stay files with no outcomes) and write ``record_id, probability, prediction`` per stay.
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

from tsmoe.data.csv_files import read_csv_checked
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.data.sources.physionet2012 import STATIC, VARIABLES, load_physionet2012, parse_stay
from tsmoe.errors import DataError
from tsmoe.forecast import TEXT_COLUMN, forecast_table, key_columns, text_column
from tsmoe.tasks import get_task

log = logging.getLogger(__name__)


def _stays_without_labels(folder: Path) -> IrregularSet:
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"'{folder}' holds no stay files (*.txt) and no PhysioNet set")
    skipped: Counter[str] = Counter()
    parsed = [parse_stay(str(f), f.read_text(), skipped) for f in files]
    if skipped["empty parameter"]:  # the loader's stated policy, reported the same way
        log.warning("%s: skipped %d row(s) with an empty parameter field", folder, skipped["empty parameter"])
    lengths = [len(p[1]) for p in parsed]
    return IrregularSet(
        record_ids=np.array([p[0] for p in parsed], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        times=np.concatenate([p[1] for p in parsed]).astype(np.float32),
        values=np.concatenate([p[2] for p in parsed]).astype(np.float32),
        static=np.stack([p[3] for p in parsed]),
        labels=np.full(len(parsed), -1, dtype=np.int64),
        variables=VARIABLES,
        static_names=STATIC,
    )


def _predict_stays(estimator, path: Path) -> pd.DataFrame:
    data = load_physionet2012(path) if list(path.glob("set-*")) else _stays_without_labels(path)
    dataset = IrregularDataset(data, IrregularNormalizer.from_state(estimator.state_))
    logits = estimator.predict_dataset(dataset, collate_irregular)
    columns = get_task(estimator.meta_["task"]).table_columns(logits, estimator.state_)
    return pd.DataFrame({"record_id": data.record_ids, **columns})


def predict_file(estimator, path: Path) -> pd.DataFrame:
    """Predictions of a loaded :class:`~tsmoe.estimator.Estimator` for the file or folder at ``path``."""
    if not path.exists():
        raise DataError(f"input '{path}' does not exist")
    if estimator.meta_["input_kind"] == "irregular":
        if not path.is_dir():
            raise DataError(f"input '{path}': a classifier of irregular series reads a PhysioNet-format folder")
        return _predict_stays(estimator, path)
    frame = read_csv_checked(path, text_columns=(TEXT_COLUMN, text_column(estimator)))
    return forecast_table(estimator, frame, f"file '{path}'", path)


KEYS = ("record_id", "unique_id", "row", "step", "ds")  # the columns that name what a row predicts


def predict_file_ensemble(estimators: list, path: Path) -> pd.DataFrame:
    """The table of :func:`predict_file` for an ensemble: each member predicts, then probabilities (or
    regression values, or forecasts) are averaged row by row; classes come from the mean probabilities."""
    return mean_prediction([predict_file(estimator, path) for estimator in estimators],
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
