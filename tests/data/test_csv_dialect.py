"""CSV files as spreadsheets and databases write them: UTF-8 with or without a byte-order mark, commas,
semicolons or tabs, read alike by pandas (forecasting tables) and Arrow (tables of observations); other
encodings and decimal commas refused naming where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsmoe.data.csv_dialect import decimal_comma_hint, separator_of
from tsmoe.data.csv_files import read_table_checked
from tsmoe.data.table_files import file_columns, read_table, table_files
from tsmoe.errors import DataError

FRAME = pd.DataFrame({"unique_id": ["Zürich"] * 3, "ds": [0, 1, 2], "y": [0.5, -1.25, 3.0]})


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "comma.csv"),
        ({"sep": ";"}, "semicolon.csv"),
        ({"sep": "\t"}, "tab.csv"),
        ({"encoding": "utf-8-sig"}, "bom.csv"),
        ({"sep": ";", "lineterminator": "\r\n"}, "windows.csv"),
    ],
)
def test_a_table_reads_the_same_whatever_its_separator_and_mark(tmp_path, options, name):
    path = tmp_path / name
    FRAME.to_csv(path, index=False, **options)
    pd.testing.assert_frame_equal(read_table_checked(path), FRAME)
    assert file_columns(path) == list(FRAME.columns)
    arrow = read_table(path, ["unique_id", "ds", "y"], text=("unique_id",), numbers=("y",)).to_pandas()
    assert arrow["unique_id"].astype(str).tolist() == FRAME["unique_id"].tolist()
    np.testing.assert_array_equal(arrow["y"].to_numpy(), FRAME["y"].to_numpy())


def test_another_encoding_is_refused_naming_its_first_line(tmp_path):
    path = tmp_path / "latin.csv"
    FRAME.to_csv(path, index=False, encoding="latin-1")
    said = r"latin.csv', line 2: not UTF-8 text \(byte 0xfc, character 2\).*CSV UTF-8"
    for read in (lambda: read_table_checked(path), lambda: file_columns(path)):
        with pytest.raises(DataError, match=said):
            read()


def test_a_decimal_comma_is_refused_saying_so(tmp_path):
    path = tmp_path / "decimal.csv"
    FRAME.assign(y=["0,5", "-1,25", "3"]).to_csv(path, index=False, sep=";")
    with pytest.raises(DataError, match=r"'0,5' is not a number \(a decimal comma: tsmoe reads decimal points, 0.5\)"):
        read_table(path, ["unique_id", "ds", "y"], text=("unique_id",), numbers=("y",))
    assert decimal_comma_hint("1,000.5") == "" and decimal_comma_hint("abc") == ""  # not a decimal comma
    assert "commas between digits" in decimal_comma_hint("1,000")  # a thousand, or 1.0 written the other way
    assert "commas between digits" in decimal_comma_hint("-2,500,000")
    assert separator_of("a;b,c") == "," and separator_of("a;b") == ";" and separator_of("a") == ","


def test_a_spreadsheet_or_another_format_is_refused_saying_what_to_give(tmp_path):
    for name, said in (("book.xlsx", "is a spreadsheet; tsmoe reads CSV or Parquet: save the sheet as 'CSV UTF-8'"),
                       ("frame.json", "tsmoe reads tables from CSV or Parquet files")):  # fmt: skip
        (tmp_path / name).write_bytes(b"PK\x03\x04 not a table")
        with pytest.raises(DataError, match=said):
            read_table_checked(tmp_path / name)
    with pytest.raises(DataError, match="is a spreadsheet"):
        table_files(tmp_path / "book.xlsx", "data.observations")
