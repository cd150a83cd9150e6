"""Rows appended piece by piece into arrays made once, and the bounds on a file's rows that size them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsmoe.data.row_buffer import RowBuffer, row_bound


def test_pieces_past_the_capacity_grow_the_arrays_and_keep_every_row():
    buffer = RowBuffer({"code": np.int32, "number": np.float64}, capacity=5)
    pieces = [np.arange(start, start + n) for start, n in ((0, 3), (3, 4), (7, 0), (7, 10))]
    for piece in pieces:
        buffer.append(code=piece, number=piece / 2)
    arrays = buffer.arrays()
    np.testing.assert_array_equal(arrays["code"], np.arange(17))
    np.testing.assert_array_equal(arrays["number"], np.arange(17) / 2)
    assert arrays["code"].dtype == np.int32 and arrays["number"].dtype == np.float64


def test_the_bound_on_rows_is_the_parquet_row_count_and_at_least_a_csvs_rows(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b", "c"], "note": ["one", "two\nlines", "three"]})  # a line break in a cell
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "no_last_break.csv").write_text("id\na\nb")
    assert row_bound(tmp_path / "t.parquet") == 3
    assert row_bound(tmp_path / "t.csv") >= 3 + 1  # header and rows, and the quoted line break counted
    assert row_bound(tmp_path / "no_last_break.csv") >= 3
