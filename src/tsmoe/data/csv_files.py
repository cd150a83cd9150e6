"""Reading files into pandas frames with clear errors: CSV (the standard long-horizon benchmark files, wide: one
timestamp column and numeric columns; users' long tables) and Parquet (users' long tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas._libs.parsers import STR_NA_VALUES

from tsmoe.data.csv_dialect import decimal_comma_hint, file_separator, not_utf8, refuse_other_formats
from tsmoe.data.parsing import parse_dates, to_float32
from tsmoe.data.series import Series, SeriesSet
from tsmoe.errors import DataError


def read_csv_checked(path: Path, text_columns: tuple[str, ...] = (), **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` that turns a missing, empty or unreadable file into a :class:`DataError`.

    ``text_columns`` are read as written: strings, never numbers, and only an empty cell is NA (a text
    such as "NA", "null" or "123" is kept as that text). Other columns get pandas' usual NA markers.
    """
    if not Path(path).is_file():
        raise DataError(f"file '{path}' does not exist")
    if "sep" not in kwargs and "delimiter" not in kwargs:  # a comma, or the semicolon or tab the header uses
        kwargs = {**kwargs, "sep": file_separator(path)}
    try:
        if text_columns:
            header = pd.read_csv(path, nrows=0, **kwargs).columns
            na_values = {c: ([""] if c in text_columns else sorted(STR_NA_VALUES)) for c in header}
            kwargs = {**kwargs, "dtype": {c: str for c in text_columns if c in header}, "keep_default_na": False,
                      "na_values": na_values}  # fmt: skip
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"file '{path}' is empty") from None
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except (pd.errors.ParserError, OSError, EOFError) as error:
        raise DataError(f"file '{path}': not a readable CSV ({error})") from None
    if frame.empty:
        raise DataError(f"file '{path}' has a header but no rows")
    return frame


def read_table_checked(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A user's table as a frame: a Parquet file (``.parquet``, ``.pq``) as its schema types it, any other file
    as a CSV by :func:`read_csv_checked`'s rules; a missing, empty or unreadable file is a :class:`DataError`."""
    path = Path(path)
    refuse_other_formats(path)
    if not path.name.lower().endswith((".parquet", ".pq")):
        return read_csv_checked(path, text_columns)
    if not path.is_file():
        raise DataError(f"file '{path}' does not exist")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DataError(f"file '{path}': not a readable Parquet file ({error})") from None
    if frame.empty:
        raise DataError(f"file '{path}' has no rows")
    return frame


def wide_frame_to_series(
    frame: pd.DataFrame, where: str, time_col: str | None, targets: tuple[str, ...] | None, name: str
) -> SeriesSet:
    """One multivariate series from a wide frame; every non-time column must be numeric. ``where`` names the
    frame in errors (``"file 'ETTh1.csv'"``, ``"the frame"``)."""
    value_cols = [c for c in frame.columns if c != time_col]
    blocks = []
    for column in value_cols:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise DataError(
                f"{where}, column '{column}', row {row}: '{frame[column].iloc[row - 1]}' is not a number"
                + decimal_comma_hint(frame[column].iloc[row - 1])
            )
        blocks.append(
            to_float32(
                numbers.to_numpy(np.float64), lambda i, column=column: f"{where}, column '{column}', row {i + 1}"
            )
        )
    values = np.stack(blocks, axis=1)
    if time_col is None:
        stamps = np.arange(len(frame), dtype=np.int64)
    else:
        stamps = parse_dates(frame[time_col], lambda i: f"{where}, column '{time_col}', row {i + 1}")
    return SeriesSet(
        series=(Series(name=name, timestamps=stamps, values=values),),
        columns=tuple(str(c) for c in value_cols),
        targets=tuple(targets) if targets else tuple(str(c) for c in value_cols),
        source=where,
    )
