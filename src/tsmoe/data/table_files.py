"""Reading a user's tables with Arrow: a CSV (optionally gzipped) or Parquet file, or a folder of them.

Only the columns asked for are read, each file parsed in one pass (a Parquet file a row group at a time),
with text columns dictionary-encoded (a name repeated over millions of rows is stored once), so a large
table costs near its numeric payload. Policies:

- a folder is read as the files in it ending ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq``, sorted by name;
- a CSV is UTF-8, separated by commas, or semicolons or tabs where its header holds no comma
  (:mod:`tsmoe.data.csv_dialect`);
- a column asked for that a file lacks is an error naming the file and the columns it has;
- IDs are read as text, so ``007`` stays ``007`` and IDs match across tables whatever their type;
- a number column holding text (``abc`` where a value belongs) is an error naming the file, row and text;
- empty cells and Arrow's NA spellings (``NA``, ``NaN``, ``null``, ...) are missing values;
- a pandas frame is written as a Parquet file first (:func:`frame_as_parquet`) and read by the same rules.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tsmoe.data.csv_dialect import decimal_comma_hint, file_separator, not_utf8, open_text, refuse_other_formats
from tsmoe.errors import DataError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
TEXT = pa.dictionary(pa.int32(), pa.string())
BLOCK_BYTES = 1 << 20  # a CSV is read and converted 1 MiB at a time: Arrow reads a few blocks ahead
# what Arrow raises for a pandas column it cannot store as one type (text among numbers, a number too large
# for the type it chose, a list in a cell)
UNCONVERTIBLE = (pa.ArrowException, OverflowError, TypeError, ValueError)


def table_files(path: str | Path, role: str) -> list[Path]:
    """The files of a table given as a file or a folder (``role`` names the setting, for errors)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
        if not files:
            raise DataError(f"{role} '{path}' is a folder with no {', '.join(SUFFIXES)} file")
        return files
    if not path.is_file():
        raise DataError(f"{role} '{path}' does not exist")
    refuse_other_formats(path)
    if not path.name.lower().endswith(SUFFIXES):
        raise DataError(f"{role} '{path}': expected a file ending {', '.join(SUFFIXES)}")
    return [path]


def frame_as_parquet(frame: pd.DataFrame, path: Path, role: str) -> Path:
    """``frame`` written as the Parquet file ``path`` (its columns as pandas types them, the index left out),
    so that a frame is read as a file of the same table would be; a column whose cells are of several
    kinds (numbers and text) is an error naming it (``role`` names the frame)."""
    names = [str(name) for name in frame.columns]
    if len(set(names)) != len(names):
        raise DataError(f"{role}: column names repeat ({names})")
    frame = frame.set_axis(names, axis=1)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except UNCONVERTIBLE:
        for name in names:  # which column and cell: Arrow's error names neither plainly
            try:
                pa.Table.from_pandas(frame[[name]], preserve_index=False)
            except UNCONVERTIBLE:
                raise DataError(f"{role}, column '{name}': {_odd_cell(frame[name])}; give the column one kind "
                                "of cell, numbers or text") from None  # fmt: skip
        raise
    pq.write_table(table, path)
    return path


def _odd_cell(column: pd.Series) -> str:
    """The first cell of ``column`` whose kind (text or not) is the rarer one, as ``row N (from 1): value``."""
    text = column.map(lambda cell: isinstance(cell, str)).to_numpy(dtype=bool)
    rare = text if text.sum() * 2 < len(text) else ~text
    if not rare.any():
        return "its cells are of several kinds"
    position = int(np.flatnonzero(rare)[0])
    return f"row {position + 1}: {column.iloc[position]!r} among cells of another kind"


def file_columns(path: Path) -> list[str]:
    """The column names of one table file (its header, or its Parquet schema)."""
    try:
        if is_parquet(path):
            return list(pq.read_schema(path).names)
        with open_text(path) as handle:  # the header only
            return next(csv.reader(handle, delimiter=file_separator(path)), [])
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except (pa.ArrowInvalid, OSError, csv.Error) as error:
        raise DataError(f"file '{path}': not a readable table ({_short(error)})") from None


