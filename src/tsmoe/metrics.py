"""Every metric tsmoe reports, as plain functions of arrays; keys are lower case.

- values (forecasting and regression): ``mse``, ``mae``, ``mape`` (mean absolute percentage error, in %,
  over targets != 0);
- binary classification: ``auroc``, ``auprc`` (average precision), ``accuracy`` (threshold 0.5);
- multiclass: ``accuracy``, ``auroc`` (macro, one-vs-rest).

Which of them a run reports, and from which outputs, is its task's business (:mod:`tsmoe.tasks`): MAPE
only where forecasts are scored on the data's own scale (``data.metrics_scale: original``); a percentage
error of z-scored values, which lie near zero by construction, means nothing.
"""

from __future__ import annotations

import torch
from torchmetrics.functional import classification as cls_fn


def error_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``mse``, ``mae`` and ``mape`` of values ``(N,)`` or forecasts ``(N, H, C)`` against their targets."""
    output, target = output.detach().float().cpu(), target.detach().cpu()
    error = output - target.float()
    nonzero = target != 0
    ape = (error.abs() / target.float().abs())[nonzero]
    return {
        "mse": float((error**2).mean()),
        "mae": float(error.abs().mean()),
        "mape": float(ape.mean() * 100) if ape.numel() else float("nan"),
    }


def binary_metrics(prob: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``auroc``, ``auprc`` and ``accuracy`` of P(positive) ``(N,)`` against labels ``(N,)`` (AUROC and
    AUPRC are NaN when only one class is present)."""
    prob, target = prob.detach().float().cpu(), target.detach().cpu().long()
    both_classes = bool(target.min() != target.max())
    return {
        "auroc": float(cls_fn.binary_auroc(prob, target)) if both_classes else float("nan"),
        "auprc": float(cls_fn.binary_average_precision(prob, target)) if both_classes else float("nan"),
        "accuracy": float(((prob >= 0.5).long() == target).float().mean()),
    }


def multiclass_metrics(prob: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``accuracy`` and macro ``auroc`` of class probabilities ``(N, K)`` (rows summing to 1)."""
    prob, target = prob.detach().float().cpu(), target.detach().cpu().long()
    classes = prob.shape[-1]
    return {
        "accuracy": float(cls_fn.multiclass_accuracy(prob, target, num_classes=classes, average="micro")),
        "auroc": float(cls_fn.multiclass_auroc(prob, target, num_classes=classes)),
    }
