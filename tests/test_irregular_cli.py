"""A user's own irregular table from the command line: train the recipe, score another table, predict."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.ensemble import Ensemble
from tsmoe.ensemble_stream import EnsembleStream
from tsmoe.errors import ConfigError, DataError
from tsmoe.paths import cache_dir

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["--set", "data.id_col=pump", "--set", "data.variable_col=sensor", "--set", "data.value_col=reading",
           "--set", "data.label_col=failed", "--set", "data.duplicates=mean"]  # fmt: skip
TINY = ["--set", "model.hidden_size=8", "--set", "training.max_epochs=1", "--set", "trainer.accelerator=cpu"]


def sensor_log(folder: Path, pumps: int, seed: int) -> Path:
    """The made-up sensor log of the docs' worked example, written by its own script."""
    script = ROOT / "benchmarks" / "make_sensor_log.py"
    subprocess.run([sys.executable, str(script), "--pumps", str(pumps), "--seed", str(seed), "--out", str(folder)],
                   check=True, capture_output=True)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def sensor_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("sensors")
    logs, other = sensor_log(base / "log", 120, 0), sensor_log(base / "other", 40, 1)
    run = base / "run"
    tables = [f"data.{name}=log/{name}.csv" for name in ("observations", "labels", "static")]  # relative
    here = os.getcwd()
    os.chdir(base)
    try:
        code = main(["train", "mrmoe-irregular", "--out", str(run), *[a for t in tables for a in ("--set", t)],
                     *COLUMNS, *TINY])  # fmt: skip
    finally:
        os.chdir(here)
    assert code == 0
    return run, logs, other


def test_the_recipe_trains_on_a_users_table_and_keeps_its_variables_and_split(sensor_run):
    run, logs, _ = sensor_run
    config = (run / "config.yaml").read_text()
    assert f"observations: {logs / 'observations.csv'}" in config  # absolute: read again from any folder
    meta = json.loads((run / "meta.json").read_text())
    assert meta["channel_names"] == ["oil_quality", "pressure", "temperature", "vibration"]
    assert meta["static_names"] == ["model", "age_years"]
    split = json.loads((run / "split.json").read_text())
    parts = [set(split[p]) for p in ("train", "val", "test")]
    assert sum(map(len, parts)) == 120 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert all(pump.startswith("pump-") for pump in parts[2])  # the table's own IDs, as text
    assert "cells given different values in several rows (mean taken)" in meta["data_notes"]


def test_another_table_is_scored_whole_and_predicted_per_entity(sensor_run, tmp_path):
    run, _, other = sensor_run
    observations, labels, static = (str(other / f"{name}.csv") for name in ("observations", "labels", "static"))
    assert main(["evaluate", str(run), "--no-plots", "--set", f"data.observations={observations}",
                 "--set", f"data.labels={labels}", "--set", f"data.static={static}"]) == 0  # fmt: skip
    scored = json.loads((run / "metrics-eval.json").read_text())
    assert scored["split"] == "all" and 0.0 <= scored["auroc"] <= 1.0
    out = tmp_path / "risks.csv"
    assert main(["predict", str(run), observations, "-o", str(out), "--set", f"data.static={static}"]) == 0
    risks = pd.read_csv(out)
    assert list(risks.columns) == ["pump", "probability", "prediction"] and len(risks) == 40
    estimator = Estimator.load(run)
    expected = estimator.predict_proba(split="all", data_overrides={"observations": observations, "labels": labels,
                                                                     "static": static})[:, 1]  # fmt: skip
    np.testing.assert_allclose(risks["probability"], expected, rtol=1e-5)


