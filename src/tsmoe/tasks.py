"""Tasks as objects: each owns its loss, its metrics, how raw outputs become probabilities or predictions,
and the validation metric that early stopping watches.

A model's raw output per task:

- ``binary``: logits ``(N,)``; ``multiclass``: logits ``(N, K)``;
- ``regression``: values ``(N,)`` on the z-scored target's scale;
- ``forecast``: forecasts ``(N, horizon, C)`` of every channel (the target channels are scored).

The data decide the task (:class:`tsmoe.data.prepared.PreparedData` names it); :func:`get_task` gives its
object. A new task is one new class here, registered in :data:`TASKS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torchmetrics
from torch.nn import functional as F

from tsmoe.data.prepared import PreparedData
from tsmoe.errors import ConfigError
from tsmoe.metrics import (
    binary_metrics,
    block_bootstrap_intervals,
    error_metrics,
    multiclass_metrics,
    normalized_utility,
    window_block,
    window_losses,
)

Arrays = dict[str, np.ndarray]  # a run's fitted statistics (preprocessing.safetensors)

LOWER_IS_BETTER = ("loss", "mse", "mae", "mape")


def monitor_mode(metric: str) -> str:
    """``"min"`` for a metric where lower is better (losses and errors), ``"max"`` otherwise."""
    return "min" if metric.endswith(LOWER_IS_BETTER) else "max"


class Task:
    """The behaviour of one task. Subclasses set ``name`` and ``monitor`` and implement the methods."""

    name: ClassVar[str]
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")  # (metric, mode) early stopping watches
    is_classifier: ClassVar[bool] = False

    def loss(
        self, output: torch.Tensor, batch: dict[str, torch.Tensor], target_channels: list[int], forecast_loss: str
    ) -> torch.Tensor:
        raise NotImplementedError

    def validation_metrics(self, n_classes: int) -> torchmetrics.MetricCollection:
        """The metrics tracked on the validation split during training (logged as ``val_<name>``), as
        torchmetrics objects, which Lightning synchronises across DDP processes."""
        raise NotImplementedError

    def validation_logged(self) -> list[str]:
        """What validation logs every epoch, the metrics ``training.monitor`` may watch: ``val_loss`` and
        ``val_<name>`` of each of :meth:`validation_metrics`."""
        return ["val_loss", *(f"val_{name}" for name in self.validation_metrics(2).keys())]

    def update_validation(
        self,
        metrics: torchmetrics.MetricCollection,
        output: torch.Tensor,
        batch: dict[str, torch.Tensor],
        target_channels: list[int],
    ) -> None:
        raise NotImplementedError

    def metrics(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        original_scale: bool = True,
        groups: np.ndarray | None = None,
        intervals: bool = True,
    ) -> dict[str, float | list[float]]:
        """Score whole arrays of outputs (as :meth:`scored` gives them) against their targets;
        ``original_scale`` says whether they are on the data's own scale (a percentage error of z-scores,
        values near zero by construction, means nothing, so MAPE is left out on any other). With
        ``intervals``, also 95 % bootstrap intervals (``auroc_ci``, ``mse_ci``, ...); ``groups (N,)`` names the
        series each item (a forecast window) belongs to, for a block bootstrap within series."""
        raise NotImplementedError

    def scored(
        self,
        output: torch.Tensor,
        targets: dict[str, torch.Tensor],
        prepared: PreparedData,
        state: Arrays,
        original: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output, target)`` as :meth:`metrics` reads them, from raw outputs over a part of ``prepared``
        and the batches' targets; ``state`` holds the run's fitted statistics; ``original``: score
        forecasts on the data's original scale."""
        raise NotImplementedError

    def predictions(self, output: torch.Tensor, prepared: PreparedData, state: Arrays) -> torch.Tensor:
        """What ``predict`` returns for raw outputs: class labels ``(N,)``, values ``(N,)`` or forecasts
        ``(N, horizon, n_targets)``, values and forecasts on the original scale."""
        raise NotImplementedError

    def table_columns(
        self, output: torch.Tensor, state: Arrays, class_names: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The columns of a prediction table (``tsmoe predict``) for raw outputs of one item per row."""
        raise ConfigError(f"a {self.name} model has no per-item prediction table")

    def rows(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """A batch's raw output and targets as the rows that get scored: the items themselves (a per-step
        task: its labelled steps, with their record in the batch and time)."""
        return output, {key: batch[key] for key in ("target", "y") if key in batch}

    def mean_table(
        self, frames: list[pd.DataFrame], keys: list[str], class_names: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Ensemble members' prediction tables (same rows and columns) as one: every column but the
        ``keys`` averaged row by row (``class_names``: a classifier's classes by name)."""
        out = frames[0].copy()
        averaged = [c for c in out.columns if c not in keys]
        out[averaged] = sum(frame[averaged].to_numpy(dtype=np.float64) for frame in frames) / len(frames)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ClassificationTask(Task):
    """Classifiers: raw outputs are logits; scores read class probabilities."""

    is_classifier = True

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def proba_table(self, prob: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, K)`` from what :meth:`probabilities` gives."""
        return prob

    def labels(self, prob: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``(N,)`` from what :meth:`probabilities` gives."""
        raise NotImplementedError

    def table_labels(self, table: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``(N,)`` from a probability table ``(N, K)`` (:meth:`proba_table`'s form)."""
        return table.argmax(-1)

    def score_probabilities(self, prob: torch.Tensor, target: torch.Tensor, intervals: bool = True) -> dict[str, float]:
        """Metrics from class probabilities (what :meth:`probabilities` gives, or an ensemble's mean), with
        bootstrap intervals where the task has them and ``intervals`` asks."""
        raise NotImplementedError

    def metrics(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        original_scale: bool = True,
        groups: np.ndarray | None = None,
        intervals: bool = True,
    ) -> dict[str, float | list[float]]:
        return self.score_probabilities(self.probabilities(output.detach().float().cpu()), target, intervals)

    def scored(self, output, targets, prepared, state, original) -> tuple[torch.Tensor, torch.Tensor]:
        return output, targets["target"]

    def predictions(self, output: torch.Tensor, prepared: PreparedData, state: Arrays) -> torch.Tensor:
        return self.labels(self.probabilities(output))

    def update_validation(self, metrics, output, batch, target_channels) -> None:
        metrics.update(self.probabilities(output), batch["target"].long())

    def mean_table(self, frames, keys, class_names=None) -> pd.DataFrame:
        """The members' probabilities averaged row by row, and the classes taken from the mean (by name
        where ``class_names`` or the members' columns name them)."""
        probability = [c for c in frames[0].columns if c not in (*keys, "prediction")]
        out = super().mean_table([frame.drop(columns="prediction") for frame in frames], keys)
        labels = self.column_labels(out[probability])
        if class_names:
            labels = np.array(class_names)[labels]
        elif not pd.api.types.is_numeric_dtype(frames[0]["prediction"]):  # the members' columns name the classes
            labels = np.array([column.removeprefix("probability_") for column in probability])[labels]
        out.insert(list(frames[0].columns).index("prediction"), "prediction", labels)
        return out

    def column_labels(self, probability: pd.DataFrame) -> np.ndarray:
        """Classes ``(N,)`` from a table's probability columns."""
        return probability.to_numpy().argmax(-1)

    @staticmethod
    def soft_or_hard(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's ``soft_target`` (distillation, training only) or else its labels."""
        return batch.get("soft_target", batch["target"])


class BinaryTask(ClassificationTask):
    """Two classes: one logit per item; binary cross-entropy; AUROC is watched."""

    name = "binary"
    monitor = ("val_auroc", "max")

    def loss(self, output, batch, target_channels, forecast_loss) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(output, self.soft_or_hard(batch).float())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``sigmoid`` of ``(N,)`` logits: P(positive) ``(N,)``."""
        return torch.sigmoid(logits)

    def proba_table(self, prob: torch.Tensor) -> torch.Tensor:
        return torch.stack([1 - prob, prob], dim=-1)

    def labels(self, prob: torch.Tensor) -> torch.Tensor:
        return (prob >= 0.5).long()

    def table_labels(self, table: torch.Tensor) -> torch.Tensor:
        return self.labels(table[:, 1])

    def table_columns(self, output, state, class_names=None) -> dict[str, np.ndarray]:
        """``probability`` (of class 1, the second of ``class_names``) and ``prediction`` (by name where given)."""
        prob = self.probabilities(output).numpy()
        labels = (prob >= 0.5).astype(int)
        return {"probability": prob, "prediction": np.array(class_names)[labels] if class_names else labels}

    def column_labels(self, probability: pd.DataFrame) -> np.ndarray:
        return (probability["probability"] >= 0.5).astype(int).to_numpy()

    def score_probabilities(self, prob: torch.Tensor, target: torch.Tensor, intervals: bool = True) -> dict[str, float]:
        return binary_metrics(prob, target, intervals)

    def validation_metrics(self, n_classes: int) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {"auroc": torchmetrics.AUROC(task="binary"), "auprc": torchmetrics.AveragePrecision(task="binary")}
        )


class MulticlassTask(ClassificationTask):
    """K classes: one logit per class; cross-entropy; accuracy is watched."""

    name = "multiclass"
    monitor = ("val_accuracy", "max")

    def loss(self, output, batch, target_channels, forecast_loss) -> torch.Tensor:
        target = batch["soft_target"].float() if "soft_target" in batch else batch["target"].long()
        return F.cross_entropy(output, target)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``softmax`` over ``(N, K)`` logits."""
        return torch.softmax(logits, dim=-1)

    def labels(self, prob: torch.Tensor) -> torch.Tensor:
        return prob.argmax(-1)

    def table_columns(self, output, state, class_names=None) -> dict[str, np.ndarray]:
        """``prediction`` (the class, by name where ``class_names`` are given) and ``probability_<class>``."""
        prob = self.probabilities(output).numpy()
        names = list(class_names) if class_names is not None else list(range(prob.shape[1]))
        columns = {"prediction": np.array(names)[prob.argmax(-1)] if class_names is not None else prob.argmax(-1)}
        return columns | {f"probability_{name}": prob[:, k] for k, name in enumerate(names)}

    def score_probabilities(self, prob: torch.Tensor, target: torch.Tensor, intervals: bool = True) -> dict[str, float]:
        return multiclass_metrics(prob, target)

    def validation_metrics(self, n_classes: int) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=n_classes)}
        )


