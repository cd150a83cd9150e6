"""Property-based: any long-format frame or CSV either loads with every row kept, or raises a tsmoe error.

Hypothesis draws frames with random NaNs, duplicated and unsorted timestamps (also as typed columns:
nullable integers with NA, dates with NaT, zoned dates, unsigned steps), huge and tiny values, empty and
non-ASCII text, and wrong dtypes. Never a raw pandas or numpy traceback, never a dropped row.
"""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsmoe.data.long_format import from_long_dataframe, read_long_file
from tsmoe.errors import TsmoeError

SETTINGS = settings(
    derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),  # NaN, inf, 1e308, 5e-324, -0.0 ...
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["1.5", "abc", "", " ", "1e400", "nan", "１２"]),  # strings, incl. full-width digits
    st.none(),
    st.booleans(),
)
timestamps = st.one_of(
    st.integers(min_value=-5, max_value=30),
    st.sampled_from(["2020-01-01", "2020-01-02", "2020-01-03", "2019-12-31", "not a date", "", "2020-02-30"]),
    st.datetimes(
        min_value=pd.Timestamp("2000-01-01").to_pydatetime(), max_value=pd.Timestamp("2001-01-01").to_pydatetime()
    ),
    st.none(),
    st.floats(min_value=0, max_value=10),
)
texts = st.one_of(st.text(max_size=30), st.none(), st.integers(), st.just(""), st.just("NA"), st.just("温度が上がる"))
ids = st.one_of(st.sampled_from(["a", "b", "ü"]), st.integers(0, 2), st.none())


@st.composite
def long_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=12))
    columns = {
        "unique_id": draw(st.lists(ids, min_size=n, max_size=n)),
        "ds": draw(st.lists(timestamps, min_size=n, max_size=n)),
        "y": draw(st.lists(numbers, min_size=n, max_size=n)),
        "x1": draw(st.lists(numbers, min_size=n, max_size=n)),
        "note": draw(st.lists(texts, min_size=n, max_size=n)),
    }
    if draw(st.booleans()):  # often a well-formed core, so that the success path is exercised too
        columns["unique_id"] = ["s"] * n
        columns["ds"] = list(range(n))
        columns["y"] = draw(st.lists(st.floats(-1e30, 1e30), min_size=n, max_size=n))
        columns["x1"] = draw(st.lists(st.floats(-1e30, 1e30), min_size=n, max_size=n))
        columns["note"] = draw(st.lists(st.one_of(st.text(max_size=30), st.none()), min_size=n, max_size=n))
    frame = pd.DataFrame(columns)
    return _typed_times(frame, draw(st.sampled_from(["as drawn", "Int64", "datetime64", "zoned", "uint64"])))


def _typed_times(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The time column as a typed column, where its cells allow (a nullable integer column with NA, dates
    with NaT, zoned dates, unsigned steps), as pandas gives them from Parquet or a user's own frame."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "Int64":
                frame["ds"] = frame["ds"].astype("Int64")
            elif kind == "uint64":
                frame["ds"] = frame["ds"].astype("uint64")
            elif kind in ("datetime64", "zoned"):
                dates = pd.to_datetime(frame["ds"], errors="raise")
                frame["ds"] = dates.dt.tz_localize("Europe/Paris") if kind == "zoned" else dates
    except (TypeError, ValueError, OverflowError):
        pass  # not possible for these cells: the column as drawn
    return frame


def check_loaded(series_set, n_rows: int, with_covariate: bool) -> None:
    assert sum(len(s.timestamps) for s in series_set.series) == n_rows  # every row kept
    for series in series_set.series:
        assert np.isfinite(series.values).all()
        assert series.values.shape[1] == (2 if with_covariate else 1)


@SETTINGS
@given(frame=long_frames(), with_covariate=st.booleans(), with_text=st.booleans())
def test_long_dataframe_loads_whole_or_raises_a_tsmoe_error(frame, with_covariate, with_text):
    covariates = ("x1",) if with_covariate else ()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy/pandas warning would mean a value was mangled
            loaded = from_long_dataframe(frame, covariates=covariates, text_col="note" if with_text else None)
    except TsmoeError as error:
        assert str(error)
        return
    check_loaded(loaded, len(frame), with_covariate)
    if with_text:  # every text kept, NA as None, nothing else changed
        kept = [t for name in loaded.texts for t in loaded.texts[name][1]]
        assert sorted(map(str, kept)) == sorted(str(v) if isinstance(v, str) else "None" for v in frame["note"])


@SETTINGS
@given(frame=long_frames(), encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]), junk=st.binary(max_size=40))
def test_long_csv_loads_whole_or_raises_a_tsmoe_error(tmp_path_factory, frame, encoding, junk):
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    try:
        payload = frame.to_csv(index=False).encode(encoding)
    except UnicodeEncodeError:
        payload = frame.to_csv(index=False).encode("utf-8")
    path.write_bytes(payload + junk)
    try:
        loaded = read_long_file(path, covariates=("x1",), text_col="note")
    except TsmoeError as error:
        assert str(error)
        return
    check_loaded(loaded, sum(len(s.timestamps) for s in loaded.series), True)


@SETTINGS
@given(frame=long_frames(), with_covariate=st.booleans())
def test_a_frame_that_loads_loads_the_same_from_its_csv(tmp_path_factory, frame, with_covariate):
    covariates = ("x1",) if with_covariate else ()
    try:
        expected = from_long_dataframe(frame, covariates=covariates, text_col="note")
    except TsmoeError:
        return
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)  # quoted, so a "\r" in a text stays in it
    try:
        loaded = read_long_file(path, covariates=covariates, text_col="note")
    except TsmoeError as error:  # only what a CSV cannot carry: e.g. ids 0 and "0" become the same series
        assert "timestamp" in str(error) or "series id" in str(error), error
        return
    check_loaded(loaded, len(frame), with_covariate)
    assert len(loaded.series) == len(expected.series)
    for name in expected.texts:  # texts as written; NA is written as an empty cell and read back as NA
        assert loaded.texts[name][1] == [t if t else None for t in expected.texts[name][1]]