def test_a_table_with_other_sensors_in_another_order_is_matched_by_name(sensor_run, tmp_path, caplog):
    run, _, other = sensor_run
    frame = pd.read_csv(other / "observations.csv")
    same = tmp_path / "same.csv"
    frame.to_csv(same, index=False)
    extra = frame[frame.sensor == "vibration"].assign(sensor="humidity")
    shuffled = pd.concat([frame, extra]).sample(frac=1.0, random_state=0)[["reading", "sensor", "pump", "time"]]
    mixed = tmp_path / "mixed.csv"
    shuffled.to_csv(mixed, index=False)
    outputs = []
    for table in (same, mixed):
        out = tmp_path / f"{table.stem}-risks.csv"
        assert main(["predict", str(run), str(table), "-o", str(out)]) == 0
        outputs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])  # the extra sensor is ignored, the order irrelevant
    assert "'humidity'" in caplog.text and "static columns missing" in caplog.text
    without_pressure = tmp_path / "no-pressure.csv"
    frame[frame.sensor != "pressure"].to_csv(without_pressure, index=False)
    assert main(["predict", str(run), str(without_pressure), "-o", str(tmp_path / "np.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "np.csv")) == 40  # a sensor the table lacks stays unobserved


def test_a_stream_takes_the_tables_timestamps_and_gives_what_predict_gives_after_each_step(sensor_run, tmp_path):
    run, _, other = sensor_run
    out = tmp_path / "steps.csv"
    static_file = str(other / "static.csv")
    assert main(["predict", str(run), str(other / "observations.csv"), "--per-step", "-o", str(out),
                 "--set", f"data.static={static_file}"]) == 0  # fmt: skip
    expected = pd.read_csv(out)
    log = pd.read_csv(other / "observations.csv")
    static = pd.read_csv(static_file).set_index("pump")
    stream = Estimator.load(run).stream()
    for pump, given in (("pump-00000", pd.Timestamp), ("pump-00001", str), ("pump-00002", np.datetime64)):
        stream.open(pump, static=static.loc[pump].dropna().to_dict())
        rows = log[log.pump == pump]
        risks = [stream.update(pump, given(row.time), {row.sensor: row.reading}) for row in rows.itertuples()]
        last_of_step = (rows.time != rows.time.shift(-1)).to_numpy()  # rows at one time are one step
        # to 1e-6: the readings (3 decimals) are rounded to float32 as the table's are, or the quantile scaling,
        # which can jump at a value many rows share, gives risks up to 4e-4 apart
        np.testing.assert_allclose(np.array(risks)[last_of_step], expected[expected.pump == pump].probability,
                                   atol=1e-6)  # fmt: skip
    later = pd.Timestamp(log[log.pump == "pump-00000"].time.max()) + pd.Timedelta(hours=1)
    with pytest.raises(DataError, match="its clock runs on timestamps, and the time 3.0 is a number"):
        stream.update("pump-00000", 3.0, {"pressure": 5.0})
    with pytest.raises(DataError, match="'yesterday' is not a time"):
        stream.update("pump-00000", "yesterday", {"pressure": 5.0})
    first = pd.Timestamp(log[log.pump == "pump-00000"].time.min())
    with pytest.raises(DataError, match=r"goes back [0-9.e+-]+ hours before its last update"):
        stream.update("pump-00000", (first + pd.Timedelta(seconds=1)).isoformat(), {"pressure": 5.0})
    with pytest.raises(DataError, match="is before its start"):
        stream.update("pump-00000", first - pd.Timedelta(seconds=1), {"pressure": 5.0})
    with pytest.raises(DataError, match="names no entity"):
        stream.update(None, later, {"pressure": 5.0})
    with pytest.raises(DataError, match="not a finite number within float32's range"):
        stream.update("pump-00000", later, {"pressure": 1e300})
    with pytest.raises(DataError, match="static descriptor 'age_years' of entity 'new' is 'old', not a number"):
        stream.open("new", static={"age_years": "old"})
    # an hour after the last reading, given in another time zone: the same instant as its UTC reading (one step)
    aware = stream.update("pump-00000", later.tz_localize("UTC").tz_convert("Etc/GMT+2"), {"pressure": 5.0})
    assert aware == stream.update("pump-00000", later, {})


def test_a_text_static_column_trains_as_indicators_that_predict_and_the_stream_read_alike(sensor_run, tmp_path):
    _, logs, other = sensor_run
    for folder in (logs, other):  # the pumps' model as text, as an export would give it
        static = pd.read_csv(folder / "static.csv")
        static.assign(model="type-" + static.model.astype(str)).to_csv(tmp_path / f"{folder.name}.csv", index=False)
    run = tmp_path / "run"
    tables = ["--set", f"data.observations={logs / 'observations.csv'}", "--set", f"data.labels={logs / 'labels.csv'}"]
    assert main(["train", "mrmoe-irregular", "--out", str(run), *tables, "--set", f"data.static={tmp_path / 'log.csv'}",
                 *COLUMNS, *TINY]) == 0  # fmt: skip
    names = json.loads((run / "meta.json").read_text())["static_names"]
    assert names == ["model=type-0", "model=type-1", "model=type-2", "age_years"]
    out = tmp_path / "steps.csv"
    assert main(["predict", str(run), str(other / "observations.csv"), "--per-step", "-o", str(out),
                 "--set", f"data.static={tmp_path / 'other.csv'}"]) == 0  # fmt: skip
    expected, log = pd.read_csv(out), pd.read_csv(other / "observations.csv")
    static = pd.read_csv(tmp_path / "other.csv").set_index("pump")
    stream = Estimator.load(run).stream()
    pump = "pump-00003"
    stream.open(pump, static=static.loc[pump].to_dict())  # {"model": "type-2", "age_years": 2.8}
    rows = log[log.pump == pump]
    risks = [stream.update(pump, row.time, {row.sensor: row.reading}) for row in rows.itertuples()]
    last_of_step = (rows.time != rows.time.shift(-1)).to_numpy()
    np.testing.assert_allclose(np.array(risks)[last_of_step], expected[expected.pump == pump].probability, atol=1e-6)
    with pytest.raises(DataError, match=r"'model' of entity 'new' is 'type-9', not one of the run's categories"):
        stream.open("new", static={"model": "type-9"})


def test_predictions_per_step_and_on_a_clock_carry_the_tables_own_times(sensor_run, tmp_path, capsys):
    run, _, other = sensor_run
    log = pd.read_csv(other / "observations.csv", parse_dates=["time"])
    static = ["--set", f"data.static={other / 'static.csv'}"]
    steps, hourly = tmp_path / "steps.csv", tmp_path / "hourly.csv"
    assert main(["predict", str(run), str(other / "observations.csv"), "--per-step", "-o", str(steps), *static]) == 0
    assert main(["predict", str(run), str(other / "observations.csv"), "--every", "6", "-o", str(hourly), *static]) == 0
    per_step = pd.read_csv(steps, parse_dates=["time"])
    assert list(per_step.columns[:3]) == ["pump", "time", "hours_since_start"]
    expected = log[["pump", "time"]].drop_duplicates().sort_values(["pump", "time"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(per_step[["pump", "time"]], expected)  # each step's own time, exactly
    clock = pd.read_csv(hourly, parse_dates=["time", "step_time"])
    first = log.groupby("pump").time.min()
    np.testing.assert_array_equal(  # the clock's time: the pump's first reading plus the clock's hours
        clock.time.to_numpy(), (clock.pump.map(first) + pd.to_timedelta(clock.hours_since_start, unit="h")).to_numpy()
    )
    merged = clock.merge(per_step, left_on=["pump", "step_time"], right_on=["pump", "time"], suffixes=("", "_step"))
    assert len(merged) == len(clock) and (merged.step_time <= merged.time).all()
    np.testing.assert_allclose(merged.probability, merged.probability_step)  # the step's risk, found by its time
    # on the clock's own hours (every 6 h of the day, UTC): from the first at or after each pump's first reading
    aligned = tmp_path / "aligned.csv"
    assert main(["predict", str(run), str(other / "observations.csv"), "--every", "6", "--align", "clock",
                 "-o", str(aligned), *static]) == 0  # fmt: skip
    on_hours = pd.read_csv(aligned, parse_dates=["time", "step_time"])
    assert (on_hours.time.dt.hour % 6 == 0).all() and (on_hours.time == on_hours.time.dt.floor("h")).all()
    first_row = on_hours.groupby("pump").time.min()
    assert ((first_row >= first) & (first_row - first < pd.Timedelta(hours=6))).all()
    np.testing.assert_allclose(on_hours.hours_since_start,
                               (on_hours.time - on_hours.pump.map(first)).dt.total_seconds() / 3600)  # fmt: skip
    found = on_hours.merge(per_step, left_on=["pump", "step_time"], right_on=["pump", "time"], suffixes=("", "_s"))
    assert len(found) == len(on_hours) and (found.step_time <= found.time).all()
    readings = log[["pump", "time"]].drop_duplicates().rename(columns={"time": "reading"}).sort_values("reading")
    latest = pd.merge_asof(found.sort_values("time"), readings, left_on="time", right_on="reading", by="pump")
    assert (latest.step_time == latest.reading).all()  # the latest reading by then
    assert main(["predict", str(run), str(other / "observations.csv"), "--align", "clock", "-o", str(aligned)]) == 2
    assert "--align sets where --every's clock starts" in capsys.readouterr().err


def test_a_frame_is_predicted_from_python_as_tsmoe_predict_predicts_its_file(sensor_run, tmp_path):
    run, _, other = sensor_run
    estimator, observations = Estimator.load(run), other / "observations.csv"
    static = {"static": str(other / "static.csv")}
    for options, flags in [({}, []), ({"per_step": True}, ["--per-step"]), ({"every": 6}, ["--every", "6"])]:
        written = tmp_path / "written.csv"
        assert main(["predict", str(run), str(observations), "-o", str(written), *flags,
                     "--set", f"data.static={static['static']}"]) == 0  # fmt: skip
        expected = pd.read_csv(written)
        from_file = estimator.predict_table(observations, data_overrides=static, **options)
        from_frame = estimator.predict_table(pd.read_csv(observations), data_overrides=static, **options)
        for table in (from_file, from_frame):  # as the CSV holds it: times as text, numbers as written
            pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(table.to_csv(index=False))), expected)
    cached = {p.name for p in (cache_dir() / "irregular").glob("*.npz")}
    estimator.predict_table(pd.read_csv(observations).head(500), per_step=True)  # a frame never read before
    assert {p.name for p in (cache_dir() / "irregular").glob("*.npz")} == cached  # leaves no cache entry behind
    dated = pd.read_csv(observations, parse_dates=["time"])  # the times as pandas timestamps: the same risks
    np.testing.assert_array_equal(estimator.predict_table(dated, per_step=True).probability,
                                  estimator.predict_table(observations, per_step=True).probability)  # fmt: skip
    mixed = pd.read_csv(observations).astype({"reading": object})
    mixed.loc[4, "reading"] = "n/a"
    with pytest.raises(DataError, match=r"the frame, column 'reading': row 5: 'n/a' among cells of another kind"):
        estimator.predict_table(mixed)
    with pytest.raises(DataError, match=r"the frame, column 'time', row 3: 'soon' is not an ISO 8601 date"):
        estimator.predict_table(pd.read_csv(observations).assign(time=lambda f: f.time.where(f.index != 2, "soon")))
    with pytest.raises(DataError, match="reads a path or a pandas DataFrame, got list"):
        estimator.predict_table([1, 2])
    with pytest.raises(ConfigError, match="align is 'start' .* or 'clock' .*, got 'hour'"):
        estimator.predict_table(observations, every=1, align="hour")


def test_an_ensemble_predicts_after_every_step_the_mean_of_its_members(sensor_run, tmp_path):
    run, logs, other = sensor_run
    second = tmp_path / "second"
    tables = [f"data.{name}={logs / name}.csv" for name in ("observations", "labels", "static")]
    assert main(["train", "mrmoe-irregular", "--out", str(second), *[a for t in tables for a in ("--set", t)],
                 *COLUMNS, *TINY, "--set", "seed=1"]) == 0  # fmt: skip
    observations, static = other / "observations.csv", {"static": str(other / "static.csv")}
    members = [Estimator.load(folder) for folder in (run, second)]
    for options, flags in [({"per_step": True}, ["--per-step"]), ({"every": 6}, ["--every", "6"])]:
        written = tmp_path / "ensemble.csv"
        assert main(["predict", str(run), str(second), str(observations), "-o", str(written), *flags,
                     "--set", f"data.static={static['static']}"]) == 0  # fmt: skip
        mean = pd.read_csv(written)
        alone = [member.predict_table(observations, data_overrides=static, **options) for member in members]
        assert len(mean) == len(alone[0]) == len(alone[1]) > 40
        np.testing.assert_allclose(mean.probability, (alone[0].probability + alone[1].probability) / 2, atol=1e-7)
        assert (mean.prediction == (mean.probability > 0.5)).all()
        keys = [c for c in alone[0].columns if c not in ("probability", "prediction")]  # pump and the times
        pd.testing.assert_frame_equal(mean[keys], pd.read_csv(io.StringIO(alone[0][keys].to_csv(index=False))))
        from_frame = Ensemble.load([run, second]).predict_table(pd.read_csv(observations), data_overrides=static,
                                                                **options)  # fmt: skip
        pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(from_frame.to_csv(index=False))), mean)
    # the ensemble's stream: after each reading of two pumps, the mean risk the per-step table holds
    per_step = Ensemble.load([run, second]).predict_table(observations, per_step=True, data_overrides=static)
    log = pd.read_csv(observations, parse_dates=["time"])
    descriptors = pd.read_csv(other / "static.csv").set_index("pump")
    stream = Ensemble.load([run, second]).stream()
    for pump in log.pump.unique()[:2]:
        stream.open(pump, static={k: v for k, v in descriptors.loc[pump].items() if pd.notna(v)})
        rows = log[log.pump == pump]
        answers = [stream.update(pump, row.time, {row.sensor: row.reading}) for row in rows.itertuples()]
        last = pd.Series(answers, index=rows.time).groupby(level=0).last()  # readings at one time: one step
        np.testing.assert_allclose(last.to_numpy(), per_step[per_step.pump == pump].probability, atol=1e-6)
    with pytest.raises(DataError, match="is not one of the run's"):  # refused by the first member: no change
        stream.update(pump, rows.time.iloc[-1], {"humidity": 1.0})
    assert len(stream) == 2 and all(len(member) == 2 for member in stream.streams)
    other_sensors = members[1].stream()
    other_sensors.variables = [*other_sensors.variables, "humidity"]  # as a run trained on another table
    with pytest.raises(ConfigError, match="ensemble members read updates differently: a and b differ in variables"):
        EnsembleStream([members[0].stream(), other_sensors], ["a", "b"])


def test_tsmoe_stream_answers_every_row_as_predict_per_step_and_reads_a_pipe(
    sensor_run, tmp_path, monkeypatch, capsys, caplog
):
    run, _, other = sensor_run
    log = pd.read_csv(other / "observations.csv")
    first = log[log.pump.isin(log.pump.unique()[:3])].sort_values(["pump", "time"], kind="stable")
    rows = tmp_path / "rows.csv"
    first.to_csv(rows, index=False)
    static = ["--set", f"data.static={other / 'static.csv'}"]
    streamed, per_step = tmp_path / "streamed.csv", tmp_path / "steps.csv"
    assert main(["stream", str(run), str(rows), "-o", str(streamed), *static]) == 0
    assert main(["predict", str(run), str(rows), "--per-step", "-o", str(per_step), *static]) == 0
    answers, steps = pd.read_csv(streamed), pd.read_csv(per_step)
    assert list(answers.columns) == ["pump", "time", "probability"] and len(answers) == len(first)
    after_each_step = answers.groupby(["pump", "time"], sort=False).probability.last().reset_index()  # one step
    np.testing.assert_allclose(after_each_step.probability, steps.probability, atol=1e-6)
    assert (after_each_step.time.to_numpy() == steps.time.to_numpy()).all()
    # from a pipe (standard input) to standard output, a bad row skipped and named
    bad = rows.read_text().splitlines()
    bad.insert(3, f"{first.pump.iloc[0]},{first.time.iloc[0]},humidity,1.0")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(bad) + "\n"))
    capsys.readouterr()
    assert main(["stream", str(run), "-", "--skip-bad-rows", *static]) == 0
    out, err = capsys.readouterr()
    assert pd.read_csv(io.StringIO(out)).probability.tolist() == answers.probability.tolist()
    assert "input line 4 skipped: entity" in caplog.text and "(0 without a reading, 1 skipped)" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(bad) + "\n"))
    assert main(["stream", str(run), "-", *static]) == 2  # without --skip-bad-rows: stopped, the line named
    assert "tsmoe: error: input line 4: entity" in capsys.readouterr().err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(rows.read_bytes() + "pump-00001,2026-01-01 00:00:00,temp\u00e9rature,1\n".encode("latin-1"))
    assert main(["stream", str(run), str(latin), "-o", str(tmp_path / "out.csv")]) == 2
    assert "the input is not UTF-8 text" in capsys.readouterr().err
    # a spreadsheet's semicolons, from a file and a pipe: the same answers (tsmoe.data.csv_dialect)
    semicolons = tmp_path / "semicolons.csv"
    first.to_csv(semicolons, index=False, sep=";")
    assert main(["stream", str(run), str(semicolons), "-o", str(tmp_path / "semi.csv"), *static]) == 0
    assert pd.read_csv(tmp_path / "semi.csv").probability.tolist() == answers.probability.tolist()
    per_step_semi = tmp_path / "semi-steps.csv"
    assert main(["predict", str(run), str(semicolons), "--per-step", "-o", str(per_step_semi), *static]) == 0
    assert pd.read_csv(per_step_semi).probability.tolist() == steps.probability.tolist()
    kept = tmp_path / "kept.csv"  # a user's file at -o: kept (the stream would empty it when it opens it)
    kept.write_text("pump,reading\n1,2\n")
    assert main(["stream", str(run), str(rows), "-o", str(kept), *static]) == 2
    assert "exists and holds something else" in capsys.readouterr().err and kept.read_text() == "pump,reading\n1,2\n"
    assert main(["stream", str(run), str(rows), "-o", str(streamed), *static]) == 0  # its own answers: replaced
    huge = tmp_path / "huge.csv"  # a cell past the CSV reader's field limit
    huge.write_text(rows.read_text().splitlines()[0] + "\npump-00001,0,temperature," + "1" * 200_000 + "\n")
    assert main(["stream", str(run), str(huge), "-o", str(tmp_path / "out.csv")]) == 2
    assert "the input is not readable CSV: field larger than field limit" in capsys.readouterr().err


