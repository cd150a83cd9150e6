"""The one training path, end to end on small real data: fit, save, load, evaluate, predict, determinism."""

import json

import numpy as np
import pytest
import torch

from tests.metric_dicts import flat
from tests.tiny_runs import TINY_LSTM, tiny_lstm
from tsmoe import Estimator
from tsmoe.errors import ConfigError, DataError, ModelFileError
from tsmoe.io import read_weights
from tsmoe.metrics import BINARY_METRICS


def lstm_estimator(root, seed=0) -> Estimator:
    return tiny_lstm(seed, root)


@pytest.fixture(scope="module")
def lstm_run(small_physionet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "lstm"
    estimator = lstm_estimator(small_physionet).fit(run_dir=folder)
    return estimator, folder


def test_run_folder_holds_every_artifact(lstm_run):
    estimator, folder = lstm_run
    names = {p.name for p in folder.iterdir()}
    assert {
        "config.yaml",
        "model.safetensors",
        "preprocessing.safetensors",
        "meta.json",
        "metrics.json",
        "split.json",
        "logs",
    } <= names
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) == set(BINARY_METRICS) and 0.0 <= metrics["auroc"] <= 1.0
    split = json.loads((folder / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 400
    assert (folder / "logs" / "metrics.csv").read_text().count("val_auroc") >= 1


def test_loaded_run_gives_the_same_numbers(lstm_run):
    estimator, folder = lstm_run
    loaded = Estimator.load(folder)
    assert flat(loaded.evaluate()) == pytest.approx(flat(estimator.metrics_), abs=1e-7)
    proba = loaded.predict_proba()
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1)
    assert set(np.unique(loaded.predict())) <= {0, 1}


def test_same_seed_gives_identical_weights(small_physionet, lstm_run, tmp_path):
    _, folder = lstm_run
    lstm_estimator(small_physionet).fit(run_dir=tmp_path / "again")
    first, second = read_weights(folder / "model.safetensors"), read_weights(tmp_path / "again" / "model.safetensors")
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=0)


def test_evaluate_on_data_it_never_saw(lstm_run, other_physionet):
    _, folder = lstm_run
    metrics = Estimator.load(folder).evaluate(split="all", data_overrides={"root": str(other_physionet)})
    assert set(metrics) == set(BINARY_METRICS)
    with pytest.raises(DataError, match="are not in the data"):  # the run's split does not fit other data
        Estimator.load(folder).evaluate(
            data_overrides={"root": str(other_physionet), "split_file": str(folder / "split.json")}
        )


def test_forecaster_round_trip(tmp_path):
    estimator = Estimator(
        "dlinear",
        "etth1",
        data_params={"lookback": 48, "horizon": 12},
        training={"max_epochs": 1, "batch_size": 64},
        trainer={"accelerator": "cpu"},
    ).fit(run_dir=tmp_path / "dl")
    # ETTh1 is scored on the z-scored scale (as P4 reports it): a percentage error of z-scores means nothing
    assert set(estimator.metrics_) == {"mse", "mae", "mse_ci", "mae_ci"}
    loaded = Estimator.load(tmp_path / "dl")
    assert flat(loaded.evaluate()) == pytest.approx(flat(estimator.metrics_), rel=1e-6)
    forecast = loaded.predict()
    assert forecast.shape == (2880 - 12 + 1, 12, 7)


def test_fit_on_a_users_long_dataframe():
    import pandas as pd

    rng = np.random.default_rng(0)
    t = np.arange(300)
    frame = pd.concat(
        pd.DataFrame({"unique_id": name, "ds": t, "y": np.sin(t / 6 + phase) + 0.05 * rng.normal(size=300)})
        for name, phase in (("a", 0.0), ("b", 1.0))
    )
    estimator = Estimator(
        "dlinear",
        "csv",
        data_params={"lookback": 24, "horizon": 6},
        training={"max_epochs": 30, "lr": 0.01, "patience": 30},
        trainer={"accelerator": "cpu"},
    ).fit(frame)
    assert estimator.metrics_["mse"] < 0.05  # noise variance is 0.0025; the sine itself is learnable
    assert estimator.predict(frame).shape[1:] == (6, 1)


