"""The long-format API refuses every kind of bad input with a tsmoe error naming column and row."""

import warnings

import numpy as np
import pandas as pd
import pytest

from tsmoe.data.long_format import from_long_dataframe, read_long_file
from tsmoe.data.prepared import prepare_forecasting
from tsmoe.errors import DataError, TsmoeError


def frame(**changes) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "unique_id": ["a"] * 6 + ["b"] * 6,
            "ds": list(pd.date_range("2024-01-01", periods=6, freq="D")) * 2,
            "y": np.arange(12, dtype=float),
            "temp": np.linspace(0, 1, 12),
        }
    )
    for column, (row, value) in changes.items():
        base[column] = base[column].astype(object)
        base.loc[row, column] = value
    return base


def test_valid_frame_becomes_series_set():
    data = from_long_dataframe(frame(), covariates=["temp"])
    assert [s.name for s in data.series] == ["a", "b"]
    assert data.columns == ("y", "temp") and data.targets == ("y",)
    np.testing.assert_array_equal(data.series[1].values[:, 0], np.arange(6, 12))


def test_missing_target_column():
    with pytest.raises(DataError, match=r"missing column\(s\) \['y'\]"):
        from_long_dataframe(frame().drop(columns="y"))


def test_non_numeric_value_names_column_and_row():
    with pytest.raises(DataError, match="column 'y', row 4: 'lots' is not a number"):
        from_long_dataframe(frame(y=(3, "lots")))


def test_non_numeric_covariate():
    with pytest.raises(DataError, match="column 'temp', row 8"):
        from_long_dataframe(frame(temp=(7, "warm")), covariates=["temp"])


def test_nan_in_target():
    with pytest.raises(DataError, match="column 'y', row 3: NaN or infinite forecasting target"):
        from_long_dataframe(frame(y=(2, np.nan)))


def test_unsorted_timestamps():
    bad = frame()
    bad.loc[[1, 2], "ds"] = bad.loc[[2, 1], "ds"].to_numpy()
    with pytest.raises(DataError, match="column 'ds', row 3: unsorted"):
        from_long_dataframe(bad)


def test_duplicated_timestamps():
    bad = frame()
    bad.loc[8, "ds"] = bad.loc[7, "ds"]
    with pytest.raises(DataError, match="column 'ds', row 9: duplicated timestamp .* in series 'b'"):
        from_long_dataframe(bad)


def test_unparseable_timestamp():
    dates = frame().assign(ds=["2024-01-01", "yesterday"] + [f"2024-01-0{i}" for i in range(2, 7)] + ["2024-01-01"] * 5)
    with pytest.raises(DataError, match="column 'ds', row 2: 'yesterday' is not a date"):
        from_long_dataframe(dates)


def test_numbers_among_dates_are_refused():
    with pytest.raises(DataError, match="column 'ds', row 2: the number '1' among dates"):
        from_long_dataframe(frame(ds=(1, 1)))


def test_value_beyond_float32_is_refused():
    with pytest.raises(DataError, match="column 'temp', row 4: covariate 1e.39 is beyond float32's range"):
        from_long_dataframe(frame(temp=(3, 1e39)), covariates=("temp",))


def test_text_column_must_hold_strings():
    good = frame().assign(news=["x"] * 11 + [None])
    assert from_long_dataframe(good, text_col="news").texts["b"][1][-1] is None
    with pytest.raises(DataError, match="column 'news', row 5: text must be a string"):
        from_long_dataframe(frame().assign(news=["x"] * 4 + [3.5] + ["y"] * 7), text_col="news")


def test_empty_frame_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        from_long_dataframe(frame().iloc[:0])
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match=f"file '{path}' is empty"):
        read_long_file(path)


def test_csv_errors_name_the_file(tmp_path):
    path = tmp_path / "data.csv"
    frame(y=(3, "lots")).to_csv(path, index=False)
    with pytest.raises(DataError, match=f"file '{path}', column 'y', row 4"):
        read_long_file(path)


def test_a_parquet_file_reads_as_its_csv_and_a_bad_one_is_named(tmp_path):
    table = frame().assign(news=["NA"] + [None] * 11)  # a text "NA" stays that text, as a CSV's does
    table.to_csv(tmp_path / "data.csv", index=False)
    table.to_parquet(tmp_path / "data.parquet")
    from_csv = read_long_file(tmp_path / "data.csv", covariates=("temp",), text_col="news")
    from_parquet = read_long_file(tmp_path / "data.parquet", covariates=("temp",), text_col="news")
    for a, b in zip(from_csv.series, from_parquet.series, strict=True):
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert {k: v[1] for k, v in from_parquet.texts.items()} == {k: v[1] for k, v in from_csv.texts.items()}
    assert from_parquet.texts["a"][1][0] == "NA"
    (tmp_path / "bad.parquet").write_text("unique_id,ds,y\n")
    with pytest.raises(DataError, match="bad.parquet': not a readable Parquet file"):
        read_long_file(tmp_path / "bad.parquet")
    table.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match="empty.parquet' has no rows"):
        read_long_file(tmp_path / "empty.parquet")


def test_lookback_plus_horizon_longer_than_series():
    data = from_long_dataframe(frame())
    with pytest.raises(DataError, match="lookback \\+ horizon = 8 is longer than the series \\(6 rows\\)"):
        prepare_forecasting(data, lookback=5, horizon=3)


def test_errors_are_tsmoe_errors():
    assert issubclass(DataError, TsmoeError)


@pytest.mark.parametrize(
    "column",
    [
        pd.array([1, None, 3, 4, 5, 6] * 2, dtype="Int64"),  # a nullable integer column's NA
        [1.0, np.nan, 3.0, 4.0, 5.0, 6.0] * 2,  # an empty cell of a CSV of steps
        pd.Series([1, None, 3, 4, 5, 6] * 2, dtype=object),
        pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-06"] * 2),
    ],
)
def test_a_missing_timestamp_is_named_as_missing_whatever_the_columns_type(column):
    with pytest.raises(DataError, match="column 'ds', row 2: the timestamp is missing"):
        from_long_dataframe(frame().assign(ds=column))


def test_steps_beyond_64_bit_integers_are_refused():
    for steps in (np.array([1, 2, 3, 4, 5, 2**63 + 5] * 2, dtype=np.uint64), [1.0, 2.0, 3.0, 4.0, 5.0, 1e30] * 2):
        with pytest.raises(DataError, match="column 'ds', row 6: the step .* is beyond the range of 64-bit integers"):
            from_long_dataframe(frame().assign(ds=steps))


def test_zoned_dates_of_a_datetime_column_are_read_in_utc_without_a_warning():
    zoned = frame().assign(ds=frame()["ds"].dt.tz_localize("Europe/Paris"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = from_long_dataframe(zoned)
    assert data.series[0].timestamps[0] == np.datetime64("2023-12-31T23:00")
