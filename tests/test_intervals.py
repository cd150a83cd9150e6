"""Conformal intervals from validation residuals, and the metrics of intervals and quantiles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tsmoe.cli import main
from tsmoe.errors import ConfigError, DataError
from tsmoe.intervals import conformal_quantiles, level_name, rolling_quantiles
from tsmoe.metrics import pinball_loss, quantile_metrics
from tsmoe.paths import shipped_data_dir

SETS = ["--set", "training.max_epochs=1", "--set", "data.lookback=24", "--set", "data.horizon=6"]


def test_the_conformal_half_width_is_the_right_order_statistic():
    residuals = np.arange(1.0, 10.0).reshape(9, 1, 1)  # n = 9
    widths = conformal_quantiles(residuals, [0.5, 0.9, 0.95])
    assert widths[:, 0, 0].tolist() == [5.0, 9.0, np.inf]  # ceil(10 l)-th smallest; 10 > n: no finite width
    assert level_name(0.9) == "90" and level_name(0.975) == "97.5"


def test_conformal_intervals_cover_exchangeable_targets_at_their_level():
    rng = np.random.default_rng(0)
    calibration, new = rng.standard_t(3, size=(2000, 4, 2)), rng.standard_t(3, size=(20000, 4, 2))
    for level in (0.8, 0.9):
        width = conformal_quantiles(np.abs(calibration), [level])[0]
        assert np.mean(np.abs(new) <= width) == pytest.approx(level, abs=0.015)


def test_rolling_widths_come_from_the_latest_windows_whose_targets_are_known():
    rng = np.random.default_rng(1)
    residuals = np.abs(rng.standard_normal((60, 3, 2)))
    origins = np.arange(60) + np.where(np.arange(60) >= 20, 2, 0)  # the scored part starts 2 steps after a gap
    first, horizon, n = 20, 3, 12
    widths = rolling_quantiles(residuals, origins, first, horizon, n, [0.5, 0.9])
    assert widths.shape == (2, 40, 3, 2)
    for g in range(first, 60):  # window g may use the n latest windows with origin <= its own - horizon
        last = np.flatnonzero(origins <= origins[g] - horizon)[-1]
        pool = residuals[last - n + 1 : last + 1]
        assert np.array_equal(widths[:, g - first], conformal_quantiles(pool, [0.5, 0.9]))
    assert np.array_equal(widths[:, 0], conformal_quantiles(residuals[8:20], [0.5, 0.9]))  # the last 12 before the gap
    with pytest.raises(ConfigError, match="over 12 windows needs that many"):
        rolling_quantiles(residuals, np.arange(60), 10, horizon, n, [0.9])  # the first pool would not be full


def test_rolling_calibration_follows_a_series_that_calms_down():
    rng = np.random.default_rng(2)
    wild, calm = np.abs(rng.standard_normal((3000, 1, 1))) * 2, np.abs(rng.standard_normal((6000, 1, 1)))
    residuals = np.concatenate([wild, calm])  # validation twice as wild as the scored part
    fixed = conformal_quantiles(wild, [0.9])[0]
    rolling = rolling_quantiles(residuals, np.arange(9000), 3000, 1, 500, [0.9])[0]
    assert np.mean(calm <= fixed) > 0.99  # validation's widths over-cover the calmer months
    assert np.mean(calm[1000:] <= rolling[1000:]) == pytest.approx(0.9, abs=0.015)  # once the pool has moved on


def test_quantile_metrics_on_known_cases():
    target = np.array([1.0, 2.0, 3.0])
    perfect = quantile_metrics(np.stack([target, target]), np.array([0.1, 0.9]), target)
    assert perfect == {"crps": 0.0, "wql": 0.0}
    assert pinball_loss(np.array([0.0]), np.array([1.0]), 0.9).tolist() == pytest.approx([0.9])
    assert pinball_loss(np.array([2.0]), np.array([1.0]), 0.9).tolist() == pytest.approx([0.1])
    # the CRPS of a point forecast is its absolute error; quantiles all at the point give the same
    point = np.array([1.5, 2.0, 2.0])
    levels = np.linspace(0.01, 0.99, 99)
    assert quantile_metrics(np.stack([point] * 99), levels, target)["crps"] == pytest.approx(
        np.abs(point - target).mean(), rel=1e-9
    )


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory):
    run = tmp_path_factory.mktemp("intervals") / "dl"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(run), *SETS]) == 0
    return run


def test_evaluate_reports_coverage_and_width_per_level(forecaster, capsys):
    before = (forecaster / "metrics.json").read_text()
    assert main(["evaluate", str(forecaster), "--intervals", "0.8", "0.9", "--no-plots"]) == 0
    record = json.loads((forecaster / "metrics-eval.json").read_text())
    assert (forecaster / "metrics.json").read_text() == before  # the training's own record is untouched
    assert 0.5 < record["coverage_80"] < record["coverage_90"] <= 1.0
    low, high = record["coverage_90_ci"]  # the coverage's own sampling interval, windows in blocks
    assert low <= record["coverage_90"] <= high and high - low > 0
    assert 0 < record["width_80"] < record["width_90"]
    assert record["crps"] > 0 and record["wql"] > 0
    assert record["mse"] == pytest.approx(json.loads(before)["mse"])


def test_evaluate_with_rolling_calibration(forecaster, capsys):
    assert main(["evaluate", str(forecaster), "--intervals", "0.9", "--calibration", "rolling", "--no-plots"]) == 0
    rolling = json.loads((forecaster / "metrics-eval.json").read_text())
    assert rolling["calibration"] == "rolling"
    assert rolling["calibration_windows"] == 2880 - 6 + 1  # every validation window: their targets end before test
    assert main(["evaluate", str(forecaster), "--intervals", "0.9", "--calibration", "rolling",
                 "--calibration-windows", "240", "--no-plots"]) == 0  # fmt: skip
    short = json.loads((forecaster / "metrics-eval.json").read_text())
    assert short["calibration_windows"] == 240 and 0.5 < short["coverage_90"] < 1
    assert short["mse"] == rolling["mse"] and short["width_90"] != rolling["width_90"]
    refusals = {
        ("--calibration-windows", "100000"): "needs that many validation windows",
        ("--part", "validation"): "come after its validation windows",
        ("--split", "all"): "with every item scored (split all, the default when data.root is set) there are none",
    }
    for extra, message in refusals.items():
        args = ["evaluate", str(forecaster), "--intervals", "0.9", "--calibration", "rolling", *extra, "--no-plots"]
        assert main(args) == 2
        assert message in capsys.readouterr().err
    assert main(["evaluate", str(forecaster), "--calibration", "rolling", "--no-plots"]) == 2
    assert "give --intervals too" in capsys.readouterr().err
    assert main(["evaluate", str(forecaster), "--intervals", "0.9", "--calibration-windows", "9", "--no-plots"]) == 2
    assert "for rolling calibration" in capsys.readouterr().err


def test_a_run_saved_before_a_size_was_recorded_still_scores(forecaster, tmp_path):
    import shutil

    older = tmp_path / "older"
    shutil.copytree(forecaster, older)
    meta = json.loads((older / "meta.json").read_text())
    assert meta["dims"].pop("step") == 1.0  # runs made before the forecasters recorded their step
    (older / "meta.json").write_text(json.dumps(meta))
    assert main(["evaluate", str(older), "--intervals", "0.9", "--no-plots"]) == 0
    meta["dims"]["lookback"] += 1  # a size it did record must still match
    (older / "meta.json").write_text(json.dumps(meta))
    assert main(["evaluate", str(older), "--no-plots"]) == 2


def test_predict_writes_interval_columns_around_the_forecast(forecaster, tmp_path):
    frame = pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz").tail(100)
    frame.to_csv(tmp_path / "recent.csv", index=False)
    out = tmp_path / "fc.csv"
    assert main(["predict", str(forecaster), str(tmp_path / "recent.csv"), "-o", str(out), "--intervals", "0.9"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 6
    for name in ("OT", "HUFL"):
        assert (table[f"{name}_lo_90"] < table[name]).all() and (table[name] < table[f"{name}_hi_90"]).all()
    plain = tmp_path / "plain.csv"
    assert main(["predict", str(forecaster), str(tmp_path / "recent.csv"), "-o", str(plain)]) == 0
    assert np.allclose(pd.read_csv(plain)["OT"], table["OT"])


def test_bad_interval_requests_are_refused(forecaster, small_physionet, tmp_path, capsys):
    assert main(["evaluate", str(forecaster), "--intervals", "90"]) == 2
    assert "levels between 0 and 1" in capsys.readouterr().err
    assert main(["evaluate", str(forecaster), "--intervals", "0.9", "0.9"]) == 2
    assert "repeats a level" in capsys.readouterr().err
    refit = tmp_path / "refit"
    refit_sets = [*SETS, "--set", "training.refit=true"]
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(refit), *refit_sets]) == 0
    assert main(["evaluate", str(refit), "--intervals", "0.9", "--no-plots"]) == 2
    assert "no held-out validation split" in capsys.readouterr().err
    classifier = tmp_path / "lstm"
    sets = ["--set", "model.hidden_size=8", "--set", "training.max_epochs=1", "--set", f"data.root={small_physionet}",
            "--set", "data.split_file=null"]  # fmt: skip
    assert main(["train", "configs/lstm-physionet2012.yaml", "--out", str(classifier), *sets]) == 0
    assert main(["evaluate", str(classifier), "--intervals", "0.9", "--no-plots"]) == 2
    assert "conformal intervals are for forecasters" in capsys.readouterr().err
    out = tmp_path / "risks.csv"
    assert main(["predict", str(classifier), str(small_physionet), "-o", str(out), "--intervals", "0.9"]) == 2
    assert "conformal intervals are for forecasters" in capsys.readouterr().err and not out.exists()


def test_predict_with_rolling_calibration_uses_the_inputs_latest_known_errors(forecaster, tmp_path, capsys):
    frame = pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz").iloc[-200:].reset_index(drop=True)
    frame.to_csv(tmp_path / "recent.csv", index=False)
    out = tmp_path / "fc.csv"
    args = ["predict", str(forecaster), str(tmp_path / "recent.csv"), "-o", str(out), "--intervals", "0.9"]
    assert main([*args, "--calibration", "rolling", "--calibration-windows", "9"]) == 0
    table = pd.read_csv(out)
    # by hand: the 9 latest windows whose 6 target rows the file holds (origins 186 .. 194), each forecast from
    # the file cut at its origin; at level 0.9 with 9 windows the half-width is the largest of their errors
    names, errors = ["OT", "HUFL"], []
    for origin in range(200 - 6 - 9 + 1, 200 - 6 + 1):
        frame.iloc[:origin].to_csv(tmp_path / "cut.csv", index=False)
        assert main(["predict", str(forecaster), str(tmp_path / "cut.csv"), "-o", str(tmp_path / "cut-fc.csv")]) == 0
        forecast = pd.read_csv(tmp_path / "cut-fc.csv")[names].to_numpy()
        errors.append(forecast - frame.iloc[origin : origin + 6][names].to_numpy())
    width = np.abs(np.stack(errors)).max(0)
    high, low = table[[f"{n}_hi_90" for n in names]].to_numpy(), table[[f"{n}_lo_90" for n in names]].to_numpy()
    assert np.allclose(high - table[names].to_numpy(), width, atol=1e-4)
    assert np.allclose(table[names].to_numpy() - low, width, atol=1e-4)
    # the Python API gives the same from a long frame
    from tsmoe import Estimator

    long = frame.rename(columns={"date": "ds"}).assign(unique_id="recent")
    api = Estimator.load(forecaster).forecast(long, intervals=[0.9], calibration="rolling", calibration_windows=9)
    assert np.allclose(api[[f"{n}_hi_90" for n in names]].to_numpy(), high, atol=1e-4)
    with pytest.raises(ConfigError, match="without a frame"):
        Estimator.load(forecaster).forecast(intervals=[0.9], calibration="rolling")
    refusals = {
        ("--calibration", "rolling", "--calibration-windows", "5"): "too few for a 90 % interval (it needs at least 9)",
        ("--calibration", "rolling", "--calibration-windows", "200"): "calibrating on 200 needs 229 rows",
        ("--calibration-windows", "20"): "is for rolling calibration",
    }
    for extra, message in refusals.items():
        assert main([*args, *extra]) == 2
        assert message in capsys.readouterr().err


def test_a_run_trained_on_a_frame_keeps_its_validation_residuals_for_its_intervals(forecaster, tmp_path, capsys):
    from tsmoe import Estimator
    from tsmoe.intervals import validation_residuals

    steps = np.arange(200)
    frame = pd.concat(
        pd.DataFrame({"unique_id": name, "ds": steps, "y": np.sin(steps / 6 + phase)})
        for name, phase in (("a", 0.0), ("b", 1.0))
    )
    run = tmp_path / "from-frame"
    estimator = Estimator(
        "dlinear", "csv", data_params={"lookback": 24, "horizon": 6}, training={"max_epochs": 1},
        trainer={"accelerator": "cpu"},
    ).fit(frame, run_dir=run)  # fmt: skip
    # what it kept is what its validation split gives when the frame is given again
    kept = estimator.conformal_residuals_
    assert np.array_equal(kept, validation_residuals(estimator, estimator.prepare_data(frame)))
    in_session = estimator.forecast(frame, intervals=[0.9])
    assert (in_session["y_lo_90"] < in_session["y"]).all() and (in_session["y"] < in_session["y_hi_90"]).all()
    pd.testing.assert_frame_equal(Estimator.load(run).forecast(frame, intervals=[0.9]), in_session)
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ["predict", str(run), str(tmp_path / "in.csv"), "-o", str(tmp_path / "fc.csv"), "--intervals", "0.9"]
    assert main(args) == 0
    written = pd.read_csv(tmp_path / "fc.csv")
    assert np.allclose(written[["y", "y_lo_90", "y_hi_90"]], in_session[["y", "y_lo_90", "y_hi_90"]], atol=1e-5)
    assert not (forecaster / "conformal.safetensors").exists()  # a run on a file reads its validation split again
    with pytest.raises(ConfigError, match="a run trained on a frame keeps no path to it"):
        estimator.evaluate()
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    assert "--set data.root=FILE" in capsys.readouterr().err
    assert main(["report", str(run), "--set", f"data.root={tmp_path / 'in.csv'}"]) == 0  # its data given again
    assert (run / "report.html").exists()
    (run / "conformal.safetensors").unlink()  # as a run trained before tsmoe kept its residuals
    capsys.readouterr()
    assert main(args) == 2
    assert "trained on data in memory that it does not keep" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_forecasters(forecaster):
    """The forecaster and a second seed of it (ETTh1's split is chronological: both score the same windows)."""
    second = forecaster.parent / "dl-s1"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(second), *SETS, "--set", "seed=1"]) == 0
    return [forecaster, second]


