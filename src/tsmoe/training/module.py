"""The LightningModule every model trains through: loss by task, validation metrics, the optimiser.

It is thin on purpose: the network is a plain ``nn.Module`` from the registry; this class only knows
how to score its output for the task.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from tsmoe.errors import TrainingError
from tsmoe.models.output import unpack
from tsmoe.tasks import Task


@dataclass(frozen=True)
class LRSchedule:
    """How the learning rate moves over training (see ``TrainingConfig.lr_schedule``)."""

    kind: str = "constant"  # "constant", "cosine" or "plateau"
    max_epochs: int = 50  # cosine: the epochs over which lr falls to 0
    monitor: str = "val_loss"  # plateau: the validation metric watched, and whether lower is better
    mode: str = "min"
    factor: float = 0.5
    patience: int = 2


class TsmoeModule(pl.LightningModule):
    """Trains ``model`` for ``task`` with AdamW (and ``schedule``); logs ``train_loss``, ``lr``,
    ``val_loss`` and ``val_<metric>``. The loss and the validation metrics are the task's."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        lr: float,
        weight_decay: float,
        target_channels: list[int] | None = None,
        n_classes: int = 2,
        forecast_loss: str = "window",
        schedule: LRSchedule | None = None,
    ) -> None:
        super().__init__()
        self.forecast_loss = forecast_loss
        self.schedule = schedule or LRSchedule()
        self.model = model
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.target_channels = list(target_channels or [])
        self.val_metrics = task.validation_metrics(n_classes).clone(prefix="val_")
        # the generator that shuffles the training batches; saved in checkpoints so a resumed run
        # draws the same batches as one never interrupted
        self.shuffle_generator: torch.Generator | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return unpack(self.model(batch))[0]

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        result = self.model(batch)
        output, aux_loss = unpack(result)
        if isinstance(result, dict) and "dropped" in result:  # a capped MoE: share of assignments over capacity
            self.log("train_dropped_share", result["dropped"].float().mean(), on_step=False, on_epoch=True)
        loss = self._loss(result, output, batch)
        if aux_loss is not None:  # e.g. a load-balancing loss, already weighted by the model
            self.log("train_aux_loss", aux_loss, on_step=False, on_epoch=True, sync_dist=True)
            loss = loss + aux_loss
        if not torch.isfinite(loss):
            # stops the run; the last checkpoint (the end of the previous epoch) stays as it was
            raise TrainingError(
                f"the training loss became {float(loss.detach())} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); the run stopped and its last good "
                "checkpoint is kept: lower training.lr, or check the data for extreme values"
            )
        size = len(next(iter(batch.values())))
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=size)
        return loss

    def _loss(self, result: Any, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The task's loss of ``output``; for a quantile forecaster, the pinball loss of its quantiles."""
        if isinstance(result, dict) and "quantiles" in result:
            return self.task.quantile_loss(
                result["quantiles"], self.model.levels, batch, self.target_channels, self.forecast_loss
            )
        return self.task.loss(output, batch, self.target_channels, self.forecast_loss)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        result = self.model(batch)
        output = unpack(result)[0]
        size = len(next(iter(batch.values())))
        loss = self._loss(result, output, batch)
        self.log("val_loss", loss, sync_dist=True, batch_size=size)
        self.task.update_validation(self.val_metrics, output, batch, self.target_channels)
        # logging the metric objects lets Lightning compute them once per epoch, synchronised across processes
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tsmoe_rng"] = rng_states(self.shuffle_generator)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "tsmoe_rng" in checkpoint:
            set_rng_states(checkpoint["tsmoe_rng"], self.shuffle_generator)

    def on_train_epoch_start(self) -> None:
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = self.schedule
        if schedule.kind == "constant":
            return optimizer
        if schedule.kind == "cosine":  # lr_e = lr * (1 + cos(pi * e / max_epochs)) / 2 at epoch e
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=schedule.max_epochs)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=schedule.mode, factor=schedule.factor, patience=schedule.patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": schedule.monitor},
        }


def rng_states(shuffle_generator: torch.Generator | None) -> dict[str, Any]:
    """Every random state a training step draws from: torch (CPU and CUDA), numpy, Python, the shuffler."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gauss)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if shuffle_generator is not None:
        states["shuffle"] = shuffle_generator.get_state()
    return states


def set_rng_states(states: dict[str, Any], shuffle_generator: torch.Generator | None) -> None:
    """Restore what :func:`rng_states` saved."""
    torch.set_rng_state(states["torch"].cpu())
    kind, keys, position, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    if "shuffle" in states and shuffle_generator is not None:
        shuffle_generator.set_state(states["shuffle"].cpu())
