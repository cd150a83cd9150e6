"""``tsmoe predict`` and ``Estimator.forecast`` with models that read text: windows (one text per window,
as the MoME paper's files) and series with a dated text column (the leakage rule, as in training)."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

import tsmoe.data.text_windows
from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.data.registry import get_dataset
from tsmoe.data.sources.mome_windows import load_mome_split
from tsmoe.errors import DataError
from tsmoe.forecast import forecast_data_set
from tsmoe.predict import mean_prediction, predict_file

FAST = {"max_epochs": 1, "batch_size": 32}
CPU = {"accelerator": "cpu"}
SMALL_MOME = {"d_model": 16, "patch_len": 4}
LOOKBACK, HORIZON = 16, 4


def windows_file(path, with_text: bool = True) -> pd.DataFrame:
    """The shipped SocialGood test windows written as a user's windows file (input_seq, text)."""
    test = load_mome_split("SocialGood", "test")
    frame = pd.DataFrame({"input_seq": [json.dumps(row.tolist()) for row in test.inputs]})
    if with_text:
        frame["text"] = [t or None for t in test.texts]
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def window_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict") / "mome"
    Estimator("mome", "mome_timemmd", model_params=SMALL_MOME, data_params={"domain": "SocialGood",
              "text_encoder": "hashing"}, training=FAST, trainer=CPU).fit(run_dir=folder)  # fmt: skip
    return folder


def test_a_windows_file_gets_the_forecasts_of_the_test_split(window_folder, tmp_path):
    windows_file(tmp_path / "w.csv")
    out = tmp_path / "f.csv"
    assert main(["predict", str(window_folder), str(tmp_path / "w.csv"), "-o", str(out)]) == 0
    forecast = pd.read_csv(out)
    expected = Estimator.load(window_folder).predict()  # the same windows with the same texts: (N, horizon, 1)
    assert list(forecast.columns) == ["row", "step", "value"] and len(forecast) == expected.size
    assert forecast["value"].to_numpy() == pytest.approx(expected.reshape(-1), abs=1e-5)


@pytest.fixture(scope="module")
def window_run(window_folder):
    return Estimator.load(window_folder)


def test_the_text_of_a_window_changes_its_forecast(window_run, tmp_path):
    frame = windows_file(tmp_path / "w.csv")
    with_text = predict_file(window_run, tmp_path / "w.csv")
    frame.assign(text="a different text for every window").to_csv(tmp_path / "other.csv", index=False)
    other = predict_file(window_run, tmp_path / "other.csv")
    assert not np.allclose(with_text["value"], other["value"])


def test_bad_windows_files_are_refused_with_the_place(window_run, tmp_path):
    frame = windows_file(tmp_path / "w.csv", with_text=False)
    with pytest.raises(DataError, match="needs a column 'text'"):
        predict_file(window_run, tmp_path / "w.csv")
    frame.assign(text=["fine"] * (len(frame) - 1) + ["12"]).to_csv(tmp_path / "n.csv", index=False)
    assert predict_file(window_run, tmp_path / "n.csv")["value"].notna().all()  # "12" is read as text
    short = frame.assign(input_seq="[1, 2, 3]", text="x")
    short.to_csv(tmp_path / "s.csv", index=False)
    lookback = window_run.meta_["dims"]["lookback"]
    with pytest.raises(DataError, match=f"'input_seq': windows of 3 values; the model reads {lookback}"):
        predict_file(window_run, tmp_path / "s.csv")
    frame.assign(input_seq=[frame["input_seq"][0]] + ["[1, 'a']"] * (len(frame) - 1), text="x").to_csv(
        tmp_path / "b.csv", index=False
    )
    with pytest.raises(DataError, match="column 'input_seq', row 2"):
        predict_file(window_run, tmp_path / "b.csv")
    reprs = "[" + ", ".join(f"np.float64({v}.0)" for v in range(lookback)) + "]"  # pandas' cell for numpy 2's numbers
    frame.assign(input_seq=reprs, text="x").to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(DataError, match=r"row 1: .*\.\.\.' \(numpy's reprs, .* values.tolist\(\), or JSON\)"):
        predict_file(window_run, tmp_path / "r.csv")  # a long cell is cut in the message