def test_an_ensemble_of_forecasters_has_intervals_around_its_mean(two_forecasters, tmp_path, capsys):
    from tsmoe import Ensemble, Estimator

    members = [Estimator.load(folder) for folder in two_forecasters]
    prepared = [member.prepare_data() for member in members]

    def mean_and_target(part: str, original: bool) -> tuple[np.ndarray, np.ndarray]:
        scored = [m.scored_outputs(p, getattr(p, part), original) for m, p in zip(members, prepared, strict=True)]
        return np.mean([o.double().numpy() for o, _ in scored], axis=0), scored[0][1].double().numpy()

    # by hand: the width is the conformal quantile of the mean forecast's validation errors, not a member's
    val_mean, val_target = mean_and_target("val", original=False)
    width = conformal_quantiles(np.abs(val_mean - val_target), [0.9])[0]
    test_mean, test_target = mean_and_target("test", original=False)
    result = Ensemble.load(two_forecasters).evaluate(intervals=[0.9])
    assert result["calibration"] == "validation" and result["calibration_windows"] == len(val_target)
    assert result["ensemble"]["coverage_90"] == pytest.approx(np.mean(np.abs(test_target - test_mean) <= width))
    assert result["ensemble"]["width_90"] == pytest.approx(2 * width.mean())
    assert "coverage_90" not in result["members"][0]
    out = tmp_path / "ensemble.json"
    runs = list(map(str, two_forecasters))
    assert main(["evaluate", *runs, "--intervals", "0.9", "--no-plots", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["ensemble"]["coverage_90"] == pytest.approx(result["ensemble"]["coverage_90"])
    assert "| -" in capsys.readouterr().out  # the members have no intervals of their own in the table

    # a forecast file: the members' mean, and around it the original-scale quantile of the mean's errors
    frame = pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz").iloc[-200:].reset_index(drop=True)
    frame.to_csv(tmp_path / "recent.csv", index=False)
    out = tmp_path / "fc.csv"
    assert main(["predict", *runs, str(tmp_path / "recent.csv"), "-o", str(out), "--intervals", "0.9"]) == 0
    meta = members[0].meta_
    table, names = pd.read_csv(out), [meta["channel_names"][c] for c in meta["target_channels"]]
    val_mean, val_target = mean_and_target("val", original=True)
    original_width = conformal_quantiles(np.abs(val_mean - val_target), [0.9])[0]  # (H, C)
    assert np.allclose(table[[f"{n}_hi_90" for n in names]].to_numpy() - table[names].to_numpy(), original_width)
    plain = [m.forecast(frame.rename(columns={"date": "ds"}).assign(unique_id="recent")) for m in members]
    assert np.allclose(table[names].to_numpy(), np.mean([p[names].to_numpy() for p in plain], axis=0), atol=1e-6)
    long = frame.rename(columns={"date": "ds"}).assign(unique_id="recent")
    api = Ensemble.load(two_forecasters).forecast(long, intervals=[0.9])
    assert np.allclose(api[[f"{n}_lo_90" for n in names]], table[[f"{n}_lo_90" for n in names]], atol=1e-5)

    # rolling: each series' widths from the mean forecast's errors on its 9 latest windows with known targets
    args = ["predict", *runs, str(tmp_path / "recent.csv"), "-o", str(out), "--intervals", "0.9"]
    assert main([*args, "--calibration", "rolling", "--calibration-windows", "9"]) == 0
    rolling, errors = pd.read_csv(out), []
    for origin in range(200 - 6 - 9 + 1, 200 - 6 + 1):
        cut = long.iloc[:origin]
        forecast = Ensemble.load(two_forecasters).forecast(cut)[names].to_numpy()
        errors.append(forecast - frame.iloc[origin : origin + 6][names].to_numpy())
    high = rolling[[f"{n}_hi_90" for n in names]].to_numpy() - rolling[names].to_numpy()
    assert np.allclose(high, np.abs(np.stack(errors)).max(0), atol=1e-4)
    ensemble = Ensemble.load(two_forecasters)
    by_api = ensemble.forecast(long, intervals=[0.9], calibration="rolling", calibration_windows=9)
    assert np.allclose(by_api[[f"{n}_hi_90" for n in names]].to_numpy(), rolling[[f"{n}_hi_90" for n in names]])

    # rolling on the test split: the mean's errors on the windows before each scored one; the point metrics stay
    rolled = Ensemble.load(two_forecasters).evaluate(intervals=[0.9], calibration="rolling", calibration_windows=240)
    assert rolled["calibration_windows"] == 240 and 0.5 < rolled["ensemble"]["coverage_90"] < 1
    assert rolled["ensemble"]["mse"] == pytest.approx(result["ensemble"]["mse"])
    with pytest.raises(ConfigError, match="there are none"):
        Ensemble.load(two_forecasters).evaluate(split="all", intervals=[0.9], calibration="rolling")

    # members of other lookbacks score other windows of the split, but forecast the same recent targets
    longer = tmp_path / "dl-l30"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(longer), *SETS, "--set", "data.lookback=30"]) == 0
    mixed = Ensemble.load([two_forecasters[0], longer])
    with pytest.raises(DataError, match=r"other lookbacks \(24 and 30 steps\)"):
        mixed.evaluate(intervals=[0.9])
    mixed_rolling = mixed.forecast(long, intervals=[0.9], calibration="rolling", calibration_windows=9)
    assert np.isfinite(mixed_rolling[[f"{n}_hi_90" for n in names]].to_numpy()).all()