def read_batches(
    path: Path, columns: list[str], text: tuple[str, ...] = (), numbers: tuple[str, ...] = (), rows: int = 1 << 18
) -> Iterator[tuple[int, pa.Table]]:
    """The ``columns`` of one file in pieces of about ``rows`` rows, as ``(first row, table)`` (rows counted
    from 0), typed as :func:`read_table` types them: a large file is never held whole in Arrow's memory."""
    _check_columns(path, columns)
    try:
        if is_parquet(path):
            pieces = _row_groups(pq.ParquetFile(path), columns, rows)
        else:  # every column's type fixed from the first block, so a later block cannot be read otherwise
            options = _csv_options(columns, text, numbers)
            reading = {"read_options": pa_csv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
                       "parse_options": _parse_options(path)}  # fmt: skip
            with pa_csv.open_csv(path, convert_options=options, **reading) as sniff:
                inferred = sniff.schema
            options.column_types = {**options.column_types, **{
                f.name: _widened(f.type) for f in inferred if f.name not in options.column_types}}  # fmt: skip
            pieces = pa_csv.open_csv(path, convert_options=options, **reading)
        offset = 0
        for piece in pieces:
            table = _typed(pa.Table.from_batches([piece]), path, text, numbers, offset)
            yield offset, table
            offset += table.num_rows
    except pa.ArrowInvalid as error:
        _name_the_bad_number(path, numbers, error)
        raise DataError(f"file '{path}': {_short(error)}") from None
    except OSError as error:
        raise DataError(f"file '{path}': not a readable table ({_short(error)})") from None
    if offset == 0:
        raise DataError(f"file '{path}' has a header but no rows")


def _row_groups(file: pq.ParquetFile, columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    """A Parquet file's ``columns`` in batches of at most ``rows`` rows, one row group read at a time (its
    ``iter_batches`` held three times the memory of a row group on a 10 M-row file)."""
    for group in range(file.num_row_groups):
        yield from file.read_row_group(group, columns=columns).to_batches(max_chunksize=rows)


def _widened(kind: pa.DataType) -> pa.DataType:
    """The type a whole column is read as, from its first block's: any number as float64 (``1`` first,
    ``1.5`` later), a timestamp in nanoseconds (whole seconds first, fractions later), else text."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind):
        return pa.float64()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("ns", tz=kind.tz)
    return pa.string()


def _check_columns(path: Path, columns: list[str]) -> None:
    present = file_columns(path)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"file '{path}' has no column(s) {missing}; its columns are {present}")
    if is_parquet(path):  # a Parquet column may be of any type: only numbers, text and times are read
        schema = pq.read_schema(path)
        for name in columns:
            kind = schema.field(name).type
            if not _readable(kind):
                raise DataError(f"file '{path}', column '{name}': its type is {kind}; tsmoe reads columns of "
                                "numbers, text, truth values, dates, timestamps or durations")  # fmt: skip


def _readable(kind: pa.DataType) -> bool:
    """Whether a Parquet column of this type is read (numbers, text, truth values, dates, timestamps, durations)."""
    if pa.types.is_dictionary(kind):
        return _readable(kind.value_type)
    checks = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean, pa.types.is_string,
              pa.types.is_large_string, pa.types.is_timestamp, pa.types.is_date, pa.types.is_duration,
              pa.types.is_null)  # fmt: skip
    return any(check(kind) for check in checks)


def _parse_options(path: Path) -> pa_csv.ParseOptions:
    """The separator the file's header uses (:mod:`tsmoe.data.csv_dialect`)."""
    return pa_csv.ParseOptions(delimiter=file_separator(path))


def _csv_options(columns: list[str], text: tuple[str, ...], numbers: tuple[str, ...]) -> pa_csv.ConvertOptions:
    # an empty cell is missing in every column, text ones too (an empty ID is no ID)
    types = {c: TEXT for c in text} | {c: pa.float64() for c in numbers}
    return pa_csv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=True)


