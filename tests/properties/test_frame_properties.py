"""Whatever pandas frame a user hands ``Estimator.predict_table``, it gives predictions or a tsmoe error,
never a raw pandas, Arrow or torch exception.

Hypothesis generates frames of observations whose cells mix every kind a frame can hold in the columns a
run reads (text, numbers too large for float32, timestamps with and without a zone, missing markers, truth
values, lists), with a column missing, renamed or added, and a categorical column.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsmoe import Estimator
from tsmoe.errors import TsmoeError

CELLS = {
    "id": st.one_of(st.sampled_from(["a", "b", "x1", None, "", 3, 3.5, np.nan, True]), st.text(max_size=3)),
    "time": st.one_of(st.sampled_from([0.0, 1.0, 2.5, -1.0, np.nan, np.inf, 1e39, None, "x", "", "2026-01-01T00:00",
                                       pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01", tz="UTC"), pd.NaT,
                                       dt.datetime(2026, 1, 1, 1), pd.Timedelta(hours=2), True, 5]), st.floats()),
    "variable": st.one_of(st.sampled_from(["hr", "temp", "HR", "", None, 1, np.nan]), st.text(max_size=3)),
    "value": st.one_of(st.sampled_from([1.0, 2.5, -3.0, np.nan, np.inf, 1e39, None, "x", "1.5", "", True, 7, [1]]),
                       st.floats()),
}  # fmt: skip
frames = st.fixed_dictionaries({name: st.lists(cells, max_size=6) for name, cells in CELLS.items()})
layouts = st.sampled_from([None, "extra column", "value renamed id", "no time", "categorical variable"])


def frame_of(columns: dict[str, list], rows: int, layout: str | None) -> pd.DataFrame:
    """A frame of ``rows`` rows, each column's generated cells repeated to fill it, in ``layout``."""
    filled = {name: pd.Series((cells * rows)[:rows] if cells else [None] * rows, dtype=object)
              for name, cells in columns.items()}  # fmt: skip
    frame = pd.DataFrame(filled)
    for name in ("time", "value"):  # numbers where pandas would read them as numbers
        try:
            frame[name] = pd.to_numeric(frame[name])
        except (TypeError, ValueError):
            pass
    if layout == "extra column":
        frame["more"] = 1
    elif layout == "value renamed id":
        frame = frame.rename(columns={"value": "id"})
    elif layout == "no time":
        frame = frame.drop(columns=["time"])
    elif layout == "categorical variable":
        frame["variable"] = frame["variable"].astype("category")
    return frame


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    rows = [(f"e{k}", float(t), rng.choice(["hr", "temp"]), float(rng.normal())) for k in range(24)
            for t in np.cumsum(rng.choice([0.5, 1.0], size=6))]  # fmt: skip
    pd.DataFrame(rows, columns=["id", "time", "variable", "value"]).to_csv(folder / "obs.csv", index=False)
    pd.DataFrame({"id": [f"e{k}" for k in range(24)], "label": [k % 2 for k in range(24)]}).to_csv(
        folder / "labels.csv", index=False
    )
    return Estimator(
        "mrmoe", "irregular", model_params={"hidden_size": 4, "d_model": 8},
        data_params={"observations": str(folder / "obs.csv"), "labels": str(folder / "labels.csv")},
        training={"max_epochs": 1}, trainer={"accelerator": "cpu"},
    ).fit()  # fmt: skip


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=frames, rows=st.integers(0, 8), layout=layouts, per_step=st.booleans(), every=st.sampled_from([None, 1]))
def test_any_frame_is_predicted_or_refused_with_a_tsmoe_error(run, columns, rows, layout, per_step, every):
    frame = frame_of(columns, rows, layout)
    given = frame.copy()
    try:
        predictions = run.predict_table(frame, per_step=per_step, every=every)
    except TsmoeError as error:
        assert str(error)
    else:
        assert isinstance(predictions, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, given)  # the user's frame is left as it was