def test_a_run_on_fixed_windows_refuses_a_series_file(window_run, tmp_path):
    pd.DataFrame({"date": pd.date_range("2020-01-01", periods=20, freq="MS"), "value": 1.0}).to_csv(
        tmp_path / "s.csv", index=False
    )
    with pytest.raises(DataError, match="with one text each: give windows, columns 'input_seq'"):
        predict_file(window_run, tmp_path / "s.csv")


def test_a_run_without_text_says_it_does_not_use_the_text_column(tmp_path, caplog):
    folder = tmp_path / "no-text"
    Estimator("mome", "mome_timemmd", model_params={**SMALL_MOME, "text": "none"}, data_params={"domain":
              "SocialGood", "text_encoder": "none"}, training=FAST, trainer=CPU).fit(run_dir=folder)  # fmt: skip
    windows_file(tmp_path / "w.csv")
    with caplog.at_level(logging.WARNING):
        table = predict_file(Estimator.load(folder), tmp_path / "w.csv")
    assert "column 'text' is not used: this run reads no text" in caplog.text and table["value"].notna().all()


def test_a_trend_model_names_the_class_of_each_window(tmp_path):
    folder = tmp_path / "trend"
    Estimator("mome", "mome_timemmd", model_params=SMALL_MOME, data_params={"domain": "SocialGood",
              "text_encoder": "hashing", "task": "trend"}, training=FAST, trainer=CPU).fit(run_dir=folder)  # fmt: skip
    run = Estimator.load(folder)
    windows_file(tmp_path / "w.csv")
    table = predict_file(run, tmp_path / "w.csv")
    probabilities = table[["probability_down", "probability_flat", "probability_up"]].to_numpy()
    assert probabilities.sum(axis=1) == pytest.approx(1.0, abs=1e-5)
    assert table["prediction"].tolist() == [["down", "flat", "up"][k] for k in run.predict()]


def test_an_ensemble_of_trend_tables_names_the_class_of_the_mean_probabilities():
    one = pd.DataFrame({"row": [1, 2], "prediction": ["down", "up"], "probability_down": [0.6, 0.1],
                        "probability_flat": [0.0, 0.3], "probability_up": [0.4, 0.6]})  # fmt: skip
    other = one.assign(prediction=["up", "up"], probability_down=[0.3, 0.1], probability_up=[0.7, 0.6])
    mean = mean_prediction([one, other], {"task": "multiclass"}, "test")
    assert mean["prediction"].tolist() == ["up", "up"]
    assert mean["probability_down"].tolist() == pytest.approx([0.45, 0.1])


def test_an_ensemble_per_step_takes_the_class_of_the_mean_probability_by_the_runs_names():
    one = pd.DataFrame({"pump": ["a", "a"], "time": [0.0, 1.0], "probability": [0.6, 0.2], "prediction": [1, 0]})
    other = one.assign(probability=[0.3, 0.1], prediction=[0, 0])  # the members disagree at time 0
    mean = mean_prediction([one, other], {"task": "binary_per_step"}, "test", ("pump", "time"))
    assert mean["prediction"].tolist() == [0, 0]  # the class of the mean, 0.45 (it was the mean class, 0.5)
    assert mean["probability"].tolist() == pytest.approx([0.45, 0.15])
    named = [frame.assign(prediction=np.array(["ok", "failed"])[frame.prediction]) for frame in (one, other)]
    meta = {"task": "binary_per_step", "class_names": ["ok", "failed"]}
    assert mean_prediction(named, meta, "test", ("pump", "time"))["prediction"].tolist() == ["ok", "ok"]


def dated_series(seed: int = 0) -> pd.DataFrame:
    """Two weekly series with a note every third week (the text a forecast may see)."""
    rng = np.random.default_rng(seed)
    frames = []
    for name in ("a", "b"):
        weeks = pd.date_range("2020-01-05", periods=120, freq="W")
        y = np.sin(np.arange(120) / 5.0) + 0.1 * rng.standard_normal(120)
        notes = [f"{name}: week {i}, {'rising' if np.cos(i / 5.0) > 0 else 'falling'}" if i % 3 == 0 else None
                 for i in range(120)]  # fmt: skip
        frames.append(pd.DataFrame({"unique_id": name, "ds": weeks, "y": y, "note": notes}))
    return pd.concat(frames, ignore_index=True)


TEXT_ORDERS = {"oldest_first": {}, "newest_first": {"text_newest_first": True}, "each_fact": {"text_each_fact": True}}