def test_an_ensemble_of_runs_trained_on_frames_takes_rolling_intervals_only(tmp_path, capsys):
    from tsmoe import Ensemble, Estimator

    steps = np.arange(200)
    frame = pd.DataFrame({"unique_id": "a", "ds": steps, "y": np.sin(steps / 6)})
    for seed in (0, 1):
        Estimator(
            "dlinear", "csv", data_params={"lookback": 24, "horizon": 6}, training={"max_epochs": 1},
            trainer={"accelerator": "cpu"}, seed=seed,
        ).fit(frame, run_dir=tmp_path / f"s{seed}")  # fmt: skip
    ensemble = Ensemble.load([tmp_path / "s0", tmp_path / "s1"])
    # each kept only its own absolute errors, and the mean forecast's errors are not made from those
    with pytest.raises(ConfigError, match="trained on data in memory: an ensemble's intervals"):
        ensemble.forecast(frame, intervals=[0.9])
    rolling = ensemble.forecast(frame, intervals=[0.9], calibration="rolling", calibration_windows=19)
    assert (rolling["y_lo_90"] < rolling["y"]).all() and (rolling["y"] < rolling["y_hi_90"]).all()
    frame.to_csv(tmp_path / "in.csv", index=False)
    runs = [str(tmp_path / "s0"), str(tmp_path / "s1")]
    args = ["predict", *runs, str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv")]
    assert main([*args, "--intervals", "0.9"]) == 2  # refused before anything is forecast or written
    assert "--calibration rolling" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()
