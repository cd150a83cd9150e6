"""Run folders that were damaged fail with an error naming the file; checkpoints round-trip exactly;
a planted pickle where a checkpoint belongs is refused before anything in it runs."""

from __future__ import annotations

import json
import os
import pickle
import stat

import pytest
import torch

from tests.metric_dicts import flat
from tests.test_no_unpickling import Payload
from tsmoe import Estimator
from tsmoe.errors import ModelFileError, TrainingError
from tsmoe.training.checkpoint_io import read_checkpoint, write_checkpoint
from tsmoe.training.trainer import checkpoint_path

SMALL = {"data_params": {"lookback": 24, "horizon": 6}, "trainer": {"accelerator": "cpu"}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "dlinear"
    Estimator("dlinear", "etth1", training={"max_epochs": 1}, **SMALL).fit(run_dir=folder)
    return folder


def copy_of(run, folder):
    """A copy of the run's files, to damage."""
    folder.mkdir()
    for path in run.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_truncated_weights_fail_naming_the_file(run, tmp_path):
    broken = copy_of(run, tmp_path / "run")
    data = (run / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model.safetensors.*truncated or edited"):
        Estimator.load(broken)


def test_edited_header_fails_naming_the_file(run, tmp_path):
    broken = copy_of(run, tmp_path / "run")
    data = bytearray((run / "model.safetensors").read_bytes())
    data[8:20] = b"not-json!!!!"  # the JSON header begins after an 8-byte length
    (broken / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        Estimator.load(broken)


def test_weights_of_another_shape_fail_clearly(run, tmp_path):
    other = copy_of(run, tmp_path / "run")
    meta = json.loads((other / "meta.json").read_text())
    meta["dims"]["horizon"] = 12  # the files now describe a model with another output size
    (other / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="does not match the model built from its config.*shape"):
        Estimator.load(other)


def test_checkpoint_round_trips_nested_state_exactly(tmp_path):
    state = {
        "epoch": 3,
        "optimizer_states": [{"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.randn(2, 3)}},
                              "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]}],
        "callbacks": {"EarlyStopping{'monitor': 'val_loss'}": {"wait_count": 1, "best_score": torch.tensor(0.5)}},
        "rng": (3, [1, 2, 3], None),
        "score": float("inf"),
    }  # fmt: skip
    path = tmp_path / "last.safetensors"
    write_checkpoint(path, state)
    loaded = read_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["score"] == float("inf") and loaded["rng"] == (3, [1, 2, 3], None)
    group = loaded["optimizer_states"][0]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and group["params"] == [0]
    torch.testing.assert_close(
        loaded["optimizer_states"][0]["state"][0]["exp_avg"], state["optimizer_states"][0]["state"][0]["exp_avg"]
    )
    assert list(loaded["callbacks"]) == list(state["callbacks"])


def test_checkpoint_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="cannot store a set at 'c.0'"):
        write_checkpoint(tmp_path / "x.safetensors", {"bad": {1, 2}})


def test_pickle_as_checkpoint_is_refused_without_running(tmp_path):
    folder = tmp_path / "run"
    estimator = Estimator("dlinear", "etth1", training={"max_epochs": 1}, **SMALL)
    folder.mkdir()
    (folder / "config.yaml").write_text(estimator.config.to_yaml())
    marker = tmp_path / "pwned"
    path = checkpoint_path(folder)
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(ModelFileError, match="last.safetensors"):
        Estimator.resume(folder)
    assert not marker.exists()


class StopAfterFit(Exception):
    """Stands for a kill after the last checkpoint was written and before the run's files were."""


def test_resume_after_early_stopping_trains_no_further_epoch(tmp_path, monkeypatch):
    from tsmoe.training import trainer as trainer_module

    def options(seed: int) -> Estimator:
        return Estimator("dlinear", "etth1", seed=seed, training={"max_epochs": 30, "patience": 1, "lr": 0.05}, **SMALL)

    reference = options(0).fit(run_dir=tmp_path / "reference")
    assert reference.meta_["epochs_run"] < 30  # early stopping fired

    build = trainer_module.build_trainer

    def killed_at_the_end(*args, **kwargs):
        trainer, best = build(*args, **kwargs)
        original = trainer.fit

        def fit(*a, **k):
            original(*a, **k)
            raise StopAfterFit

        trainer.fit = fit
        return trainer, best

    monkeypatch.setattr(trainer_module, "build_trainer", killed_at_the_end)
    with pytest.raises(StopAfterFit):
        options(0).fit(run_dir=tmp_path / "killed")
    monkeypatch.setattr(trainer_module, "build_trainer", build)
    resumed = Estimator.resume(tmp_path / "killed")
    assert resumed.meta_["epochs_run"] == reference.meta_["epochs_run"]
    assert resumed.meta_["best_epoch"] == reference.meta_["best_epoch"]
    assert flat(resumed.metrics_) == pytest.approx(flat(reference.metrics_), abs=1e-6)


def test_resume_without_config_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="cannot resume"):
        Estimator.resume(tmp_path)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_tsmoe_writes_follow_the_umask(tmp_path, umask, mode):
    from tsmoe import io as run_io

    previous = os.umask(umask)
    try:
        run_io.write_json(tmp_path / "metrics.json", {"mse": 1.0})
        run_io.write_weights(tmp_path / "model.safetensors", {"w": torch.zeros(2)})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "model.safetensors").stat().st_mode) == mode


def test_weights_holding_nan_are_refused_and_no_metric_file_changes(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    from tsmoe.cli import main

    run = tmp_path / "run"
    Estimator("dlinear", "etth1", data_params={"lookback": 24, "horizon": 6}, training={"max_epochs": 1},
              trainer={"accelerator": "cpu"}).fit(run_dir=run)  # fmt: skip
    metrics = (run / "metrics.json").read_bytes()
    weights = load_file(run / "model.safetensors")
    name = next(iter(weights))
    weights[name][..., 0] = float("nan")
    save_file(weights, run / "model.safetensors")
    with pytest.raises(ModelFileError, match=rf"holds NaN or infinite values in \['{name}'\]"):
        Estimator.load(run)
    assert main(["evaluate", str(run)]) == 2
    assert "holds NaN or infinite values" in capsys.readouterr().err
    assert (run / "metrics.json").read_bytes() == metrics


def test_a_metric_with_nothing_to_score_is_written_as_null(tmp_path):
    from tsmoe import io as run_io

    run_io.write_json(tmp_path / "metrics.json", {"auroc": float("nan"), "mse": 0.5, "each": [float("inf"), 1.0]})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"auroc": None, "mse": 0.5, "each": [None, 1.0]}