class ValueTask(Task):
    """Regression and forecasting: raw outputs are values; squared error is the loss."""

    def validation_metrics(self, n_classes: int) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError()}
        )

    def metrics(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        original_scale: bool = True,
        groups: np.ndarray | None = None,
        intervals: bool = True,
    ) -> dict[str, float | list[float]]:
        scores: dict[str, float | list[float]] = error_metrics(output, target)
        if not original_scale:
            del scores["mape"]
        if intervals:
            block = window_block(int(output.shape[1])) if output.dim() > 1 else 1  # regression: independent items
            scores |= block_bootstrap_intervals(window_losses(output, target), block, groups)
        return scores


class RegressionTask(ValueTask):
    """One value per item, trained on the z-scored target: MSE."""

    name = "regression"

    def loss(self, output, batch, target_channels, forecast_loss) -> torch.Tensor:
        return F.mse_loss(output, batch["target"].float())

    def update_validation(self, metrics, output, batch, target_channels) -> None:
        metrics.update(output, batch["target"].float())

    @staticmethod
    def to_target_scale(scaled: torch.Tensor, state: Arrays) -> torch.Tensor:
        """Undo the training z-score of the target: ``scaled * std + mean``."""
        return scaled.float() * float(state["target_std"][0]) + float(state["target_mean"][0])

    def scored(self, output, targets, prepared, state, original) -> tuple[torch.Tensor, torch.Tensor]:
        return self.to_target_scale(output, state), self.to_target_scale(targets["target"], state)

    def predictions(self, output: torch.Tensor, prepared: PreparedData, state: Arrays) -> torch.Tensor:
        return self.to_target_scale(output, state)

    def table_columns(self, output, state, class_names=None) -> dict[str, np.ndarray]:
        return {"prediction": self.to_target_scale(output, state).numpy()}


