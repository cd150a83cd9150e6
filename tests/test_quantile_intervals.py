"""Conformalized quantile regression: a quantile forecaster's own band, moved out or in on its validation split
until it covers its level (``--conformal quantile``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.errors import ConfigError
from tsmoe.intervals import conformal_quantiles
from tsmoe.paths import shipped_data_dir
from tsmoe.quantile_intervals import quantile_bands, quantile_scores

SETS = ["--set", "training.max_epochs=1", "--set", "data.lookback=24", "--set", "data.horizon=6"]
QUANTILES = ["--set", "model.quantiles=[0.1, 0.5, 0.9]"]


def test_the_score_is_the_distance_outside_the_band_and_the_correction_restores_coverage():
    forecasts = np.array([[[[1.0]]], [[[2.0]]], [[[3.0]]]])  # (Q, N, H, C): 1, 2, 3 for one window
    for y, score in ((2.5, -0.5), (0.0, 1.0), (4.0, 1.0), (1.0, 0.0)):
        assert quantile_scores(forecasts, np.full((1, 1, 1), y), [(0, 2)])[0, 0, 0, 0] == score
    rng = np.random.default_rng(0)
    for band in (0.5, 3.0):  # a band too narrow, then too wide, for targets whose spread differs by window
        spread = rng.uniform(0.5, 2.0, size=(22000, 4, 2))
        y = spread * rng.standard_normal(spread.shape)
        forecasts = np.stack([-band * spread, np.zeros_like(spread), band * spread])
        calibration, new = slice(0, 2000), slice(2000, None)
        scores = quantile_scores(forecasts[:, calibration], y[calibration], [(0, 2)])[0]
        correction = conformal_quantiles(scores, [0.8])  # (1, H, C)
        lower, upper = quantile_bands(forecasts[:, new], [(0, 2)], correction)
        assert np.mean((y[new] >= lower[0]) & (y[new] <= upper[0])) == pytest.approx(0.8, abs=0.015)
        assert (correction > 0).all() if band == 0.5 else (correction < 0).all()  # widened, or narrowed


@pytest.fixture(scope="module")
def quantile_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cqr") / "dlq"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(run), *SETS, *QUANTILES]) == 0
    return run


def _by_hand(run, level: float = 0.8, original: bool | None = None):
    """The corrections ``(H, C)`` from the run's validation quantiles, computed here from the definition."""
    estimator = Estimator.load(run)
    prepared = estimator.prepare_data()
    forecasts, target = estimator.quantile_forecasts(prepared, prepared.val, original)
    scores = np.maximum(forecasts[0] - target, target - forecasts[2])  # quantiles 0.1 and 0.9
    k = math.ceil((len(scores) + 1) * level)
    return estimator, prepared, np.sort(scores, axis=0)[k - 1], forecasts, target


def test_evaluate_calibrates_the_runs_own_band_on_its_validation_split(quantile_run, capsys):
    assert main(["evaluate", str(quantile_run), "--intervals", "0.8", "--conformal", "quantile", "--no-plots"]) == 0
    record = json.loads((quantile_run / "metrics-eval.json").read_text())
    estimator, prepared, correction, val_forecasts, val_target = _by_hand(quantile_run)
    forecasts, target = estimator.quantile_forecasts(prepared, prepared.test)
    inside = (target >= forecasts[0] - correction) & (target <= forecasts[2] + correction)
    assert record["conformal"] == "quantile" and record["coverage_80"] == pytest.approx(inside.mean())
    assert record["width_80"] == pytest.approx((forecasts[2] - forecasts[0] + 2 * correction).mean())
    raw = json.loads((quantile_run / "metrics.json").read_text())["coverage_80"]  # the band as trained
    assert record["coverage_80"] != raw
    # on its own validation windows the moved band covers at least the level at every step and target
    covered = (val_target >= val_forecasts[0] - correction) & (val_target <= val_forecasts[2] + correction)
    assert (covered.mean(0) >= 0.8).all()


def test_predict_and_forecast_move_the_band_by_the_correction(quantile_run, tmp_path):
    frame = pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz").tail(100)
    frame.to_csv(tmp_path / "recent.csv", index=False)
    out = tmp_path / "fc.csv"
    args = ["predict", str(quantile_run), str(tmp_path / "recent.csv"), "-o", str(out)]
    assert main([*args, "--intervals", "0.8", "--conformal", "quantile"]) == 0
    table = pd.read_csv(out)
    estimator, _, correction, _, _ = _by_hand(quantile_run, original=True)
    names = [estimator.meta_["channel_names"][c] for c in estimator.meta_["target_channels"]]
    for c, name in enumerate(names):
        q = correction[table["step"] - 1, c]
        assert np.allclose(table[f"{name}_lo_80"], table[f"{name}_q10"] - q, atol=1e-4)
        assert np.allclose(table[f"{name}_hi_80"], table[f"{name}_q90"] + q, atol=1e-4)
    long = frame.rename(columns={"date": "ds"}).assign(unique_id="recent")  # a frame names its series
    python = estimator.forecast(long, intervals=[0.8], conformal="quantile")
    assert np.allclose(python["OT_lo_80"], table["OT_lo_80"], atol=1e-4)


def test_quantile_intervals_are_refused_where_they_cannot_be_made(quantile_run, tmp_path, capsys):
    point = tmp_path / "point"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(point), *SETS]) == 0
    capsys.readouterr()
    run = str(quantile_run)
    refusals = {
        (run, "--intervals", "0.9"): "needs the levels 0.05 and 0.95; this run was trained for [0.1, 0.5, 0.9]",
        (run, "--intervals", "0.8", "--calibration", "rolling"): "rolling calibration takes the median's",
        (run,): "give --intervals too",
        (str(point), "--intervals", "0.8"): "train the run with model.quantiles",
        (run, run, "--intervals", "0.8"): "calibrates one run's own quantiles",
    }
    for extra, message in refusals.items():
        assert main(["evaluate", *extra, "--conformal", "quantile", "--no-plots"]) == 2, extra
        assert message in capsys.readouterr().err
    recent, out = tmp_path / "recent.csv", tmp_path / "fc.csv"
    pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz").tail(100).to_csv(recent, index=False)
    args = ["predict", str(point), str(recent), "-o", str(out), "--intervals", "0.8", "--conformal", "quantile"]
    assert main(args) == 2 and not out.exists()  # refused before forecasting
    with pytest.raises(ConfigError, match="needs the levels 0.05 and 0.95"):  # before the frame is read
        Estimator.load(quantile_run).forecast(pd.read_csv(recent), intervals=[0.9], conformal="quantile")
