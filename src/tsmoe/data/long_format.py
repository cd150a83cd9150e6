"""Users' own data in long format: one row per (series, timestamp), as neuralforecast and Darts take it.

Columns: ``unique_id`` (series name), ``ds`` (timestamp), ``y`` (target), plus any numeric covariate
columns named in ``covariates`` and an optional text column. Nothing is sorted, filled or dropped
silently: unsorted or duplicated timestamps, NaN targets and non-numeric values are errors that name
the column and the row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tsmoe.data.csv_dialect import decimal_comma_hint
from tsmoe.data.csv_files import read_table_checked
from tsmoe.data.parsing import check_float32, parse_dates
from tsmoe.data.series import Series, SeriesSet
from tsmoe.errors import DataError


def _row(frame: pd.DataFrame, position: int) -> int:
    """1-based data row (header excluded) of a frame position, for messages."""
    return int(frame.index[position]) + 1 if isinstance(frame.index, pd.RangeIndex) else position + 1


def _numeric(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{source}, column '{column}', row {_row(frame, position)}: "
            f"'{frame[column].iloc[position]}' is not a number{decimal_comma_hint(frame[column].iloc[position])}"
        )
    return values.to_numpy(dtype=np.float64)


def _timestamps(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """Integer steps or dates, never a mix: ``(N,)`` int64 or datetime64[ns]. An empty cell (NaN, NaT, a
    nullable integer's NA) is refused as missing, before its type could make it look like something else."""
    raw = frame[column]

    def where(position: int) -> str:
        return f"{source}, column '{column}', row {_row(frame, position)}"

    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataError(f"{where(int(np.flatnonzero(missing)[0]))}: the timestamp is missing")
    if pd.api.types.is_bool_dtype(raw):
        raise DataError(f"{source}, column '{column}': holds true/false values, not timestamps")
    if pd.api.types.is_integer_dtype(raw):
        if pd.api.types.is_unsigned_integer_dtype(raw):
            _refuse_beyond_int64(raw.to_numpy() > np.iinfo(np.int64).max, raw, where)
        return raw.to_numpy(dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(raw):
        return parse_dates(raw, where)  # zoned dates to UTC, as in a text column
    is_number = raw.map(lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool)).to_numpy()
    if is_number.all():
        numbers = raw.to_numpy(dtype=np.float64)
        fractional = np.flatnonzero(numbers % 1 != 0)  # an infinity too (its remainder is NaN)
        if len(fractional):
            position = int(fractional[0])
            raise DataError(
                f"{where(position)}: '{raw.iloc[position]}' is not a whole step; timestamps are integer steps or dates"
            )
        _refuse_beyond_int64(np.abs(numbers) >= 2.0**63, raw, where)
        return numbers.astype(np.int64)
    if is_number.any():
        position = int(np.flatnonzero(is_number)[0])
        raise DataError(
            f"{where(position)}: the number '{raw.iloc[position]}' among dates; timestamps are integer steps or "
            "dates, not a mix"
        )
    return parse_dates(raw, where)


def _refuse_beyond_int64(beyond: np.ndarray, raw: pd.Series, where: Callable[[int], str]) -> None:
    """Refuse the first step ``beyond`` marks: too large for the 64-bit integers steps are kept in."""
    if beyond.any():
        position = int(np.argmax(beyond))
        raise DataError(f"{where(position)}: the step {raw.iloc[position]} is beyond the range of 64-bit integers")


def from_long_dataframe(
    frame: pd.DataFrame,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    covariates: tuple[str, ...] | list[str] = (),
    text_col: str | None = None,
    source: str = "dataframe",
) -> SeriesSet:
    """Build a :class:`SeriesSet` from a long-format frame, validating every rule before any array work.

    Rows of one series must appear in increasing time order (as a sorted file has them). Covariates are
    numeric and may not hold NaN either (they enter the model's input). The text column, if named, must
    hold strings or NA; its rows are kept per series in ``SeriesSet.texts[name]`` as
    ``(timestamps, texts)``, NA text as ``None`` (a defined empty signal).
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise DataError(f"{source}: no rows")
    covariates = tuple(covariates)
    needed = [id_col, time_col, target_col, *covariates] + ([text_col] if text_col else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; the frame has {list(frame.columns)}")
    if frame[id_col].isna().any():
        position = int(np.flatnonzero(frame[id_col].isna().to_numpy())[0])
        raise DataError(f"{source}, column '{id_col}', row {_row(frame, position)}: missing series id")
    columns = (target_col, *covariates)
    wide = np.stack([_numeric(frame, c, source) for c in columns], axis=1)
    for j, column in enumerate(columns):
        role = "forecasting target" if j == 0 else "covariate"
        check_float32(
            wide[:, j],
            lambda position, column=column: f"{source}, column '{column}', row {_row(frame, position)}",
            role,
        )
    values = wide.astype(np.float32)
    stamps = _timestamps(frame, time_col, source)
    if text_col:
        text = frame[text_col]
        non_string = text.notna() & ~text.map(lambda v: isinstance(v, str))
        if non_string.any():
            position = int(np.flatnonzero(non_string.to_numpy())[0])
            raise DataError(
                f"{source}, column '{text_col}', row {_row(frame, position)}: text must be a string or NA, "
                f"got {type(text.iloc[position]).__name__}"
            )
    series, texts = [], {}
    ids = frame[id_col].to_numpy()
    for name in pd.unique(ids):
        positions = np.flatnonzero(ids == name)
        t = stamps[positions]
        order_bad = np.flatnonzero(~(t[1:] > t[:-1]))
        if len(order_bad):
            position = positions[order_bad[0] + 1]
            kind = "duplicated" if t[order_bad[0] + 1] == t[order_bad[0]] else "unsorted (earlier than the row before)"
            raise DataError(
                f"{source}, column '{time_col}', row {_row(frame, position)}: {kind} timestamp "
                f"'{frame[time_col].iloc[position]}' in series '{name}'"
            )
        series.append(Series(name=str(name), timestamps=t, values=values[positions]))
        if text_col:
            texts[str(name)] = (t, [v if isinstance(v, str) else None for v in frame[text_col].iloc[positions]])
    return SeriesSet(series=tuple(series), columns=columns, targets=(target_col,), source=source, texts=texts)


def read_long_file(path: str | Path, **kwargs) -> SeriesSet:
    """Read a long-format CSV (``.csv`` or ``.csv.gz``) or Parquet file (``.parquet``, ``.pq``) and validate it
    with :func:`from_long_dataframe`.

    A CSV's text column, if any, is read as written: only an empty cell means "no text"."""
    path = Path(path)
    text_col = kwargs.get("text_col")
    frame = read_table_checked(path, text_columns=(text_col,) if text_col else ())
    return from_long_dataframe(frame, source=f"file '{path}'", **kwargs)
