"""``tsmoe tune``: search spaces checked before any trial, a study on several processes over one SQLite file,
a killed study continued by the same command, and ``best.yaml`` reproducing the best trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

optuna = pytest.importorskip("optuna")

from tsmoe.cli import main  # noqa: E402
from tsmoe.config import load_config  # noqa: E402
from tsmoe.errors import ConfigError  # noqa: E402
from tsmoe.io import read_json  # noqa: E402
from tsmoe.tuning.space import corners, read_space  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = {  # DLinear on ETTh1 with short windows: a trial takes seconds
    "seed": 0,
    "data": {"name": "etth1", "lookback": 24, "horizon": 6, "metrics_scale": "scaled"},
    "model": {"name": "dlinear", "moving_avg": 5},
    "training": {"max_epochs": 2, "batch_size": 256, "lr": 1e-3, "patience": 2},
    "trainer": {"accelerator": "cpu"},
}
SPACE = {
    "params": {
        "training.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "model.individual": {"type": "categorical", "choices": [False, True]},
        "model.moving_avg": {"type": "categorical", "choices": [3, 5, 9]},
    },
    "sampler": {"name": "tpe", "startup_trials": 2},
    "pruner": {"name": "median", "startup_trials": 1, "warmup_epochs": 0},
}


def write(path: Path, value: dict) -> Path:
    path.write_text(yaml.safe_dump(value))
    return path


def tiny_files(tmp_path: Path, space: dict | None = None) -> tuple[Path, Path]:
    return write(tmp_path / "recipe.yaml", TINY), write(tmp_path / "space.yaml", space or SPACE)


def recipe_mapping(tmp_path: Path) -> dict:
    return load_config(write(tmp_path / "recipe.yaml", TINY)).to_dict()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model.nope": {"type": "int", "low": 1, "high": 2}}, "unknown key(s) model.nope"),
        ({"training.lr": {"type": "float", "low": 1e-2, "high": 1e-4}}, "low 0.01 is above high 0.0001"),
        ({"training.lr": {"type": "float", "low": 0.0, "high": 1e-2, "log": True}}, "a log range needs low > 0"),
        ({"training.batch_size": {"type": "int", "low": 0, "high": 64}}, "batch_size must be at least 1"),
        ({"training.batch_size": {"type": "int", "low": 8, "high": 64.5}}, "whole-number bounds"),
        ({"model.individual": {"type": "categorical", "choices": []}}, "non-empty list 'choices'"),
        ({"model.individual": {"type": "categorical", "choices": [True, "yes"]}}, "expected true or false"),
        ({"training.lr": {"type": "float", "low": 1e-4, "high": 0.1, "when": {"model.x": 1}}}, "not a parameter above"),
        ({"training.lr": {"type": "float", "high": 1e-2}}, "needs 'low'"),
        ({"trainer.devices": {"type": "int", "low": 1, "high": 2}}, "section.key with section one of data"),
        ({"training.lr": {"kind": "float"}}, "unknown key(s)"),
        ({"training.lr": {"low": 1e-4, "high": 1e-2}}, "training.lr: needs 'type' (not given)"),
        ({"training.patience": {"type": "float", "low": 2, "high": 6}}, "for a whole-number setting give type int"),
        ({"model.individual": {"type": "categorical", "choices": [True], "high": "x"}}, "high are for int and float"),
    ],
)
def test_a_bad_space_is_refused_naming_the_key(tmp_path: Path, params: dict, message: str) -> None:
    space = write(tmp_path / "space.yaml", {"params": params})
    with pytest.raises(ConfigError) as error:
        read_space(space, recipe_mapping(tmp_path))
    assert message in str(error.value)
    assert "space.yaml" in str(error.value)


@pytest.mark.parametrize("section", ["sampler", "pruner"])
@pytest.mark.parametrize("value", [[1, 2], 0.0, "tpe"])
def test_a_sampler_or_pruner_that_is_no_mapping_is_refused(tmp_path: Path, section: str, value) -> None:
    space = write(tmp_path / "space.yaml", {**SPACE, section: value})  # 0.0 was read as "every default"
    with pytest.raises(ConfigError, match=f"space.yaml', {section}: expected a mapping of settings"):
        read_space(space, recipe_mapping(tmp_path))


def test_conditional_parameters_reach_every_corner_and_are_drawn_only_where_they_apply(tmp_path: Path) -> None:
    space = {
        "params": {
            "model.individual": {"type": "categorical", "choices": [False, True]},
            "training.max_epochs": {"type": "int", "low": 1, "high": 4},
            "training.patience": {"type": "int", "low": 0, "high": "training.max_epochs"},  # a bound from above
            "training.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "when": {"model.individual": True}},
        }
    }
    parsed = read_space(write(tmp_path / "space.yaml", space), recipe_mapping(tmp_path))
    assert {"training.patience": 4, "training.max_epochs": 4} in corners(parsed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        drawn = parsed.suggest(study.ask())
        assert drawn["training.patience"] <= drawn["training.max_epochs"]
        assert ("training.lr" in drawn) == drawn["model.individual"]


def test_objectives_on_the_test_split_and_a_missing_space_are_refused(tmp_path: Path, capsys) -> None:
    recipe, space = tiny_files(tmp_path)
    common = ["tune", str(recipe), "--trials", "1", "--out", str(tmp_path / "study")]
    assert main([*common, "--space", str(space), "--objectives", "test_mse"]) == 2
    assert "never the test split" in capsys.readouterr().err
    assert main([*common, "--space", str(tmp_path / "none.yaml")]) == 2
    error = capsys.readouterr().err
    assert "search space" in error and "does not exist" in error
    assert main([*common, "--space", str(space), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main([*common, "--space", str(space), "--storage", "nosuch://server/db"]) == 2
    assert "--storage nosuch://server/db: cannot open the database" in capsys.readouterr().err
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "notes.txt").write_text("mine")
    assert main([*common, "--space", str(space)]) == 2  # a folder of the user's own files is not taken over
    assert "holds no tsmoe study" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == ["notes.txt"]


def tune_command(recipe: Path, space: Path, out: Path, trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tsmoe.cli", "tune", str(recipe), "--space", str(space), "--trials", str(trials),
            "--out", str(out), *extra]  # fmt: skip


def test_a_second_study_in_one_process_finds_the_tune_extra_installed() -> None:
    from optuna_integration import PyTorchLightningPruningCallback  # noqa: F401  (what a first study imports)

    from tsmoe.tuning import check_installed

    check_installed()  # optuna_integration is then a lazy module without __spec__: find_spec alone raises


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study_and_best_yaml_reproduces_the_best_trial(tmp_path: Path) -> None:
    recipe, space = tiny_files(tmp_path)
    out = tmp_path / "study"
    done = subprocess.run(tune_command(recipe, space, out, 5, "--workers", "2"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{out / 'study.db'}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 5  # the study stops at --trials, counting both workers' trials
    runs = [t.user_attrs["run"] for t in study.trials]
    assert len(set(runs)) == len(runs)  # every trial trained once, in its own folder
    table = pd.read_csv(out / "trials.csv")
    assert sorted(table["number"]) == [t.number for t in study.trials]
    for trial in study.trials:  # each complete trial is an ordinary run folder with its values in meta.json
        if trial.state.name == "COMPLETE":
            meta = read_json(Path(trial.user_attrs["run"]) / "meta.json")
            assert meta["trial"] == {"study": "study", "number": trial.number, "params": trial.params}
            assert meta["best_score"] == pytest.approx(trial.value)
            assert not (Path(trial.user_attrs["run"]) / "metrics.json").exists()  # the test split was not scored
    assert 'data-broken-images' in (out / "tune.html").read_text()
    assert main(["train", str(out / "best.yaml"), "--out", str(tmp_path / "best-run")]) == 0
    again = read_json(tmp_path / "best-run" / "meta.json")
    assert again["best_score"] == pytest.approx(study.best_value, rel=1e-5)
    assert again["best_epoch"] == study.best_trial.user_attrs["best_epoch"]


@pytest.mark.slow
def test_trials_of_a_refit_recipe_do_not_refit_and_best_yaml_keeps_the_refit(tmp_path: Path) -> None:
    recipe = write(tmp_path / "recipe.yaml", {**TINY, "training": {**TINY["training"], "refit": True}})
    space = write(tmp_path / "space.yaml", SPACE)
    out = tmp_path / "study"
    assert main(["tune", str(recipe), "--space", str(space), "--out", str(out), "--trials", "2"]) == 0
    metas = [read_json(t / "meta.json") for t in (out / "trials").iterdir() if (t / "meta.json").exists()]
    assert metas and all("refit" not in meta for meta in metas)  # scored on validation, never refit
    assert yaml.safe_load((out / "best.yaml").read_text())["training"]["refit"] is True


@pytest.mark.slow
def test_a_killed_study_continues_with_the_same_command(tmp_path: Path) -> None:
    recipe, space = tiny_files(tmp_path)
    out = tmp_path / "study"
    command = tune_command(recipe, space, out, 4, "--heartbeat", "1", "--workers", "2")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (out / "trials" / "0002" / "config.yaml").exists():  # two trials started, a third begun
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "trials.csv").exists()  # killed before the end
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 4
    assert study.trials[0].state.name in ("COMPLETE", "PRUNED")  # kept from the first sitting
    assert (out / "best.yaml").exists() and len(pd.read_csv(out / "trials.csv")) == len(study.trials)
    # the same command with another space is refused: one study, one space
    other = write(tmp_path / "space.yaml", {"params": {"training.lr": {"type": "float", "low": 1e-3, "high": 1e-2}}})
    refused = subprocess.run(tune_command(recipe, other, out, 4), capture_output=True, text=True)
    assert refused.returncode == 2 and "was started with another space" in refused.stderr


@pytest.mark.slow
def test_a_multi_objective_study_marks_its_pareto_front(tmp_path: Path, capsys) -> None:
    recipe, space = tiny_files(tmp_path)
    out = tmp_path / "pareto"
    args = ["tune", str(recipe), "--space", str(space), "--trials", "4", "--out", str(out),
            "--objectives", "val_loss", "seconds_per_epoch"]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out / "trials.csv")
    assert {"val_loss", "seconds_per_epoch", "pareto"} <= set(table.columns)
    front = table[table["pareto"]]
    assert len(front) >= 1 and (table["state"] == "complete").all()  # no pruning with several objectives
    for _, row in table.iterrows():  # no trial of the front is beaten on both objectives by another trial
        if row["pareto"]:
            better = (table["val_loss"] <= row["val_loss"]) & (table["seconds_per_epoch"] <= row["seconds_per_epoch"])
            strictly = (table["val_loss"] < row["val_loss"]) | (table["seconds_per_epoch"] < row["seconds_per_epoch"])
            assert not (better & strictly).any()
    assert '<section id="pareto">' in (out / "tune.html").read_text()
    assert yaml.safe_load((out / "best.yaml").read_text())["model"]["name"] == "dlinear"


def test_trials_the_recipe_refuses_say_why_and_three_in_a_row_stop_the_study(tmp_path: Path, capsys) -> None:
    # a trend filter longer than twice this lookback: the model refuses it when built, after the space's check
    space = {"params": {"model.moving_avg": {"type": "categorical", "choices": [49, 51]}}}
    recipe, space_file = tiny_files(tmp_path, space)
    out = tmp_path / "study"
    assert main(["tune", str(recipe), "--space", str(space_file), "--out", str(out), "--trials", "2"]) == 2
    captured = capsys.readouterr()
    reason = "the trend filter's kernel must be 1 to twice the lookback (48) steps"
    assert captured.out.count("failed (model.moving_avg: " + reason) == 3  # each trial's line says why
    assert f"three trials in a row failed, the last because model.moving_avg: {reason}" in captured.err
    assert "Traceback" not in captured.err  # Optuna's own warning for a failed trial is not shown
    assert read_json(out / "trials" / "0000" / "trial.json")["state"] == "failed"