class ForecastTask(ValueTask):
    """A horizon of values per window, scored on the target channels."""

    name = "forecast"

    def loss(self, output, batch, target_channels, forecast_loss) -> torch.Tensor:
        """MSE on the forecast's target channels. Windows that carry their own ``scale (B, 1, C)`` (the
        input's standard deviation) are scored on that scale, ``mean(((output - y) / scale)^2)`` (the MSE of
        the window-normalised forecast), unless ``forecast_loss == "original"``: then ``mean((output -
        y)^2)``. ``forecast_loss == "mape"`` scores any forecast by its mean absolute percentage error (as a
        fraction), ``mean(|output - y| / |y|)`` over the targets ``y != 0``, the targets the ``mape``
        metric counts."""
        output, target = output[..., target_channels], batch["y"][..., target_channels]
        if forecast_loss == "mape":
            counted = target != 0  # a zero target has no percentage error; it is left out, as by the metric
            relative = (output - target).abs() / torch.where(counted, target.abs(), 1.0)
            return torch.where(counted, relative, 0.0).sum() / counted.sum().clamp_min(1)
        if "scale" in batch and forecast_loss == "window":
            return ((output - target) / batch["scale"][..., target_channels]).pow(2).mean()
        return F.mse_loss(output, target)

    def quantile_loss(
        self, quantiles: torch.Tensor, levels: list[float], batch: dict, target_channels: list[int], forecast_loss: str
    ) -> torch.Tensor:
        """The mean pinball loss of quantile forecasts ``(B, H, C, Q)`` at ``levels (Q,)``:
        ``mean max(q (y - f_q), (q - 1) (y - f_q))`` over windows, steps, target channels and levels; errors
        divided by the window's own ``scale`` where it has one and ``forecast_loss == "window"``, as
        :meth:`loss` does."""
        forecast, target = quantiles[..., target_channels, :], batch["y"][..., target_channels].unsqueeze(-1)
        error = target - forecast
        if "scale" in batch and forecast_loss == "window":
            error = error / batch["scale"][..., target_channels].unsqueeze(-1)
        q = torch.tensor(levels, dtype=error.dtype, device=error.device)
        return torch.maximum(q * error, (q - 1) * error).mean()

    def update_validation(self, metrics, output, batch, target_channels) -> None:
        metrics.update(output[..., target_channels], batch["y"][..., target_channels])

    def scored(self, output, targets, prepared, state, original) -> tuple[torch.Tensor, torch.Tensor]:
        channels = prepared.target_channels
        output, target = output[..., channels], targets["y"][..., channels]
        if original and prepared.scaler is not None:
            output, target = prepared.scaler.inverse(output, channels), prepared.scaler.inverse(target, channels)
        return output, target

    def predictions(self, output: torch.Tensor, prepared: PreparedData, state: Arrays) -> torch.Tensor:
        channels = prepared.target_channels
        return prepared.scaler.inverse(output[..., channels], channels)


