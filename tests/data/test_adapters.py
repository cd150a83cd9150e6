"""Every registered data set is an adapter whose declared source type is what it loads, and whose
preparation refuses any other; a user's frame enters through the same path, by the config's column names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsmoe import Estimator
from tsmoe.data.adapter import DataAdapter
from tsmoe.data.registry import DATASETS, get_dataset
from tsmoe.data.series import Series, SeriesSet
from tsmoe.errors import DataError
from tsmoe.params import build_dataclass

SMALL = {"etth1": {}, "exchange_rate": {}, "time_mmd": {"domain": "Security"}, "mome_timemmd": {"domain": "Energy",
         "text_encoder": "none"}}  # fmt: skip


def long_csv(path, rows: int = 60):
    frame = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=rows, freq="D"),
                          "y": np.sin(np.arange(rows) / 3.0)})  # fmt: skip
    frame.to_csv(path, index=False)
    return path


def observations_table(folder) -> dict:
    """30 entities of two variables observed at irregular times, labelled 0 and 1 in turn."""
    rng = np.random.default_rng(0)
    rows = [(f"e{i}", t, name, rng.normal()) for i in range(30) for t in np.sort(rng.uniform(0, 9, 5))
            for name in ("x", "y")]  # fmt: skip
    pd.DataFrame(rows, columns=["id", "time", "variable", "value"]).to_csv(folder / "obs.csv", index=False)
    pd.DataFrame({"id": [f"e{i}" for i in range(30)], "label": [i % 2 for i in range(30)]}).to_csv(
        folder / "labels.csv", index=False
    )
    return {"observations": str(folder / "obs.csv"), "labels": str(folder / "labels.csv")}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_adapter_loads_the_source_type_it_declares(name, small_physionet, tmp_path):
    adapter = get_dataset(name)
    assert isinstance(adapter, DataAdapter) and adapter.name == name
    values = {
        "physionet2012": {"root": str(small_physionet), "split_file": None},
        "csv": {"root": str(long_csv(tmp_path / "series.csv")), "lookback": 8, "horizon": 4},
    }.get(name, SMALL.get(name, {}))
    if name == "irregular":
        values = observations_table(tmp_path)
    params = build_dataclass(adapter.params, values, "data")
    source = adapter.load(params)
    assert isinstance(source, adapter.source_type)
    prepared = adapter.prepare(params, source, seed=0)
    assert len(prepared.train) > 0 and len(prepared.test) > 0


@pytest.mark.parametrize("name", ["physionet2012", "etth1", "mome_timemmd"])
def test_an_adapter_refuses_a_source_of_another_form(name):
    adapter = get_dataset(name)
    other = SeriesSet(series=(Series("a", np.arange(5), np.zeros((5, 1), np.float32)),), columns=("y",),
                      targets=("y",), source="test")  # fmt: skip
    wrong = other if adapter.source_type is not SeriesSet else object()
    with pytest.raises(DataError, match=f"data set '{name}' prepares a {adapter.source_type.__name__}"):
        adapter.prepare(build_dataclass(adapter.params, {}, "data"), wrong, seed=0)


def test_a_users_frame_is_read_by_the_configured_column_names():
    rows = 120
    frame = pd.DataFrame({"store": "s1", "date": pd.date_range("2021-01-01", periods=rows, freq="D"),
                          "sales": np.cos(np.arange(rows) / 5.0) + 2})  # fmt: skip
    estimator = Estimator(
        "dlinear", "csv", data_params={"id_col": "store", "time_col": "date", "target_col": "sales", "lookback": 14,
                                       "horizon": 7}, training={"max_epochs": 1}, trainer={"accelerator": "cpu"},
    )  # fmt: skip
    assert estimator.fit(frame).predict(frame).shape[1:] == (7, 1)