@pytest.fixture(scope="module", params=list(TEXT_ORDERS))
def series_run(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("predict") / "csv-text"
    data = {"lookback": LOOKBACK, "horizon": HORIZON, "text_col": "note", "text_encoder": "hashing", "text_k": 2,
            **TEXT_ORDERS[request.param]}  # fmt: skip
    Estimator("mome", "csv", model_params=SMALL_MOME, data_params=data, training=FAST, trainer=CPU).fit(
        dated_series(), run_dir=folder
    )
    return Estimator.load(folder)


def test_a_series_file_forecast_sees_the_texts_its_training_windows_saw(series_run, tmp_path, monkeypatch):
    encoded: list[str] = []  # the texts the forecast encodes (the encoder is order-blind, so check the text)
    real_encode = tsmoe.data.text_windows.encode_texts
    monkeypatch.setattr(tsmoe.data.text_windows, "encode_texts", lambda texts, *a, **k: encoded.extend(texts) or
                        real_encode(texts, *a, **k))  # fmt: skip
    frame = dated_series()
    prepared = series_run.prepare_data(frame)
    window = 0  # the first test window: series 'a', rows [test start, + lookback)
    series_index, start = prepared.test.windows.index[window]
    name = ["a", "b"][series_index]
    first_forecast_row = prepared.split["rows"][name][2][0] + start + LOOKBACK
    history = frame[frame["unique_id"] == name].iloc[:first_forecast_row]
    history.to_csv(tmp_path / "h.csv", index=False)
    encoded.clear()  # preparing the data above encoded the windows' texts too
    table = predict_file(series_run, tmp_path / "h.csv")
    forecast_encoded = list(encoded)
    expected = series_run.predict(frame)[window, :, 0]
    assert table["y"].to_numpy() == pytest.approx(expected, abs=1e-5)
    two_notes = prepared.test.texts[window].split("\n")  # in the run's order
    assert len(two_notes) == 2
    assert forecast_encoded == (two_notes if series_run.data_params().text_each_fact else ["\n".join(two_notes)])
    # a text in the visible past changes the forecast
    changed = history.copy()
    changed.iloc[-1, changed.columns.get_loc("note")] = "a new note, just before the forecast"
    changed.to_csv(tmp_path / "c.csv", index=False)
    assert not np.allclose(predict_file(series_run, tmp_path / "c.csv")["y"], table["y"])


def test_a_series_file_without_the_text_column_is_refused(series_run, tmp_path):
    dated_series().drop(columns="note").to_csv(tmp_path / "h.csv", index=False)
    with pytest.raises(DataError, match="needs a text column 'note'"):
        predict_file(series_run, tmp_path / "h.csv")


def test_forecast_of_a_frame_is_the_forecast_of_its_file(window_run, series_run, tmp_path):
    windows = windows_file(tmp_path / "w.csv")
    as_lists = windows.assign(input_seq=[json.loads(cell) for cell in windows["input_seq"]])
    pd.testing.assert_frame_equal(window_run.forecast(as_lists), predict_file(window_run, tmp_path / "w.csv"))
    series = dated_series()
    series.to_csv(tmp_path / "s.csv", index=False)
    from_frame, from_file = series_run.forecast(series), predict_file(series_run, tmp_path / "s.csv")
    assert from_frame["y"].to_numpy() == pytest.approx(from_file["y"].to_numpy(), abs=1e-6)
    # a Parquet file as its CSV: dates, texts and the windows' lists as its schema types them
    series.to_parquet(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(predict_file(series_run, tmp_path / "s.parquet"), from_file)
    as_lists.to_parquet(tmp_path / "w.parquet")
    pd.testing.assert_frame_equal(predict_file(window_run, tmp_path / "w.parquet"), window_run.forecast(as_lists))
    assert from_frame["unique_id"].tolist() == ["a"] * HORIZON + ["b"] * HORIZON
    assert pd.Timestamp(from_frame["ds"].iloc[0]) == series["ds"].iloc[119] + pd.Timedelta(weeks=1)


def test_a_wide_frame_is_one_series_as_its_file_is(series_run, tmp_path):
    one = dated_series().query("unique_id == 'a'")
    wide = one.drop(columns="unique_id")  # ds, y, note: a column per channel
    wide.to_csv(tmp_path / "a.csv", index=False)
    from_frame, from_file = series_run.forecast(wide), predict_file(series_run, tmp_path / "a.csv")
    from_long = series_run.forecast(one)
    assert from_frame["unique_id"].tolist() == ["series"] * HORIZON  # a file's series takes the file's name
    assert from_file["unique_id"].tolist() == ["a"] * HORIZON
    for other in (from_file, from_long):  # the same forecast and dates whatever names the series
        assert from_frame["y"].to_numpy() == pytest.approx(other["y"].to_numpy(), abs=1e-6)
        assert (pd.to_datetime(from_frame["ds"]) == pd.to_datetime(other["ds"])).all()
    with pytest.raises(DataError, match=r"the frame: give series in long format \(columns unique_id, ds, y\), wide"):
        series_run.forecast(pd.DataFrame({"value": np.arange(30.0), "note": None}))  # no column y
    renamed = dated_series().rename(columns={"unique_id": "shop"})  # two series, their id column named otherwise
    with pytest.raises(DataError, match=r"column 'ds', row 121: a time seen before; .* a column 'unique_id'"):
        series_run.forecast(renamed)


@pytest.fixture(scope="module")
def time_mmd_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict") / "time_mmd"
    data = {"domain": "Health_US", "lookback": 24, "horizon": 12, "text_encoder": "hashing"}
    Estimator("mome", "time_mmd", model_params=SMALL_MOME, data_params=data, training=FAST, trainer=CPU).fit(
        run_dir=folder
    )
    return folder


def test_after_a_cut_of_its_data_set_a_run_forecasts_its_test_window(time_mmd_run):
    run = Estimator.load(time_mmd_run)
    data = get_dataset("time_mmd").load(run.data_params())
    prepared = run.prepare_data()
    name = data.series[0].name
    first_forecast_row = prepared.split["rows"][name][2][0] + prepared.test.windows.index[0][1] + 24
    series = data.series[0]
    kept = slice(0, first_forecast_row)  # every text is kept: the leakage rule must hide those after the cut
    cut = dataclasses.replace(
        data, series=(dataclasses.replace(series, timestamps=series.timestamps[kept], values=series.values[kept]),)
    )
    table = forecast_data_set(run, cut, "the cut data set")
    assert table["OT"].to_numpy() == pytest.approx(run.predict()[0, :, 0], abs=1e-5)
    assert pd.Timestamp(table["ds"].iloc[0]) == pd.Timestamp(series.timestamps[first_forecast_row])


def test_predict_after_data_forecasts_what_follows_the_data_set(time_mmd_run, window_folder, tmp_path, capsys):
    out = tmp_path / "after.csv"
    assert main(["predict", str(time_mmd_run), "--after-data", "-o", str(out)]) == 0
    table = pd.read_csv(out, parse_dates=["ds"])
    run = Estimator.load(time_mmd_run)
    last = pd.Timestamp(get_dataset("time_mmd").load(run.data_params()).series[0].timestamps[-1])
    assert table["step"].tolist() == list(range(1, 13))
    assert table["ds"].tolist() == [last + pd.Timedelta(weeks=k) for k in range(1, 13)]  # weekly, after the data
    assert table["OT"].to_numpy() == pytest.approx(run.forecast()["OT"].to_numpy())
    assert main(["predict", str(time_mmd_run), "-o", str(out)]) == 2
    assert "needs a run folder and an input" in capsys.readouterr().err
    assert main(["predict", str(window_folder), "--after-data", "-o", str(out)]) == 2
    assert "holds fixed windows, not series, so nothing follows it" in capsys.readouterr().err


def test_a_run_on_its_own_column_names_predicts_a_file_in_its_own_layout(tmp_path):
    from tsmoe.cli import main

    days = pd.date_range("2022-01-01", periods=150, freq="D")
    frame = pd.concat([
        pd.DataFrame({"store": name, "date": days, "sales": np.sin(np.arange(150) / 7 + shift) + 3})
        for name, shift in (("north", 0.0), ("south", 1.5))
    ])  # fmt: skip
    frame.to_csv(tmp_path / "sales.csv", index=False)
    run = tmp_path / "run"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(run), "--set", "data.name=csv",
                 "--set", f"data.root={tmp_path / 'sales.csv'}", "--set", "data.id_col=store",
                 "--set", "data.time_col=date", "--set", "data.target_col=sales", "--set", "data.lookback=21",
                 "--set", "data.horizon=7", "--set", "data.split_lengths=null", "--set", "data.metrics_scale=original",
                 "--set", "training.max_epochs=1", "--set", "trainer.accelerator=cpu"]) == 0  # fmt: skip
    assert main(["predict", str(run), str(tmp_path / "sales.csv"), "-o", str(tmp_path / "next.csv")]) == 0
    forecast = pd.read_csv(tmp_path / "next.csv")
    assert list(forecast.columns) == ["store", "step", "date", "sales"]
    assert sorted(forecast["store"].unique()) == ["north", "south"] and len(forecast) == 14  # two series, not one
    assert forecast["date"].iloc[0] == "2022-05-31"
    other = tmp_path / "run-seed1"
    shutil.copytree(run, other)  # a second member: the same run saved again stands for another seed's
    assert main(["predict", str(run), str(other), str(tmp_path / "sales.csv"), "-o", str(tmp_path / "mean.csv")]) == 0
    mean = pd.read_csv(tmp_path / "mean.csv")
    assert list(mean.columns) == list(forecast.columns) and mean["store"].tolist() == forecast["store"].tolist()
    np.testing.assert_allclose(mean["sales"], forecast["sales"], rtol=1e-6)


