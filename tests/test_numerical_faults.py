"""A loss that becomes NaN or infinite stops the run with an error naming the step and batch, and the last
good checkpoint stays; gradient clipping is on unless switched off."""

from __future__ import annotations

import pytest
import torch

from tsmoe import Estimator
from tsmoe.config import resolve
from tsmoe.errors import TrainingError
from tsmoe.tasks import ForecastTask
from tsmoe.training.checkpoint_io import read_checkpoint
from tsmoe.training.trainer import checkpoint_path

SMALL = {"data_params": {"lookback": 24, "horizon": 6}, "trainer": {"accelerator": "cpu"}}


def test_nan_loss_stops_naming_step_and_batch_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    steps_per_epoch = 135  # ETTh1 train windows at lookback 24, horizon 6, batch 64
    real_loss = ForecastTask.loss
    training_calls = []

    def loss_that_breaks(self, *args):
        loss = real_loss(self, *args)
        if loss.requires_grad:  # a training step (validation computes the loss without gradients)
            training_calls.append(1)
            if len(training_calls) == steps_per_epoch + 4:  # the second epoch's 4th batch (index 3)
                loss = loss * float("nan")
        return loss

    monkeypatch.setattr(ForecastTask, "loss", loss_that_breaks)
    with pytest.raises(TrainingError, match=rf"became nan at step {steps_per_epoch + 3} \(epoch 1, batch 3\)"):
        Estimator("dlinear", "etth1", training={"max_epochs": 5}, **SMALL).fit(run_dir=tmp_path / "run")
    kept = read_checkpoint(checkpoint_path(tmp_path / "run"))
    assert kept["epoch"] == 0 and kept["global_step"] == steps_per_epoch  # the end of the good epoch
    assert all(torch.isfinite(t).all() for t in kept["state_dict"].values())


def test_diverging_training_stops_with_a_tsmoe_error(tmp_path):
    with pytest.raises(TrainingError, match=r"became (nan|inf) at step \d+ \(epoch \d+, batch \d+\)"):
        Estimator("dlinear", "etth1", training={"max_epochs": 3, "lr": 1e30, "gradient_clip_val": None},
                  **SMALL).fit(run_dir=tmp_path / "run")  # fmt: skip


def test_gradient_clipping_is_on_by_default():
    assert resolve({"data": {"name": "etth1"}, "model": {"name": "dlinear"}}).training.gradient_clip_val == 1.0