PREFIXES = (6.0, 12.0, 24.0, 36.0, 48.0)  # early-prediction metrics at these times after the start (clock units)


class PerStepTask(Task):
    """Early prediction: the base task (binary, multiclass, regression) at every labelled step.

    A model's raw output is ``(B, T)`` (or ``(B, T, K)``), one prediction per step from the steps seen so
    far. The loss is the base task's over every labelled step, ``step_mask * step_labelled`` (each step
    weighs alike). Scored outputs are the labelled steps' rows; their targets a table ``(n, 3)`` of
    ``[label, record, time]``, so :meth:`metrics` reports the base metrics over all steps and, at each
    time ``H`` of :data:`PREFIXES`, over the records' last step at or before ``H`` (``auroc_at_24``: what
    was known 24 h after the start; left out where those steps are the previous time's, as when the data
    are cut at ``until``), and over their last step (``auroc_last``, the whole-record score).
    A binary task whose labels turn from 0 to 1 within records (an onset, as the PhysioNet 2019 sepsis
    labels) also reports the challenge's normalised ``utility``
    (:func:`tsmoe.metrics.normalized_utility`)."""

    def __init__(self, base: Task) -> None:
        self.base = base
        self.name = f"{base.name}_per_step"  # type: ignore[misc]
        self.monitor = base.monitor  # type: ignore[misc]
        self.is_classifier = base.is_classifier  # type: ignore[misc]

    def __getattr__(self, name: str):  # probabilities, labels, proba_table, ...: the base task's
        return getattr(self.base, name)

    @staticmethod
    def labelled(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, T)`` bool: the steps that carry a label."""
        return (batch["step_mask"] * batch["step_labelled"]).bool()

    def _step_batch(self, output, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        where = self.labelled(batch)
        target = batch["step_target"][where]
        return output[where], {"target": target.long() if self.base.is_classifier else target}

    def loss(self, output, batch, target_channels, forecast_loss) -> torch.Tensor:
        return self.base.loss(*self._step_batch(output, batch), target_channels, forecast_loss)

    def validation_metrics(self, n_classes: int) -> torchmetrics.MetricCollection:
        return self.base.validation_metrics(n_classes)

    def update_validation(self, metrics, output, batch, target_channels) -> None:
        self.base.update_validation(metrics, *self._step_batch(output, batch), target_channels)

    def rows(self, output: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """The labelled steps' rows; for data without step labels (predicting), each record's last step:
        its answer from everything it holds."""
        if "step_labelled" not in batch:
            last = (batch["lengths"] - 1).clamp(min=0)
            return output[torch.arange(len(last)), last], {"target": batch["target"]}
        where = self.labelled(batch)
        record = torch.arange(where.shape[0])[:, None].expand_as(where)
        return output[where], {"target": batch["step_target"][where], "record": record[where],
                               "time": batch["times"][where]}  # fmt: skip

    def scored(self, output, targets, prepared, state, original) -> tuple[torch.Tensor, torch.Tensor]:
        target = targets["target"]
        if isinstance(self.base, RegressionTask):
            output, target = self.base.to_target_scale(output, state), self.base.to_target_scale(target, state)
        table = torch.stack([target.double(), targets["record"].double(), targets["time"].double()], dim=-1)
        return output, table

    def metrics(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        original_scale: bool = True,
        groups: np.ndarray | None = None,
        intervals: bool = True,
    ) -> dict[str, float | list[float]]:
        label, record, time = target[:, 0], target[:, 1].long(), target[:, 2]
        label = label.long() if self.base.is_classifier else label.float()
        # over all steps no interval: a record's steps are not independent items (its last steps are)
        scores = self.base.metrics(output, label, original_scale, intervals=False)
        previous = None
        for prefix in (*PREFIXES, None):
            rows = last_rows(record, time, prefix)
            repeated = prefix is not None and previous is not None and np.array_equal(rows, previous)
            previous = rows
            if len(rows) and not repeated:  # no record has a step since the last prefix (data cut by until)
                suffix = "last" if prefix is None else f"at_{prefix:g}"
                at_prefix = self.base.metrics(output[rows], label[rows], intervals=intervals)
                scores |= {prefixed(k, suffix): v for k, v in at_prefix.items()}
        if isinstance(self.base, BinaryTask) and has_onsets(label, record):
            predicted = (self.base.probabilities(output.float()) >= 0.5).long()
            scores["utility"] = normalized_utility(label.numpy(), predicted.numpy(), record.numpy(), time.numpy())
        return scores

    def predictions(self, output: torch.Tensor, prepared: PreparedData, state: Arrays) -> torch.Tensor:
        return self.base.predictions(output, prepared, state)

    def table_columns(self, output, state, class_names=None) -> dict[str, np.ndarray]:
        return self.base.table_columns(output, state, class_names)

    def mean_table(self, frames, keys, class_names=None) -> pd.DataFrame:
        return self.base.mean_table(frames, keys, class_names)


def prefixed(metric: str, suffix: str) -> str:
    """``auroc`` -> ``auroc_last``; an interval keeps ``_ci`` last, as every interval key does: ``auroc_last_ci``."""
    base, interval = (metric[:-3], "_ci") if metric.endswith("_ci") else (metric, "")
    return f"{base}_{suffix}{interval}"


def last_rows(record: torch.Tensor, time: torch.Tensor, until: float | None) -> torch.Tensor:
    """Indices of each record's last row at or before ``until`` (every record's last row for ``None``);
    rows are in record order, time order within a record."""
    keep = torch.ones_like(time, dtype=torch.bool) if until is None else time <= until
    index = torch.arange(len(record))[keep]
    kept = record[keep]
    last = torch.ones(len(kept), dtype=torch.bool)
    if len(kept) > 1:
        last[:-1] = kept[1:] != kept[:-1]
    return index[last]


def has_onsets(label: torch.Tensor, record: torch.Tensor) -> bool:
    """Whether some record's labels change over its steps (an onset), as opposed to one outcome per record."""
    if len(label) < 2:
        return False
    same_record = record[1:] == record[:-1]
    return bool(((label[1:] != label[:-1]) & same_record).any())


BASE_TASKS: tuple[Task, ...] = (BinaryTask(), MulticlassTask(), RegressionTask(), ForecastTask())
TASKS: dict[str, Task] = {task.name: task for task in BASE_TASKS} | {
    f"{task.name}_per_step": PerStepTask(task) for task in BASE_TASKS if task.name != "forecast"
}


def get_task(name: str) -> Task:
    """The task object of a task name (as data preparation and ``meta.json`` give it)."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}'; known: {', '.join(TASKS)}")
    return TASKS[name]


def classification_task(name: str, what: str, instead: str = "") -> ClassificationTask:  # or a per-step one
    """The task object of ``name``, refusing a task that is not a classifier's (``what`` says who asked,
    ``instead`` what to use instead)."""
    task = get_task(name)
    if not task.is_classifier:
        raise ConfigError(f"{what} is for classifiers; this run's task is {name}" + (f": {instead}" if instead else ""))
    return task
