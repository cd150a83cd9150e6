"""Every metric tsmoe reports, as plain functions of arrays; keys are lower case.

- values (forecasting and regression): ``mse``, ``mae``, ``mape`` (mean absolute percentage error, in %,
  over targets != 0); and moving-block bootstrap 95 % intervals ``mse_ci``, ``mae_ci``
  (:func:`block_bootstrap_intervals`: blocks of two horizons' windows, since overlapping windows share targets);
- binary classification: ``auroc``, ``auprc`` (average precision), ``accuracy`` (threshold 0.5), ``brier``
  (mean squared error of the probability), ``ece`` (expected calibration error over equal-mass bins),
  ``log_loss``; and stratified bootstrap 95 % intervals ``auroc_ci``, ``auprc_ci``, ``brier_ci`` (two
  numbers each; :func:`bootstrap_intervals`);
- multiclass: ``accuracy``, ``auroc`` (macro, one-vs-rest), ``brier`` (summed over classes), ``ece``
  (top-label), ``log_loss``;
- intervals and quantiles of forecasts: ``coverage_<l>`` and ``width_<l>`` per level (:mod:`tsmoe.intervals`),
  ``crps`` (approximated from the quantiles) and ``wql`` (weighted quantile loss);
- early prediction of an onset: ``utility``, the PhysioNet/CinC 2019 challenge's normalised utility.

Which of them a run reports, and from which outputs, is its task's business (:mod:`tsmoe.tasks`): MAPE
only where forecasts are scored on the data's own scale (``data.metrics_scale: original``); a percentage
error of z-scored values, which lie near zero by construction, means nothing.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torchmetrics.functional import classification as cls_fn

log = logging.getLogger(__name__)
FEWEST_BLOCKS = 2  # below two blocks' worth of items a block bootstrap only redraws the sample itself


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


def window_losses(output: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-item squared and absolute errors, averaged over each item's horizon and channels: ``(N,)`` each."""
    error = (output.detach().cpu().double() - target.detach().cpu().double()).reshape(len(output), -1)
    return {"mse": (error**2).mean(1).numpy(), "mae": error.abs().mean(1).numpy()}


def window_block(horizon: int) -> int:
    """The bootstrap block, in windows, for forecast windows of ``horizon`` steps: two horizons. A window
    shares targets with the next ``horizon - 1`` windows and errors stay correlated a while longer; longer
    blocks widen the intervals little more (``benchmarks/block_length.py``)."""
    return 2 * horizon


