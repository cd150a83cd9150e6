"""Callbacks of the training path."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EMAWeightAveraging

from tsmoe.io import write_weights


class BestWeights(pl.Callback):
    """Keep the weights of the best validation epoch as safetensors (never a pickle).

    Watches ``monitor`` (``mode`` "min" or "max") after every validation; on improvement the global-zero
    process writes ``path`` atomically. ``best_score`` and ``best_epoch`` say which epoch won.
    """

    def __init__(self, path: Path, monitor: str, mode: str) -> None:
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best_score = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"monitored metric '{self.monitor}' was not logged; logged: {sorted(trainer.callback_metrics)}"
            )
        score = float(value)
        better = score < self.best_score if self.mode == "min" else score > self.best_score
        if better or self.best_epoch < 0:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            if trainer.is_global_zero:
                write_weights(self.path, pl_module.model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = float(state_dict["best_score"])
        self.best_epoch = int(state_dict["best_epoch"])


class AveragedWeights(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights, ``avg <- decay * avg + (1 - decay) * w`` after
    every optimiser step, used for validation and therefore for model selection.

    Lightning swaps the average in for validation and back at the end of the validation epoch. The swap
    back is moved to ``on_validation_end`` so that the callbacks before this one in the trainer's list
    (:class:`BestWeights` in particular) see the weights that were validated, and the ones after it
    (the resume checkpoint) see the training weights again. Lightning's own checkpoint hooks store both,
    so ``--resume`` continues the average exactly.
    """

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass  # keep the average in place until on_validation_end

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_epoch_end(trainer, pl_module)  # the parent's swap back


class StopState(pl.Callback):
    """Carry "training has stopped" (early stopping fired) through a checkpoint.

    Lightning saves the early-stopping counters but not the decision, so a run killed after its last
    epoch would train one epoch more on resume. This callback saves the decision (read when the
    checkpoint is written, after early stopping has decided) and re-applies it on resume.
    """

    def __init__(self) -> None:
        self.trainer: pl.Trainer | None = None
        self.stopped = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        return {"stopped": bool(self.trainer is not None and self.trainer.should_stop)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stopped = bool(state_dict["stopped"])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stopped:
            trainer.should_stop = True


class ElapsedTime(pl.Callback):
    """Log ``elapsed_seconds`` (wall time since this process started training) with every validation, so
    the logs give validation loss against wall time as well as against step."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("elapsed_seconds", time.perf_counter() - self.started, on_epoch=True, sync_dist=False)


class EpochLines(pl.Callback):
    """One line per epoch on stderr, ``epoch 3/40: train_loss 0.412, val_loss 0.398, val_auroc 0.841 (12 s; 37 s
    in all)``, the epoch's seconds and those since training began: what a progress bar shows on a terminal,
    for output that goes to a file or a pipe."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.started = self.epoch_started = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:  # after this epoch's validation: its losses and metric are all logged
            return
        logged = trainer.callback_metrics
        shown = [f"{name} {float(logged[name]):.4g}" for name in dict.fromkeys(("train_loss", "val_loss", self.monitor))
                 if name in logged]  # fmt: skip
        now = time.perf_counter()
        seconds = f"{now - self.epoch_started:.0f} s; {now - self.started:.0f} s in all"
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {', '.join(shown)} ({seconds})",
              file=sys.stderr, flush=True)  # fmt: skip
