"""How tsmoe reads the text of a CSV file, whichever reader parses it (pandas, Arrow, the stream's rows).

- **Encoding**: UTF-8; a byte-order mark (as Excel's "CSV UTF-8" writes) is skipped. Other encodings are
  refused, naming the file and the first byte that is not UTF-8: decoding them as Latin-1 would turn every
  byte into some letter, silently, whatever the file's real encoding.
- **Separator**: the comma; where the header line holds no comma, a semicolon, else a tab (spreadsheet
  programs in locales whose decimal mark is a comma write semicolons; exports of databases, tabs).
- **Not a CSV**: a spreadsheet (``.xlsx``, ...) or another format named by its suffix (``.json``, ...) is
  refused saying what to give, not read as CSV bytes.
- **Decimal mark**: the point. A number written with a decimal comma (``66,079``) is refused naming its
  cell, saying so (:func:`decimal_comma_hint`), rather than read as 66079 or as text.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import IO

from tsmoe.errors import DataError

SEPARATORS = (",", ";", "\t")
SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods")
OTHER_FORMATS = (".json", ".jsonl", ".feather", ".arrow", ".h5", ".hdf5", ".pkl", ".pickle", ".npy", ".npz")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+")


def separator_of(header: str) -> str:
    """The separator a header line uses: the first of comma, semicolon, tab that it holds (a comma if none:
    a table of one column)."""
    return next((separator for separator in SEPARATORS if separator in header), ",")


def open_text(path: Path, errors: str = "strict", binary: bool = False) -> IO:
    """The (possibly gzipped) file at ``path`` opened for reading: UTF-8 text, a byte-order mark skipped (or
    its bytes, ``binary``)."""
    opener = gzip.open if Path(path).name.lower().endswith(".gz") else open
    if binary:
        return opener(path, "rb")
    return opener(path, "rt", encoding="utf-8-sig", errors=errors, newline="")


def file_separator(path: Path) -> str:
    """:func:`separator_of` the first line of the (possibly gzipped) file at ``path``; an unreadable file
    gives the comma, and its reader then says what is wrong with it."""
    try:
        with open_text(path, errors="replace") as handle:
            return separator_of(handle.readline())
    except (OSError, EOFError):
        return ","


def not_utf8(path: Path | str) -> DataError:
    """The error for a (possibly gzipped) file whose bytes are not UTF-8 text, naming the first line that is
    not (the file read again, on this error path only: a decoder's position counts from its own buffer)."""
    save = "tsmoe reads CSV as UTF-8: save it so (in Excel: 'CSV UTF-8'), or as Parquet"
    with open_text(path, binary=True) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                byte = line[error.start : error.start + 1].hex()
                return DataError(
                    f"file '{path}', line {number}: not UTF-8 text (byte 0x{byte}, character {error.start + 1}); {save}"
                )
    return DataError(f"file '{path}' is not UTF-8 text; {save}")


def decimal_comma_hint(text: object) -> str:
    """For a cell that is not a number: a note where it is one written with a decimal comma (or with commas
    between groups of digits, which reads either way), else ``""``."""
    cell = text.strip() if isinstance(text, str) else ""
    if _GROUPED.fullmatch(cell):  # 1,000 or 1,000,000: thousands, or (1,000) one with a decimal comma
        return " (commas between digits: tsmoe reads plain numbers with a decimal point, as 1000 or 1.5)"
    if _DECIMAL_COMMA.fullmatch(cell):
        return f" (a decimal comma: tsmoe reads decimal points, {cell.replace(',', '.')})"
    return ""


def refuse_other_formats(path: Path) -> None:
    """A spreadsheet or another format tsmoe does not read, named by its suffix, is refused saying what to give
    (read as a CSV, it would fail on its bytes, or worse, parse)."""
    name = path.name.lower()
    if name.endswith(SPREADSHEETS):
        raise DataError(f"file '{path}' is a spreadsheet; tsmoe reads CSV or Parquet: save the sheet as 'CSV UTF-8'")
    if name.endswith(OTHER_FORMATS):
        raise DataError(
            f"file '{path}': tsmoe reads tables from CSV or Parquet files; write it as one (pandas: "
            "frame.to_csv(path, index=False) or frame.to_parquet(path))"
        )