def test_classes_given_by_name_train_as_their_numbers_and_every_output_names_them(sensor_run, tmp_path, capsys):
    run, logs, other = sensor_run
    names = np.array(["running", "failed"])  # failed, class 1, stays the positive class

    def named_labels(folder: Path) -> Path:
        labels = pd.read_csv(folder / "labels.csv")
        path = tmp_path / f"{folder.name}-labels.csv"
        labels.assign(failed=names[labels.failed]).to_csv(path, index=False)
        return path

    named = tmp_path / "named"
    tables = [f"data.{name}={logs / name}.csv" for name in ("observations", "static")]
    assert main(["train", "mrmoe-irregular", "--out", str(named), *[a for t in tables for a in ("--set", t)],
                 "--set", f"data.labels={named_labels(logs)}", "--set", "data.classes=[running, failed]",
                 "--set", f"training.threads={json.loads((run / 'meta.json').read_text())['threads']}",  # as run's
                 *COLUMNS, *TINY]) == 0  # fmt: skip
    assert json.loads((named / "meta.json").read_text())["class_names"] == ["running", "failed"]
    assert Estimator.load(named).classes_ == ["running", "failed"] and Estimator.load(run).classes_ == [0, 1]
    # the same classes as the run trained on 0 and 1: the same split and weights, so the same risks
    observations, static = str(other / "observations.csv"), ["--set", f"data.static={other / 'static.csv'}"]
    tables = {}
    copy = shutil.copytree(named, tmp_path / "copy")  # an ensemble of two named runs
    for folder, flags in [(run, []), (named, []), (named, [str(copy), "--per-step"])]:
        out = tmp_path / f"{folder.name}-{len(flags)}.csv"
        assert main(["predict", str(folder), *flags[:1], observations, "-o", str(out), *flags[1:], *static]) == 0
        tables[folder.name, len(flags)] = pd.read_csv(out)
    plain, by_name, ensemble = tables["run", 0], tables["named", 0], tables["named", 2]
    np.testing.assert_array_equal(by_name.probability, plain.probability)
    assert (by_name.prediction == names[plain.prediction]).all()
    assert (ensemble.prediction == names[(ensemble.probability >= 0.5).astype(int)]).all()  # the mean's, named
    scored = []
    for folder, labels in [(run, other / "labels.csv"), (named, named_labels(other))]:
        assert main(["evaluate", str(folder), "--no-plots", "--set", f"data.observations={observations}",
                     "--set", f"data.labels={labels}", *static]) == 0  # fmt: skip
        scored.append(json.loads((folder / "metrics-eval.json").read_text()))
    assert scored[0]["auroc"] == scored[1]["auroc"]
    wrong = tmp_path / "wrong.csv"
    pd.read_csv(named_labels(other)).replace({"failed": {"failed": "broken"}}).to_csv(wrong, index=False)
    assert main(["evaluate", str(named), "--no-plots", "--set", f"data.observations={observations}",
                 "--set", f"data.labels={wrong}", *static]) == 2  # fmt: skip
    assert "class 'broken' is not one of the classes ['running', 'failed']" in capsys.readouterr().err