def block_bootstrap_intervals(
    losses: dict[str, np.ndarray],
    block: int = 1,
    groups: np.ndarray | None = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile intervals of the mean of each per-item loss (``{"mse": (N,), ...}`` -> ``{"mse_ci": [low,
    high], ...}``) over ``resamples`` moving-block bootstrap samples (Kunsch, 1989), from a seeded generator.

    Items are taken in their order within each group (``groups (N,)``: a series' windows, in time order; one
    group without it). A sample of a group of ``n`` items joins ``ceil(n / b)`` blocks of ``b = min(block,
    n)`` consecutive items, each starting anywhere in ``0 .. n - b``, and keeps its first ``n`` items, so the
    dependence between items less than a block apart survives resampling; ``block = 1`` is the ordinary
    bootstrap of independent items. Every loss is resampled with the same blocks. Block sums come from
    cumulative sums, so a sample costs ``N / b`` numbers, not ``N``. Where the groups hold fewer than
    :data:`FEWEST_BLOCKS` blocks in all (a test split of 798 windows of horizon 720, say) there is no
    interval to give: it returns nothing, and says so in the log."""
    keys = list(losses)
    values = np.stack([np.asarray(losses[k], dtype=np.float64) for k in keys])  # (M, N)
    n_items = values.shape[1]
    group_ids = np.zeros(n_items, dtype=np.int64) if groups is None else np.asarray(groups)
    sizes = np.unique(group_ids, return_counts=True)[1]
    blocks = float(np.sum(sizes / np.minimum(max(int(block), 1), sizes)))
    if blocks < FEWEST_BLOCKS:
        log.warning("no bootstrap intervals: %d items hold %.1f blocks of %d, fewer than %d", n_items, blocks,
                    block, FEWEST_BLOCKS)  # fmt: skip
        return {}
    rng = np.random.default_rng(seed)
    totals = np.zeros((resamples, len(keys)))
    for group in np.unique(group_ids):
        cumulative = np.concatenate([np.zeros((len(keys), 1)), np.cumsum(values[:, group_ids == group], 1)], 1)
        n = cumulative.shape[1] - 1
        b = min(max(int(block), 1), n)
        full, rest = divmod(n, b)
        lengths = np.full(full + (rest > 0), b)
        lengths[full:] = rest  # the last block is cut to the items still wanted
        chunk = max(1, 2**21 // len(lengths))  # resamples drawn at once: a few MiB of block starts
        for first in range(0, resamples, chunk):
            starts = rng.integers(0, n - b + 1, size=(min(chunk, resamples - first), len(lengths)))
            sums = (cumulative[:, starts + lengths] - cumulative[:, starts]).sum(-1)  # (M, chunk)
            totals[first : first + len(starts)] += sums.T
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(totals / n_items, [tail, 100 - tail], axis=0)
    return {f"{key}_ci": [float(lo), float(hi)] for key, lo, hi in zip(keys, low, high, strict=True)}


def pinball_loss(forecast: np.ndarray, target: np.ndarray, quantile: float) -> np.ndarray:
    """``rho_q(y - f) = max(q (y - f), (q - 1) (y - f))``, elementwise: the loss a ``q``-quantile forecast
    minimises in expectation."""
    error = target - forecast
    return np.maximum(quantile * error, (quantile - 1) * error)


def quantile_metrics(forecasts: np.ndarray, quantiles: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``crps`` and ``wql`` of quantile forecasts ``(Q, ...)`` at levels ``quantiles (Q,)`` against ``target
    (...)``: CRPS approximated as ``(2 / Q) sum_q mean(rho_q)`` (the CRPS is twice the pinball loss
    integrated over q), and the weighted quantile loss ``(1 / Q) sum_q 2 sum(rho_q) / sum|y|`` (GluonTS's
    mean_wQuantileLoss)."""
    losses = np.stack([pinball_loss(f, target, q) for f, q in zip(forecasts, quantiles, strict=True)])
    scale = float(np.abs(target).sum())
    return {
        "crps": float(2 * losses.mean()),
        "wql": float(np.mean([2 * loss.sum() / scale for loss in losses])) if scale > 0 else float("nan"),
    }


def binary_metrics(prob: torch.Tensor, target: torch.Tensor, intervals: bool = True) -> dict[str, float | list]:
    """``auroc``, ``auprc``, ``accuracy``, ``brier``, ``ece`` and ``log_loss`` of P(positive) ``(N,)`` against
    labels ``(N,)`` and, with ``intervals``, their bootstrap intervals ``auroc_ci``, ``auprc_ci``, ``brier_ci``
    (AUROC, AUPRC and the intervals are NaN when only one class is present)."""
    prob, target = prob.detach().float().cpu(), target.detach().cpu().long()
    both_classes = bool(target.min() != target.max())
    p, y = prob.double().numpy(), target.numpy()
    metrics: dict[str, float | list] = {
        "auroc": float(cls_fn.binary_auroc(prob, target)) if both_classes else float("nan"),
        "auprc": float(cls_fn.binary_average_precision(prob, target)) if both_classes else float("nan"),
        "accuracy": float(((prob >= 0.5).long() == target).float().mean()),
        "brier": brier_score(p, y),
        "ece": expected_calibration_error(p, y),
        "log_loss": log_loss(p, y),
    }
    if intervals:
        metrics |= bootstrap_intervals(p, y) if both_classes else {k: [float("nan")] * 2 for k in INTERVAL_KEYS}
    return metrics


INTERVAL_KEYS = ("auroc_ci", "auprc_ci", "brier_ci")
BINARY_METRICS = ("auroc", "auprc", "accuracy", "brier", "ece", "log_loss", *INTERVAL_KEYS)  # what a binary run reports


def brier_score(prob: np.ndarray, target: np.ndarray) -> float:
    """``mean((p - y)^2)`` of P(positive) ``(N,)`` against 0/1 labels ``(N,)``: 0 is perfect, 0.25 a coin."""
    return float(np.mean((prob - target) ** 2))


def log_loss(prob: np.ndarray, target: np.ndarray, eps: float = 1e-7) -> float:
    """``-mean(y log p + (1 - y) log(1 - p))``, with ``p`` kept within ``[eps, 1 - eps]``."""
    p = np.clip(prob, eps, 1 - eps)
    return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))