def _typed(table: pa.Table, path: Path, text: tuple[str, ...], numbers: tuple[str, ...], offset: int = 0) -> pa.Table:
    for name in text:
        if not pa.types.is_dictionary(table[name].type):
            table = table.set_column(table.schema.get_field_index(name), name, _as_text(table[name]))
    for name in numbers:
        column = _as_numbers(table[name], path, name, offset)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table.combine_chunks()


def read_table(path: Path, columns: list[str], text: tuple[str, ...] = (), numbers: tuple[str, ...] = ()) -> pa.Table:
    """The ``columns`` of one file; ``text`` columns as dictionary-encoded strings, ``numbers`` as float64.
    Other columns keep the type Arrow infers (times: numbers, timestamps or text)."""
    _check_columns(path, columns)
    try:
        if is_parquet(path):
            table = pq.read_table(path, columns=columns)
        else:
            table = pa_csv.read_csv(
                path, parse_options=_parse_options(path), convert_options=_csv_options(columns, text, numbers)
            )
    except pa.ArrowInvalid as error:
        _name_the_bad_number(path, numbers, error)
        raise DataError(f"file '{path}': {_short(error)}") from None
    except OSError as error:
        raise DataError(f"file '{path}': not a readable table ({_short(error)})") from None
    if table.num_rows == 0:
        raise DataError(f"file '{path}' has a header but no rows")
    return _typed(table, path, text, numbers)


def _name_the_bad_number(path: Path, numbers: tuple[str, ...], error: pa.ArrowInvalid) -> None:
    """After Arrow failed to read a CSV's number column (its message names the column by position and the
    row by a count of its own), the error naming the column, row and text as :func:`_as_numbers` does:
    the number columns read again as text, on this error path only."""
    if is_parquet(path) or not numbers or "conversion error" not in str(error):
        return
    try:
        options = pa_csv.ConvertOptions(include_columns=list(numbers), column_types=dict.fromkeys(numbers, pa.string()),
                                        strings_can_be_null=True)  # fmt: skip
        table = pa_csv.read_csv(path, parse_options=_parse_options(path), convert_options=options)
    except (pa.ArrowInvalid, OSError):
        return  # the file fails otherwise too: the caller's message stands
    for name in numbers:
        _as_numbers(table[name], path, name)


def codes_and_names(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """A dictionary-encoded text column -> ``(codes (R,) int32, names)``; a missing cell has code -1."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    codes = array.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    if array.null_count:
        codes = np.where(array.is_null().to_numpy(zero_copy_only=False), -1, codes).astype(np.int32)
    return codes, [str(name) for name in array.dictionary.to_pylist()]


def numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A float64 column -> ``(R,)`` float64, NaN where missing."""
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.dictionary_encode(column.cast(pa.string()))


def _as_numbers(column: pa.ChunkedArray, path: Path, name: str, offset: int = 0) -> pa.ChunkedArray:
    """``column`` as float64; text that is no number is an error naming its row (``offset``: the rows
    before this piece of the file)."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type) or pa.types.is_null(column.type):
        return column.cast(pa.float64())
    if pa.types.is_boolean(column.type):
        return column.cast(pa.int8()).cast(pa.float64())
    text = column.cast(pa.string()).to_numpy(zero_copy_only=False)
    for row, cell in enumerate(text):
        if cell is None:
            continue
        try:
            float(cell)
        except ValueError:
            where = f"file '{path}', column '{name}', row {offset + row + 1}"
            raise DataError(f"{where}: '{cell}' is not a number{decimal_comma_hint(cell)}") from None
    return column.cast(pa.string()).cast(pa.float64())


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith((".parquet", ".pq"))


def _short(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
