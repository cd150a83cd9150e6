"""Every metric tsmoe reports, as plain functions of arrays; keys are lower case.

- values (forecasting and regression): ``mse``, ``mae``, ``mape`` (mean absolute percentage error, in %,
  over targets != 0);
- binary classification: ``auroc``, ``auprc`` (average precision), ``accuracy`` (threshold 0.5);
- multiclass: ``accuracy``, ``auroc`` (macro, one-vs-rest);
- early prediction of an onset: ``utility``, the PhysioNet/CinC 2019 challenge's normalised utility.

Which of them a run reports, and from which outputs, is its task's business (:mod:`tsmoe.tasks`): MAPE
only where forecasts are scored on the data's own scale (``data.metrics_scale: original``); a percentage
error of z-scored values, which lie near zero by construction, means nothing.
"""

from __future__ import annotations

import numpy as np
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


# the PhysioNet/CinC 2019 challenge's utility (evaluate_sepsis_score.py): hours relative to the onset
DT_EARLY, DT_OPTIMAL, DT_LATE = -12.0, -6.0, 3.0
MAX_U_TP, MIN_U_FN, U_FP, U_TN = 1.0, -2.0, -0.05, 0.0


def prediction_utility(labels: np.ndarray, predictions: np.ndarray, times: np.ndarray) -> float:
    """The challenge's utility of one record's alarms ``predictions (T,)`` (0/1) given its step labels
    ``(T,)`` (0/1, turning 1 six hours before the onset, as the challenge labels) at ``times (T,)`` hours.

    With ``t_s`` the onset (the first positive label's time + 6 h) and ``dt = t - t_s``, an alarm earns
    ``max(m1 dt + b1, U_FP)`` up to ``DT_OPTIMAL``, then ``m2 dt + b2`` up to ``DT_LATE`` (a linear rise
    from 0 at 12 h before the onset to 1 at 6 h before, falling to 0 at 3 h after); a missed alarm costs
    ``m3 dt + b3`` after ``DT_OPTIMAL`` (down to -2 at ``DT_LATE``); any alarm on a record without onset
    costs ``U_FP``; steps after ``t_s + DT_LATE`` count nothing. The challenge indexes hourly rows; here
    ``t`` is each step's time, the same on hourly steps."""
    septic = bool(np.any(labels))
    t_sepsis = float(times[np.argmax(labels)]) - DT_OPTIMAL if septic else np.inf
    m1 = MAX_U_TP / (DT_OPTIMAL - DT_EARLY)
    b1 = -m1 * DT_EARLY
    m2 = -MAX_U_TP / (DT_LATE - DT_OPTIMAL)
    b2 = -m2 * DT_LATE
    m3 = MIN_U_FN / (DT_LATE - DT_OPTIMAL)
    b3 = -m3 * DT_OPTIMAL
    total = 0.0
    for t, alarm in zip(times.tolist(), predictions.tolist(), strict=True):
        if t > t_sepsis + DT_LATE:
            continue
        dt = t - t_sepsis
        if septic and alarm:
            total += max(m1 * dt + b1, U_FP) if dt <= DT_OPTIMAL else m2 * dt + b2
        elif not septic and alarm:
            total += U_FP
        elif septic and not alarm:
            total += 0.0 if dt <= DT_OPTIMAL else m3 * dt + b3
        else:
            total += U_TN
    return total


def normalized_utility(labels: np.ndarray, predictions: np.ndarray, records: np.ndarray, times: np.ndarray) -> float:
    """The challenge's score over records: ``(U - U_inaction) / (U_best - U_inaction)``, where ``U`` sums
    :func:`prediction_utility` over records, ``U_best`` alarms exactly from 12 h before to 3 h after each
    onset, and ``U_inaction`` never alarms. Rows are grouped by ``records`` (contiguous)."""
    observed = best = inaction = 0.0
    bounds = np.flatnonzero(np.diff(records)) + 1
    for rows in np.split(np.arange(len(records)), bounds):
        label, time = labels[rows], times[rows]
        ideal = np.zeros(len(rows), dtype=np.int64)
        if label.any():
            onset = float(time[np.argmax(label)]) - DT_OPTIMAL
            ideal = ((time >= onset + DT_EARLY) & (time <= onset + DT_LATE)).astype(np.int64)
        observed += prediction_utility(label, predictions[rows], time)
        best += prediction_utility(label, ideal, time)
        inaction += prediction_utility(label, np.zeros(len(rows), dtype=np.int64), time)
    return float((observed - inaction) / (best - inaction)) if best != inaction else float("nan")
