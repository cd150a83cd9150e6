"""``tsmoe evaluate RUN --forecasts FILE``: every scored window's forecast beside what came, a row per step."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.errors import ConfigError
from tsmoe.paths import shipped_data_dir

SETS = ["--set", "training.max_epochs=1", "--set", "data.lookback=24", "--set", "data.horizon=6"]


@pytest.fixture(scope="module")
def quantile_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("backtest") / "dlq"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(run), *SETS,
                 "--set", "model.quantiles=[0.1, 0.5, 0.9]"]) == 0  # fmt: skip
    return run


def test_each_test_window_is_its_forecast_at_its_dates_beside_the_datas_own_values(quantile_run, tmp_path):
    table = tmp_path / "backtest.csv"
    assert main(["evaluate", str(quantile_run), "--forecasts", str(table), "--intervals", "0.8",
                 "--conformal", "quantile", "--no-plots"]) == 0  # fmt: skip
    rows = pd.read_csv(table, parse_dates=["cutoff", "ds"])
    channels = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]  # every channel a target (ETT's M setting)
    assert list(rows.columns[:4]) == ["unique_id", "cutoff", "ds", "step"]
    by_target = [f"{c}{end}" for end in ("", "_actual", "_q10", "_q50", "_q90", "_lo_80", "_hi_80") for c in channels]
    assert sorted(rows.columns[4:]) == sorted(by_target)
    estimator = Estimator.load(quantile_run)
    forecasts = estimator.predict()  # (N, 6, 7): the test windows, original scale
    assert len(rows) == len(forecasts) * 6 and rows.step.tolist() == [1, 2, 3, 4, 5, 6] * len(forecasts)
    np.testing.assert_allclose(rows[channels], forecasts.reshape(-1, 7), rtol=1e-6)
    raw = pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz", parse_dates=["date"]).set_index("date")
    actual = rows[[f"{c}_actual" for c in channels]].to_numpy()
    np.testing.assert_allclose(actual, raw.loc[rows.ds, channels].to_numpy(), atol=1e-5)  # what came, at its date
    assert ((rows.ds - rows.cutoff) == rows.step * pd.Timedelta(hours=1)).all()  # the last input row's time
    scored = json.loads((quantile_run / "metrics-eval.json").read_text())
    inside = [rows[f"{c}_actual"].between(rows[f"{c}_lo_80"], rows[f"{c}_hi_80"]) for c in channels]
    assert np.mean(inside) == pytest.approx(scored["coverage_80"], abs=1e-12)  # as evaluate scored it
    assert (rows.OT_q10 <= rows.OT_q90).all() and (rows.OT == rows.OT_q50).all()
    from_python = estimator.backtest(intervals=[0.8], conformal="quantile")  # the same table, as a frame
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(from_python.to_csv(index=False))), pd.read_csv(table))
    with pytest.raises(ConfigError, match="part is 'test' or 'validation', got 'train'"):
        estimator.backtest(part="train")
    with pytest.raises(ConfigError, match="with split 'all' every window is scored as test"):
        estimator.backtest(part="validation", split="all")


def test_residual_intervals_of_the_validation_part_and_files_that_are_not_replaced(quantile_run, tmp_path, capsys):
    table = tmp_path / "validation.parquet"
    assert main(["evaluate", str(quantile_run), "--forecasts", str(table), "--part", "validation",
                 "--intervals", "0.9", "--no-plots"]) == 0  # fmt: skip
    rows = pd.read_parquet(table)
    scored = json.loads((quantile_run / "metrics-eval.json").read_text())
    channels = [c.removesuffix("_actual") for c in rows.columns if c.endswith("_actual")]
    inside = [rows[f"{c}_actual"].between(rows[f"{c}_lo_90"], rows[f"{c}_hi_90"]) for c in channels]
    # scored on the scaled values, the table's ends on the original scale: a target on an end may fall either way
    assert len(channels) == 7 and np.mean(inside) == pytest.approx(scored["coverage_90"], abs=1e-3)
    np.testing.assert_allclose(rows.OT_hi_90 - rows.OT, rows.OT - rows.OT_lo_90, rtol=1e-6)  # even, about OT
    mine = tmp_path / "mine.csv"
    mine.write_text("date,OT\n2020-01-01,1\n")
    assert main(["evaluate", str(quantile_run), "--forecasts", str(mine), "--no-plots"]) == 2
    assert "holds something else" in capsys.readouterr().err and mine.read_text() == "date,OT\n2020-01-01,1\n"
    assert main(["evaluate", str(quantile_run), "--forecasts", str(tmp_path), "--no-plots"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["evaluate", str(quantile_run), str(quantile_run), "--forecasts", str(mine)]) == 2  # not dropped
    assert "--forecasts writes one run's windows" in capsys.readouterr().err


def test_a_run_trained_on_a_frame_backtests_that_frame_with_the_residuals_it_kept():
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    wave = np.sin(np.arange(200) / 4)
    frame = pd.concat([pd.DataFrame({"unique_id": name, "ds": days, "y": wave * scale + rng.normal(0, 0.1, 200)})
                       for name, scale in (("a", 1.0), ("b", 3.0))])  # fmt: skip
    run = Estimator("dlinear", "csv", data_params={"lookback": 14, "horizon": 7},
                    training={"max_epochs": 1}, trainer={"accelerator": "cpu"}).fit(frame)  # fmt: skip
    rows = run.backtest(frame, intervals=[0.9])
    assert list(rows.columns) == ["unique_id", "cutoff", "ds", "step", "y", "y_actual", "y_lo_90", "y_hi_90"]
    expected = frame.set_index(["unique_id", "ds"]).y.loc[list(zip(rows.unique_id, rows.ds, strict=True))]
    np.testing.assert_allclose(rows.y_actual, expected.to_numpy(), atol=1e-5)
    half = run.forecast(frame, intervals=[0.9]).assign(half=lambda f: f.y_hi_90 - f.y).groupby("step").half.first()
    np.testing.assert_allclose((rows.y_hi_90 - rows.y).groupby(rows.step).max(), half.to_numpy(), rtol=1e-5)


def test_the_report_reads_the_test_windows_error_by_step_and_the_first_series_forecasts(quantile_run):
    from tsmoe.analysis.forecast_errors import errors_by_step, first_series_path, forecasts_of_test_part
    from tsmoe.cli import write_run_report

    estimator = Estimator.load(quantile_run)
    prepared = estimator.prepare_data()
    forecasts, targets = forecasts_of_test_part(estimator.model_.eval(), prepared)
    mse, mae = errors_by_step(forecasts, targets)
    assert mse.shape == (6,) and mse.mean() == pytest.approx(estimator.metrics_["mse"], rel=1e-5)  # scaled, as scored
    path = first_series_path(prepared, forecasts, targets)
    assert (~np.isnan(path["first"])).sum() == len(forecasts) == (~np.isnan(path["last"])).sum()  # one series
    assert np.all(np.diff(path["x"]) > np.timedelta64(0)) and not np.isnan(path["actual"]).any()
    page = write_run_report(quantile_run).read_text()
    assert '<section id="forecasts">' in page and '<section id="fans">' in page