def equal_mass_bins(prob: np.ndarray, bins: int = 10) -> list[np.ndarray]:
    """The items' indices in ``bins`` bins cut at the quantiles of ``prob`` (about N / bins items each, so
    sparse high-risk regions are not left to one or two items); equal probabilities share a bin."""
    edges = np.quantile(prob, np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, prob, side="right")
    return [rows for b in range(bins) if len(rows := np.flatnonzero(which == b))]


def expected_calibration_error(prob: np.ndarray, target: np.ndarray, bins: int = 10) -> float:
    """``ECE = sum_b (n_b / N) |mean(y_b) - mean(p_b)|`` over :func:`equal_mass_bins`."""
    groups = equal_mass_bins(prob, bins)
    return float(sum(len(g) / len(prob) * abs(target[g].mean() - prob[g].mean()) for g in groups))


def reliability_bins(prob: np.ndarray, target: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(mean p, observed rate)`` per equal-mass bin: the points of a reliability diagram, one per bin."""
    groups = equal_mass_bins(prob, bins)
    return np.array([prob[g].mean() for g in groups]), np.array([target[g].mean() for g in groups])


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts + 1) / 2.0)[inverse]


def auroc_of(prob: np.ndarray, target: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic, ties counted half: ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``."""
    positive = target == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((average_ranks(prob)[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision_of(prob: np.ndarray, target: np.ndarray) -> float:
    """Average precision, ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds from the highest score
    down (tied scores enter together), as torchmetrics and scikit-learn define it."""
    order = np.argsort(-prob, kind="stable")
    p, y = prob[order], target[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    true_positives = np.cumsum(y)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall_step = np.diff(np.r_[0, true_positives]) / max(int(y.sum()), 1)
    return float(np.sum(recall_step * precision))


def bootstrap_intervals(
    prob: np.ndarray, target: np.ndarray, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile intervals of AUROC, AUPRC and Brier over ``resamples`` stratified bootstrap samples (the
    positives and the negatives each drawn with replacement, so every sample keeps the class counts),
    from a seeded generator: ``{"auroc_ci": [low, high], "auprc_ci": ..., "brier_ci": ...}``."""
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(target == 1), np.flatnonzero(target != 1)
    values = np.empty((resamples, 3))
    for i in range(resamples):
        rows = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        p, y = prob[rows], target[rows]
        values[i] = auroc_of(p, y), average_precision_of(p, y), brier_score(p, y)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return {key: [float(lo), float(hi)] for key, lo, hi in zip(INTERVAL_KEYS, low, high, strict=True)}


def multiclass_accuracy(prob: np.ndarray, target: np.ndarray) -> float:
    """The share of items whose most probable class ``(N, K)`` is their label ``(N,)``."""
    return float(np.mean(prob.argmax(1) == target))


def multiclass_brier(prob: np.ndarray, target: np.ndarray) -> float:
    """``mean_i sum_k (p_ik - [y_i = k])^2`` of class probabilities ``(N, K)``: 0 is perfect."""
    return float(np.mean(np.sum((prob - np.eye(prob.shape[1])[target]) ** 2, axis=1)))


def multiclass_log_loss(prob: np.ndarray, target: np.ndarray) -> float:
    """``-mean_i log p_{i, y_i}`` of class probabilities ``(N, K)``, each kept at least 1e-7."""
    return float(-np.mean(np.log(np.clip(prob[np.arange(len(target)), target], 1e-7, 1.0))))


def multiclass_metrics(prob: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``accuracy``, macro ``auroc``, ``brier`` (``mean_i sum_k (p_ik - [y_i = k])^2``), ``ece`` (top-label: the
    :func:`expected_calibration_error` of the largest probability against whether its class is right; Guo et
    al. 2017) and ``log_loss`` of class probabilities ``(N, K)`` (rows summing to 1)."""
    prob, target = prob.detach().float().cpu(), target.detach().cpu().long()
    classes = prob.shape[-1]
    p, y = prob.double().numpy(), target.numpy()
    return {
        "accuracy": float(cls_fn.multiclass_accuracy(prob, target, num_classes=classes, average="micro")),
        "auroc": float(cls_fn.multiclass_auroc(prob, target, num_classes=classes)),
        "brier": multiclass_brier(p, y),
        "ece": expected_calibration_error(p.max(1), (p.argmax(1) == y).astype(np.float64)),
        "log_loss": multiclass_log_loss(p, y),
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