def daily_sales(days: pd.DatetimeIndex, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "shop", "ds": days, "y": np.sin(np.arange(len(days)) / 7 + shift) + 3})


def test_series_with_a_hole_are_reported_and_another_sampling_step_is_refused(tmp_path, caplog, capsys):
    from tsmoe.cli import main

    daily_sales(pd.date_range("2022-01-01", periods=150, freq="D")).to_csv(tmp_path / "train.csv", index=False)
    run = tmp_path / "run"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(run), "--set", "data.name=csv",
                 "--set", f"data.root={tmp_path / 'train.csv'}", "--set", "data.lookback=21", "--set",
                 "data.horizon=7", "--set", "data.split_lengths=null", "--set", "training.max_epochs=1",
                 "--set", "trainer.accelerator=cpu"]) == 0  # fmt: skip
    assert json.loads((run / "meta.json").read_text())["time_step"] == str(pd.Timedelta(days=1))
    days = pd.date_range("2022-06-01", periods=60, freq="D")
    holed = daily_sales(days.delete(slice(20, 50)))  # a 30-day hole
    holed.to_csv(tmp_path / "holed.csv", index=False)
    with caplog.at_level("WARNING"):
        assert main(["predict", str(run), str(tmp_path / "holed.csv"), "-o", str(tmp_path / "a.csv")]) == 0
    assert "series 'shop': a gap of 31 days after 2022-06-20" in caplog.text
    daily_sales(pd.date_range("2022-06-01", periods=60, freq="h")).to_csv(tmp_path / "hourly.csv", index=False)
    assert main(["predict", str(run), str(tmp_path / "hourly.csv"), "-o", str(tmp_path / "b.csv")]) == 2
    assert not (tmp_path / "b.csv").exists()
    # integer steps where the run was trained on dates (a gap check compared days with numbers, a traceback)
    stepped = daily_sales(days).assign(ds=np.arange(60))
    stepped.to_csv(tmp_path / "steps.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "steps.csv"), "-o", str(tmp_path / "c.csv")]) == 2
    assert "series 'shop': its times are integer steps, but the run was trained on series timed by dates" in (
        capsys.readouterr().err
    )


def test_a_training_table_with_a_hole_is_reported(tmp_path, caplog):
    from tsmoe import Estimator

    frame = daily_sales(pd.date_range("2022-01-01", periods=200, freq="D").delete(slice(100, 130)))
    with caplog.at_level("WARNING"):
        Estimator("dlinear", "csv", data_params={"lookback": 14, "horizon": 7}, training={"max_epochs": 1},
                  trainer={"accelerator": "cpu"}).fit(frame)  # fmt: skip
    assert "the frame, series 'shop': a gap of 31 days after 2022-04-10" in caplog.text


def test_an_ensemble_of_a_venn_abers_run_and_another_is_refused_saying_why():
    plain = pd.DataFrame({"id": ["a", "b"], "probability": [0.2, 0.7], "prediction": [0, 1]})
    intervals = plain.assign(probability_low=[0.1, 0.6], probability_high=[0.3, 0.8])
    with pytest.raises(DataError, match="one run is calibrated with venn_abers, the other not"):
        mean_prediction([plain, intervals[["id", "probability", "probability_low", "probability_high", "prediction"]]],
                        "binary", "input 'x.csv'")  # fmt: skip
