"""Every metric tsmoe reports, in one place; keys are lower case.

- forecasting and regression: ``mse``, ``mae``, ``mape`` (mean absolute percentage error, in %, over targets != 0);
- binary classification: ``auroc``, ``auprc`` (average precision), ``accuracy`` (threshold 0.5);
- multiclass: ``accuracy``, ``auroc`` (macro, one-vs-rest).

:func:`compute_metrics` scores whole prediction arrays (:func:`score_probabilities` the classifiers'
probabilities, as an ensemble averages them); :func:`validation_metrics` gives the same
metrics as torchmetrics objects, which Lightning synchronises across DDP processes during training.
"""

from __future__ import annotations

import torch
import torchmetrics
from torchmetrics.functional import classification as cls_fn


def probabilities(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Binary: ``sigmoid`` of ``(N,)`` logits; multiclass: ``softmax`` over ``(N, K)``."""
    return torch.sigmoid(logits) if task == "binary" else torch.softmax(logits, dim=-1)


def compute_metrics(task: str, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Score model outputs: logits for classification; values ``(N,)`` or forecasts ``(N, H, C)``
    (targets only) for regression and forecasting."""
    output, target = output.detach().float().cpu(), target.detach().cpu()
    if task in ("forecast", "regression"):
        error = output - target.float()
        nonzero = target != 0
        ape = (error.abs() / target.float().abs())[nonzero]
        return {
            "mse": float((error**2).mean()),
            "mae": float(error.abs().mean()),
            "mape": float(ape.mean() * 100) if ape.numel() else float("nan"),
        }
    return score_probabilities(task, probabilities(task, output.float()), target)


def score_probabilities(task: str, prob: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Classification metrics from class probabilities: ``(N,)`` P(positive) for binary, ``(N, K)``
    rows summing to 1 for multiclass (what :func:`probabilities` gives, or an ensemble's average)."""
    prob, target = prob.detach().float().cpu(), target.detach().cpu().long()
    if task == "binary":
        both_classes = bool(target.min() != target.max())
        return {
            "auroc": float(cls_fn.binary_auroc(prob, target)) if both_classes else float("nan"),
            "auprc": float(cls_fn.binary_average_precision(prob, target)) if both_classes else float("nan"),
            "accuracy": float(((prob >= 0.5).long() == target).float().mean()),
        }
    classes = prob.shape[-1]
    return {
        "accuracy": float(cls_fn.multiclass_accuracy(prob, target, num_classes=classes, average="micro")),
        "auroc": float(cls_fn.multiclass_auroc(prob, target, num_classes=classes)),
    }


def validation_metrics(task: str, n_classes: int = 2) -> torchmetrics.MetricCollection:
    """The metrics tracked on the validation split during training (logged as ``val_<name>``)."""
    if task == "binary":
        return torchmetrics.MetricCollection(
            {"auroc": torchmetrics.AUROC(task="binary"), "auprc": torchmetrics.AveragePrecision(task="binary")}
        )
    if task == "multiclass":
        return torchmetrics.MetricCollection(
            {"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=n_classes)}
        )
    return torchmetrics.MetricCollection(
        {"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError()}
    )


def default_monitor(task: str) -> tuple[str, str]:
    """(metric, mode) that early stopping and the best-checkpoint choice watch by default."""
    return {"binary": ("val_auroc", "max"), "multiclass": ("val_accuracy", "max")}.get(task, ("val_loss", "min"))
