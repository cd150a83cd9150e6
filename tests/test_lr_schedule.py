"""The learning-rate schedules: cosine follows its formula epoch by epoch, plateau cuts the rate when the
monitored metric stalls, and a checkpoint keeps the schedule's state for a resumed run."""

import math

import pandas as pd
import pytest
import torch

from tsmoe import Estimator
from tsmoe.tasks import get_task
from tsmoe.training.checkpoint_io import read_checkpoint, write_checkpoint
from tsmoe.training.module import LRSchedule, TsmoeModule

SMALL = {"data_params": {"lookback": 24, "horizon": 6}, "trainer": {"accelerator": "cpu"}}


def test_cosine_lowers_the_rate_each_epoch_as_its_formula_says_and_checkpoints_it(tmp_path):
    epochs, lr = 4, 1e-3
    training = {"max_epochs": epochs, "lr": lr, "lr_schedule": "cosine"}
    Estimator("dlinear", "etth1", training=training, **SMALL).fit(run_dir=tmp_path)
    logged = pd.read_csv(tmp_path / "logs" / "metrics.csv").dropna(subset=["lr"])["lr"].tolist()
    expected = [lr * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]
    assert logged == pytest.approx(expected, rel=1e-6)


def test_a_constant_rate_stays_put(tmp_path):
    Estimator("dlinear", "etth1", training={"max_epochs": 2, "lr": 1e-3}, **SMALL).fit(run_dir=tmp_path)
    assert pd.read_csv(tmp_path / "logs" / "metrics.csv")["lr"].dropna().tolist() == pytest.approx([1e-3, 1e-3])


def test_plateau_cuts_the_rate_after_patience_epochs_without_improvement():
    schedule = LRSchedule("plateau", monitor="val_auroc", mode="max", factor=0.5, patience=1)
    module = TsmoeModule(torch.nn.Linear(2, 1), get_task("binary"), lr=1e-2, weight_decay=0.0, schedule=schedule)
    configured = module.configure_optimizers()
    assert configured["lr_scheduler"]["monitor"] == "val_auroc"
    scheduler, optimizer = configured["lr_scheduler"]["scheduler"], configured["optimizer"]
    rates = []
    for auroc in (0.70, 0.75, 0.74, 0.73, 0.76, 0.75, 0.75):  # higher is better
        scheduler.step(auroc)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 5e-3, 2.5e-3])


def test_plateau_trains_through_lightning_on_the_monitored_metric(tmp_path):
    training = {"max_epochs": 2, "lr_schedule": "plateau", "lr_patience": 0}
    estimator = Estimator("dlinear", "etth1", training=training, **SMALL).fit(run_dir=tmp_path)
    assert estimator.meta_["epochs_run"] == 2


@pytest.mark.parametrize("kind", ["cosine", "plateau"])
def test_a_checkpoint_keeps_the_schedule_state_for_resume(kind, tmp_path):
    schedule = LRSchedule(kind, max_epochs=10, factor=0.5, patience=0)
    module = TsmoeModule(torch.nn.Linear(2, 1), get_task("regression"), lr=1e-2, weight_decay=0.0, schedule=schedule)
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    for loss in (1.0, 2.0, 3.0):  # plateau: no improvement after the first, so two cuts
        optimizer.step()  # an epoch's steps come first, as in training (PyTorch warns otherwise)
        scheduler.step(loss) if kind == "plateau" else scheduler.step()
    path = tmp_path / "last.safetensors"  # the two entries Lightning stores and restores on resume
    write_checkpoint(path, {"optimizer_states": [optimizer.state_dict()], "lr_schedulers": [scheduler.state_dict()]})
    restored = TsmoeModule(torch.nn.Linear(2, 1), get_task("regression"), lr=1e-2, weight_decay=0.0, schedule=schedule)
    configured = restored.configure_optimizers()
    stored = read_checkpoint(path)
    configured["optimizer"].load_state_dict(stored["optimizer_states"][0])
    configured["lr_scheduler"]["scheduler"].load_state_dict(stored["lr_schedulers"][0])
    for original in (scheduler, configured["lr_scheduler"]["scheduler"]):
        original.step(4.0) if kind == "plateau" else original.step()
    assert configured["lr_scheduler"]["scheduler"].get_last_lr() == pytest.approx(scheduler.get_last_lr())
    assert scheduler.get_last_lr()[0] < 1e-2