def test_a_multiclass_run_on_named_classes_is_calibrated_and_streams_a_column_per_class(sensor_run, tmp_path, capsys):
    _, logs, other = sensor_run
    labels = pd.read_csv(logs / "labels.csv")
    worn = labels.pump.str[-1].isin(list("0123"))  # a third class, drawn by the pump's number
    named = tmp_path / "labels.csv"
    classes = np.where(labels.failed == 1, "failed", np.where(worn, "worn", "ok"))
    labels.assign(failed=classes).to_csv(named, index=False)
    run = tmp_path / "three"
    tables = [f"data.{name}={logs / name}.csv" for name in ("observations", "static")]
    assert main(["train", "mrmoe-irregular", "--out", str(run), *[a for t in tables for a in ("--set", t)],
                 "--set", f"data.labels={named}", *COLUMNS, *TINY]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["calibrate", str(run)]) == 0  # a temperature: it was a KeyError for the multiclass ECE
    assert "fitted on the validation split" in capsys.readouterr().out
    assert "validation_ece_after" in json.loads((run / "meta.json").read_text())["calibration"]
    smaller = tmp_path / "smaller"  # the same split (seed), another width: the two compare item by item
    assert main(["train", "mrmoe-irregular", "--out", str(smaller), *[a for t in tables for a in ("--set", t)],
                 "--set", f"data.labels={named}", *COLUMNS, *TINY, "--set", "model.hidden_size=4"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(run), str(smaller)]) == 0
    printed = capsys.readouterr().out
    assert "multiclass" in printed and printed.count("paired bootstrap within classes") == 3
    accuracy = json.loads((run / "metrics.json").read_text())["accuracy"]  # the temperature keeps every argmax
    assert f"accuracy  {accuracy:.4f}" in printed
    rows = other / "observations.csv"
    streamed = tmp_path / "streamed.csv"
    static = ["--set", f"data.static={other / 'static.csv'}"]
    assert main(["stream", str(run), str(rows), "-o", str(streamed), *static]) == 0
    answers = pd.read_csv(streamed)
    assert list(answers.columns) == ["pump", "time", "probability_failed", "probability_ok", "probability_worn"]
    np.testing.assert_allclose(answers.iloc[:, 2:].sum(axis=1), 1.0, atol=1e-5)
