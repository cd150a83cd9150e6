"""Temperature scaling: fitted on validation, saved with the run, applied wherever the run predicts, and
changing no ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_runs import tiny_lstm
from tsmoe import Estimator
from tsmoe.errors import ConfigError
from tsmoe.training.calibration import fit_temperature, negative_log_likelihood


def test_the_fitted_temperature_recovers_the_one_that_made_the_labels():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(40_000, generator=generator) * 3
    for true in (0.5, 2.0):
        labels = torch.bernoulli(torch.sigmoid(logits / true), generator=generator)
        assert fit_temperature(logits, labels) == pytest.approx(true, rel=0.05)
    classes = torch.randn(20_000, 4, generator=generator) * 2  # multiclass: softmax(z / T)
    labels = torch.multinomial(torch.softmax(classes / 3.0, -1), 1, generator=generator).squeeze(1)
    fitted = fit_temperature(classes, labels)
    assert fitted == pytest.approx(3.0, rel=0.05)
    assert negative_log_likelihood(classes, labels, fitted) <= negative_log_likelihood(classes, labels, 1.0)


@pytest.mark.slow
def test_a_calibrated_run_keeps_its_temperature_and_its_ranking(small_physionet, tmp_path):
    raw = tiny_lstm(0, small_physionet).fit(run_dir=tmp_path / "raw")
    calibrated = tiny_lstm(0, small_physionet, calibrate="temperature").fit(run_dir=tmp_path / "calibrated")
    record = calibrated.meta_["calibration"]
    assert record["method"] == "temperature" and record["temperature"] > 0
    assert record["validation_log_loss_after"] <= record["validation_log_loss_before"] + 1e-9
    assert "calibration" not in raw.meta_
    # the same seed trains the same weights; the temperature moves probabilities, never their order
    assert calibrated.metrics_["auroc"] == pytest.approx(raw.metrics_["auroc"], abs=1e-9)
    p_raw, p_cal = raw.predict_proba()[:, 1], calibrated.predict_proba()[:, 1]
    logits = np.log(p_raw / (1 - p_raw))
    np.testing.assert_allclose(p_cal, 1 / (1 + np.exp(-logits / record["temperature"])), rtol=1e-4, atol=1e-6)
    reloaded = Estimator.load(tmp_path / "calibrated")  # predict and evaluate apply it after loading
    np.testing.assert_allclose(reloaded.predict_proba()[:, 1], p_cal, rtol=1e-6)
    assert reloaded.evaluate()["brier"] == pytest.approx(calibrated.metrics_["brier"])


def test_calibration_is_refused_for_a_refit_and_for_forecasting(small_physionet):
    with pytest.raises(ConfigError, match="refit cannot calibrate"):
        tiny_lstm(0, small_physionet, calibrate="temperature", refit=True)
    training = {"max_epochs": 1, "calibrate": "temperature"}
    forecaster = Estimator("dlinear", "etth1", data_params={"lookback": 24, "horizon": 6}, training=training)
    with pytest.raises(ConfigError, match="temperature scaling is for classifiers"):
        forecaster.fit()


@pytest.mark.slow
def test_a_trained_run_is_calibrated_afterwards_as_if_trained_with_it(small_physionet, tmp_path, capsys):
    from tsmoe.cli import main

    raw = tiny_lstm(0, small_physionet).fit(run_dir=tmp_path / "raw")
    trained = tiny_lstm(0, small_physionet, calibrate="temperature").fit(run_dir=tmp_path / "trained")
    assert main(["calibrate", str(tmp_path / "raw")]) == 0
    assert "fitted on the validation split" in capsys.readouterr().out
    later = Estimator.load(tmp_path / "raw")
    assert later.meta_["calibration"]["temperature"] == pytest.approx(trained.meta_["calibration"]["temperature"])
    np.testing.assert_allclose(later.predict_proba(), trained.predict_proba(), rtol=1e-6)
    assert raw.metrics_["auroc"] == pytest.approx(later.evaluate()["auroc"], abs=1e-9)
