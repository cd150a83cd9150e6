"""The benchmark runner on a tiny experiment: every planned run trained once through the one training
path, stored in the one results format, skipped when stored, and tabled from the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tsmoe.errors import ConfigError
from tsmoe.experiments.results import add_run, runs_of
from tsmoe.experiments.runner import rescore_experiment, run_experiment
from tsmoe.experiments.spec import read_experiment
from tsmoe.experiments.tables import chosen, table

TINY = {
    "protocol": "P4",
    "title": "a tiny ETTh1 experiment",
    "results": "RESULTS",
    "seeds": [0, 1],
    "cases": {"h8": ["data.horizon=8"], "h12": ["data.horizon=12"]},
    "rows": [
        {"name": "dlinear", "label": "DLinear", "recipe": "configs/dlinear-etth1.yaml",
         "set": ["data.lookback=24", "training.max_epochs=1", "trainer.accelerator=cpu"]},
    ],
    "columns": [{"label": "MSE, both horizons", "metric": "mse", "cases": ["h8", "h12"], "digits": 4},
                {"label": "parameters", "metric": "n_parameters"}],
}  # fmt: skip


def write(tmp_path: Path, **changes) -> Path:
    spec = {**TINY, "results": str(tmp_path / "results.json"), **changes}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_the_runner_trains_each_planned_run_once_and_tables_them(tmp_path):
    path = write(tmp_path)
    experiment = read_experiment(path)
    assert run_experiment(experiment, str(path)) == ["dlinear/h8/0", "dlinear/h8/1", "dlinear/h12/0", "dlinear/h12/1"]
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["protocol"] == "P4" and stored["experiment"] == str(path)
    run = stored["runs"]["dlinear/h12/1"]
    assert run["command"] == (
        "tsmoe train configs/dlinear-etth1.yaml --set data.horizon=12 --set data.lookback=24 "
        "--set training.max_epochs=1 --set trainer.accelerator=cpu --set seed=1"
    )
    assert run["config"]["data"]["horizon"] == 12 and run["config"]["seed"] == 1
    assert {"platform", "cpu", "torch", "threads"} <= set(run["machine"]) and run["test"]["mse"] > 0
    assert run_experiment(experiment, str(path)) == []  # every run is stored: nothing trains again
    runs = stored["runs"]
    per_seed = [(runs[f"dlinear/h8/{s}"]["test"]["mse"] + runs[f"dlinear/h12/{s}"]["test"]["mse"]) / 2 for s in (0, 1)]
    mean = sum(per_seed) / 2
    lines = table(experiment).splitlines()
    assert lines[0] == "| row | MSE, both horizons | parameters | seeds |"
    assert lines[2].startswith(f"| DLinear | {mean:.4f} ± ") and lines[2].endswith(" | 2 |")
    assert table(chosen(experiment, "dlinear", "2")).splitlines()[0] == "| row | parameters | seeds |"


def test_kept_runs_are_scored_again_with_new_metrics_and_another_folder_is_refused(tmp_path):
    path = write(tmp_path, seeds=[0], columns=[{"label": "MSE", "metric": "mse"}])
    experiment, runs = read_experiment(path), tmp_path / "runs"
    run_experiment(experiment, str(path), runs_dir=runs)
    results = tmp_path / "results.json"
    stored = runs_of([results], "dlinear")["dlinear/h8/0"]
    older = {**stored, "test": {k: v for k, v in stored["test"].items() if not k.endswith("_ci")}}
    add_run(results, "dlinear/h8/0", older, {})  # as a run stored before its metrics had intervals
    assert rescore_experiment(experiment, str(path), runs) == ["dlinear/h8/0", "dlinear/h12/0"]
    again = runs_of([results], "dlinear")["dlinear/h8/0"]
    assert again["test"] == stored["test"] and again["best_epoch"] == stored["best_epoch"] and "rescored" in again
    add_run(results, "dlinear/h8/0", {**stored, "test": {**stored["test"], "mse": 2 * stored["test"]["mse"]}}, {})
    with pytest.raises(ConfigError, match="it is not that run"):
        rescore_experiment(experiment, str(path), runs)


def test_a_stopped_experiment_runs_only_what_is_missing(tmp_path):
    path = write(tmp_path)
    experiment = read_experiment(path)
    add_run(tmp_path / "results.json", "dlinear/h8/0", {"test": {"mse": 1.0}}, {"protocol": "P4"})
    trained = run_experiment(experiment, str(path), seeds=[0], train=lambda planned, runs_dir: {"test": {"mse": 2.0}})
    assert trained == ["dlinear/h12/0"]
    assert set(runs_of([tmp_path / "results.json"], "dlinear")) == {"dlinear/h8/0", "dlinear/h12/0"}


def test_earlier_one_row_files_are_read_and_a_run_stored_twice_is_refused(tmp_path):
    earlier = {"runs": [{"seed": 0, "test": {"mse": 0.5}}, {"seed": 1, "test": {"mse": 0.7}}]}
    (tmp_path / "a.json").write_text(json.dumps(earlier))
    assert set(runs_of([tmp_path / "a.json"], "dlinear")) == {"dlinear/0", "dlinear/1"}
    (tmp_path / "b.json").write_text(json.dumps({"runs": [{"seed": 1, "test": {"mse": 0.9}}]}))
    with pytest.raises(ValueError, match=r"\['dlinear/1'\] of row 'dlinear' are stored twice"):
        runs_of([tmp_path / "a.json", tmp_path / "b.json"], "dlinear")
    experiment = read_experiment(write(tmp_path, results=str(tmp_path / "a.json")))
    with pytest.raises(ConfigError, match="earlier one-row form"):  # refused before anything trains
        run_experiment(experiment, "x", seeds=[2], train=lambda planned, runs_dir: pytest.fail("trained"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rows": [{"name": "x", "recipe": "r.yaml", "sets": []}]}, r"unknown key\(s\) .*rows\[0\]\.sets"),
        ({"columns": [{"label": "a", "metric": "mse", "cases": ["h96"]}]}, r"column a names unknown case\(s\)"),
        ({"rows": [{"name": "x", "recipe": "r"}, {"name": "x", "recipe": "r"}]}, "row names must be unique"),
    ],
)
def test_a_bad_experiment_file_is_refused_before_anything_runs(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        read_experiment(write(tmp_path, **change))