def test_wrong_model_for_data_and_unfitted_use():
    with pytest.raises(ConfigError, match="reads window input but the data gives irregular input"):
        Estimator("dlinear", "physionet2012", data_params={"split_file": None}).fit()
    with pytest.raises(ConfigError, match="not fitted"):
        Estimator("dlinear", "etth1").predict()
    with pytest.raises(ConfigError, match=r"model_params is a mapping of settings \(\{key: value\}\), got \[64\]"):
        Estimator("lstm", "physionet2012", model_params=[64])
    with pytest.raises(ConfigError, match="training is a mapping of settings"):
        Estimator("lstm", "physionet2012", training="fast")


def test_a_split_other_than_default_or_all_is_refused(lstm_run):
    with pytest.raises(ConfigError, match=r"split is 'default' .* or 'all' .*, got 'test'"):
        lstm_run[0].evaluate(split="test")


def test_broken_run_folders_fail_clearly(lstm_run, tmp_path):
    import shutil

    _, folder = lstm_run
    copy = shutil.copytree(folder, tmp_path / "copy")
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model.safetensors"):
        Estimator.load(copy)
    shutil.copy(folder / "model.safetensors", copy / "model.safetensors")
    config = (copy / "config.yaml").read_text().replace("hidden_size: 8", "hidden_size: 9")
    (copy / "config.yaml").write_text(config)
    with pytest.raises(ModelFileError, match="does not match the model built from its config"):
        Estimator.load(copy)


def test_tensorboard_logging_is_an_option(tmp_path):
    Estimator(
        "dlinear",
        "etth1",
        data_params={"lookback": 24, "horizon": 6},
        training={"max_epochs": 1},
        trainer={"accelerator": "cpu"},
        logging={"tensorboard": True},
    ).fit(run_dir=tmp_path / "tb")
    assert list((tmp_path / "tb" / "tensorboard").rglob("events.out.tfevents.*"))


def test_regression_of_length_of_stay(small_physionet, caplog):
    import logging

    caplog.set_level(logging.WARNING)
    estimator = Estimator(
        "lstm",
        "physionet2012",
        model_params=TINY_LSTM,
        training={"max_epochs": 3, "lr": 0.01},
        data_params={"root": str(small_physionet), "split_file": None, "label": "Length_of_stay"},
        trainer={"accelerator": "cpu"},
    ).fit()
    assert estimator.meta_["task"] == "regression"
    assert set(estimator.metrics_) == {"mse", "mae", "mape", "mse_ci", "mae_ci"}
    values = estimator.predict()
    assert 3 < values.mean() < 40  # days, on the target's own scale (the training mean is about 13)
    with pytest.raises(ConfigError, match="predict_proba is for classifiers"):
        estimator.predict_proba()
    # a mean predictor has MSE = the test variance; a trained model must not be far worse than that
    from tsmoe.data.sources.physionet2012 import load_physionet2012

    labels = load_physionet2012(small_physionet, label="Length_of_stay").labels
    assert estimator.metrics_["mse"] < 1.5 * np.nanvar(labels)
    if np.isnan(labels).any():
        assert "have no target" in caplog.text


def test_mape_is_reported_on_the_original_scale_only(tmp_path, capsys):
    from tsmoe.cli import main

    common = {"data_params": {"lookback": 24, "horizon": 6}, "training": {"max_epochs": 1},
              "trainer": {"accelerator": "cpu"}}  # fmt: skip
    scaled = Estimator("dlinear", "etth1", **common).fit(run_dir=tmp_path / "scaled")
    assert "mape" not in scaled.metrics_
    assert main(["evaluate", str(tmp_path / "scaled"), "--no-plots"]) == 0
    assert "mape" not in json.loads((tmp_path / "scaled" / "metrics.json").read_text())
    common["data_params"] = {**common["data_params"], "metrics_scale": "original"}
    original = Estimator("dlinear", "etth1", **common).fit()
    assert 0 < original.metrics_["mape"] < 100  # oil temperatures, far from zero: a meaningful percentage
