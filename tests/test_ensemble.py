"""Deep ensembles of saved runs: the mean of the members' probabilities or forecasts, scored as one model."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tests.metric_dicts import flat
from tests.tiny_runs import tiny_lstm
from tsmoe.cli import main
from tsmoe.data.sources.ett import load_ett
from tsmoe.ensemble import Ensemble
from tsmoe.errors import ConfigError, DataError
from tsmoe.estimator import Estimator
from tsmoe.metrics import BINARY_METRICS
from tsmoe.tasks import get_task


def lstm_run(folder, seed, root, split_file=None):
    return tiny_lstm(seed, root, split_file).fit(run_dir=folder)


@pytest.fixture(scope="module")
def two_seeds(small_physionet, tmp_path_factory):
    """Two LSTM runs (seeds 0 and 1) on one split: the second reads the split the first wrote."""
    root = tmp_path_factory.mktemp("ensemble")
    lstm_run(root / "s0", 0, small_physionet)
    lstm_run(root / "s1", 1, small_physionet, split_file=str(root / "s0" / "split.json"))
    return [root / "s0", root / "s1"]


def test_the_ensemble_scores_the_mean_of_its_members_probabilities(two_seeds):
    members = [Estimator.load(folder) for folder in two_seeds]
    result = Ensemble.load(two_seeds).evaluate()
    for member, scores in zip(members, result["members"], strict=True):
        assert flat(scores) == pytest.approx(flat(member.evaluate()), abs=1e-6)
    probabilities = [member.predict_proba() for member in members]
    assert not np.allclose(probabilities[0], probabilities[1])  # two seeds, two models
    mean = (probabilities[0] + probabilities[1]) / 2
    np.testing.assert_allclose(Ensemble.load(two_seeds).predict_proba(), mean, atol=1e-6)
    prepared = members[0].prepare_data()
    labels = members[0].scored_outputs(prepared, prepared.test)[1]
    expected = get_task("binary").score_probabilities(torch.tensor(mean[:, 1]), labels)
    assert flat(result["ensemble"]) == pytest.approx(flat(expected), abs=1e-6)
    np.testing.assert_array_equal(Ensemble.load(two_seeds).predict(), (mean[:, 1] >= 0.5).astype(int))


def test_the_ensemble_can_be_scored_on_validation_without_the_test(two_seeds):
    validation = Ensemble.load(two_seeds).evaluate(part="validation")
    test = Ensemble.load(two_seeds).evaluate()
    assert validation["ensemble"] != test["ensemble"]
    with pytest.raises(ConfigError, match="no validation part"):
        Ensemble.load(two_seeds).evaluate(split="all", part="validation")


def test_a_forecast_ensemble_averages_forecasts_and_its_mse_is_at_most_the_members_mean(tmp_path):
    folders = []
    for seed in (0, 1):
        Estimator(
            "dlinear",
            "etth1",
            seed=seed,
            data_params={"lookback": 48, "horizon": 12},
            training={"max_epochs": 1, "batch_size": 64},
            trainer={"accelerator": "cpu"},
        ).fit(run_dir=tmp_path / f"s{seed}")
        folders.append(tmp_path / f"s{seed}")
    ensemble = Ensemble.load(folders)
    forecasts = [Estimator.load(folder).predict() for folder in folders]
    np.testing.assert_allclose(ensemble.predict(), (forecasts[0] + forecasts[1]) / 2, rtol=1e-5, atol=1e-6)
    recent = tmp_path / "recent.csv"
    series = load_ett().series[0]
    frame = pd.DataFrame(series.values[-100:], columns=load_ett().columns)
    frame.insert(0, "date", pd.to_datetime(series.timestamps[-100:]))
    frame.to_csv(recent, index=False)
    for i, folder in enumerate([*folders, folders]):
        runs = list(map(str, folder)) if isinstance(folder, list) else [str(folder)]
        assert main(["predict", *runs, str(recent), "-o", str(tmp_path / f"f{i}.csv")]) == 0
    single = [pd.read_csv(tmp_path / f"f{i}.csv") for i in (0, 1)]
    mean = pd.read_csv(tmp_path / "f2.csv")
    assert list(mean.columns) == list(single[0].columns) and mean["ds"].equals(single[0]["ds"])
    np.testing.assert_allclose(mean["OT"], (single[0]["OT"] + single[1]["OT"]) / 2, rtol=1e-6)
    result = ensemble.evaluate()
    # the squared error is convex, so the mean forecast's MSE is at most the members' mean MSE (Jensen)
    assert result["ensemble"]["mse"] <= np.mean([m["mse"] for m in result["members"]]) + 1e-9
    assert result["ensemble"]["mse"] < max(m["mse"] for m in result["members"])
    # a member with quantiles scores beside a point forecaster (its median), but their tables differ in columns
    Estimator(
        "dlinear", "etth1", model_params={"quantiles": [0.1, 0.5, 0.9]}, data_params={"lookback": 48, "horizon": 12},
        training={"max_epochs": 1, "batch_size": 64}, trainer={"accelerator": "cpu"},
    ).fit(run_dir=tmp_path / "q")  # fmt: skip
    assert np.isfinite(Ensemble.load([folders[0], tmp_path / "q"]).evaluate()["ensemble"]["mse"])
    with pytest.raises(DataError, match="their quantile columns differ: train them with one model.quantiles"):
        Ensemble.load([folders[0], tmp_path / "q"]).predict_table(recent)


def test_members_tested_on_different_items_are_refused(two_seeds, small_physionet, tmp_path):
    seeded_split = lstm_run(tmp_path / "other", 7, small_physionet)  # its own seeded split
    with pytest.raises(DataError, match="split differently"):
        Ensemble([Estimator.load(two_seeds[0]), seeded_split]).evaluate()
    # on other data with split 'all' the members' training splits do not matter
    other = Ensemble([Estimator.load(two_seeds[0]), seeded_split]).evaluate(split="all")
    assert set(other["ensemble"]) == set(BINARY_METRICS)


def test_an_ensemble_of_one_or_of_different_tasks_is_refused(two_seeds, tmp_path):
    with pytest.raises(ConfigError, match="at least two fitted runs, got 1"):
        Ensemble.load(two_seeds[:1])
    with pytest.raises(ConfigError, match="is given twice"):  # the same run, spelled two ways
        Ensemble.load([two_seeds[0], two_seeds[1], two_seeds[1].parent / ".." / two_seeds[1].parent.name / "s0"])
    one = Estimator.load(two_seeds[0])
    with pytest.raises(ConfigError, match="are the same estimator"):
        Ensemble([one, one])
    forecaster = Estimator(
        "dlinear",
        "etth1",
        data_params={"lookback": 24, "horizon": 6},
        training={"max_epochs": 1},
        trainer={"accelerator": "cpu"},
    ).fit()
    with pytest.raises(ConfigError, match="different data sets"):
        Ensemble([Estimator.load(two_seeds[0]), forecaster])
    with pytest.raises(ConfigError, match="not fitted"):
        Ensemble([Estimator.load(two_seeds[0]), Estimator("lstm", "physionet2012")])


def test_evaluate_with_several_runs_prints_and_writes_the_ensemble(two_seeds, tmp_path, capsys):
    before = {folder: (folder / "metrics.json").read_text() for folder in two_seeds}
    out = tmp_path / "ensemble.json"
    assert main(["evaluate", *map(str, two_seeds), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ensemble of 2" in printed and "members, mean +- std" in printed
    written = json.loads(out.read_text())
    assert written["runs"] == [str(f) for f in two_seeds] and written["part"] == "test"
    assert flat(written["ensemble"]) == pytest.approx(flat(Ensemble.load(two_seeds).evaluate()["ensemble"]), abs=1e-6)
    assert {folder: (folder / "metrics.json").read_text() for folder in two_seeds} == before  # members untouched
    assert main(["evaluate", *map(str, two_seeds), "--out", str(out)]) == 0  # its own record: replaced
    (tmp_path / "mine.json").write_text('{"my": "numbers"}')
    assert main(["evaluate", *map(str, two_seeds), "--out", str(tmp_path / "mine.json")]) == 2
    assert "exists and holds something else" in capsys.readouterr().err
    assert (tmp_path / "mine.json").read_text() == '{"my": "numbers"}'


def test_evaluate_scores_one_run_on_its_validation_part_beside_its_test_metrics(two_seeds, capsys):
    run = two_seeds[0]
    test_metrics = (run / "metrics.json").read_text()
    assert main(["evaluate", str(run), "--part", "validation", "--no-plots"]) == 0
    written = json.loads((run / "metrics-eval.json").read_text())
    assert written["part"] == "validation" and written["split"] == "default"
    assert written["auroc"] == pytest.approx(
        Ensemble.load(two_seeds).evaluate(part="validation")["members"][0]["auroc"]
    )
    assert (run / "metrics.json").read_text() == test_metrics
    assert main(["evaluate", str(run), "--out", "x.json"]) == 2
    assert "--out is for an ensemble" in capsys.readouterr().err


def test_the_scores_of_a_subset_of_outputs_are_the_ensemble_of_those_members(two_seeds, small_physionet, tmp_path):
    third = lstm_run(tmp_path / "s2", 2, small_physionet, split_file=str(two_seeds[0] / "split.json"))
    ensemble = Ensemble([*map(Estimator.load, two_seeds), third])
    outputs, target = ensemble.member_outputs(part="validation")
    assert len(outputs) == 3
    subset, pair = ensemble.scores(outputs[:2], target), Ensemble.load(two_seeds).evaluate(part="validation")
    assert flat(subset["ensemble"]) == pytest.approx(flat(pair["ensemble"]), abs=1e-6)
    for mine, theirs in zip(subset["members"], pair["members"], strict=True):
        assert flat(mine) == pytest.approx(flat(theirs), abs=1e-6)
    assert ensemble.scores(outputs, target)["ensemble"] != subset["ensemble"]


def test_predict_with_several_runs_writes_the_mean_probability(two_seeds, other_physionet, tmp_path):
    for name, runs in (("a", two_seeds[:1]), ("b", two_seeds[1:]), ("ab", two_seeds)):
        assert main(["predict", *map(str, runs), str(other_physionet), "-o", str(tmp_path / f"{name}.csv")]) == 0
    a, b, ab = (pd.read_csv(tmp_path / f"{name}.csv") for name in ("a", "b", "ab"))
    twice = tmp_path / "twice.csv"  # a run named twice would weigh double: refused, nothing written
    assert main(["predict", str(two_seeds[0]), str(two_seeds[0]), str(other_physionet), "-o", str(twice)]) == 2
    assert not twice.exists()
    assert list(ab.columns) == ["record_id", "probability", "prediction"] and ab["record_id"].equals(a["record_id"])
    np.testing.assert_allclose(ab["probability"], (a["probability"] + b["probability"]) / 2, atol=1e-7)
    assert (ab["prediction"] == (ab["probability"] >= 0.5)).all()


def test_intervals_are_refused_for_an_ensemble_of_classifiers_before_any_scoring(two_seeds):
    with pytest.raises(ConfigError, match="conformal intervals are for forecasters; this ensemble's task is binary"):
        Ensemble.load(two_seeds).evaluate(intervals=[0.9])
