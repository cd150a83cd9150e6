"""Temperature scaling (Guo et al. 2017): one number ``T > 0`` that divides a classifier's logits,
``p = softmax(z / T)`` (binary: ``sigmoid(z / T)``), fitted on the validation split by minimising the
negative log-likelihood. It changes no ranking (AUROC, accuracy) and moves the probabilities towards
what is observed: ``T > 1`` softens an over-confident model, ``T < 1`` sharpens a timid one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tsmoe.errors import ConfigError
from tsmoe.tasks import BinaryTask, get_task

LOG_T_RANGE = (math.log(0.05), math.log(20.0))  # the search interval of log T
METHODS = ("temperature", "venn_abers")


def check_calibration_method(method: str, task_name: str, where: str) -> None:
    """Refuse a calibration ``method`` that the task cannot take, naming the setting (``where``): a
    temperature is for classifiers, a Venn-Abers map for binary risks (whole records or every step)."""
    if method not in METHODS:
        raise ConfigError(f"{where}: '{method}' is not a calibration method ({', '.join(METHODS)})")
    task = get_task(task_name)
    if method == "venn_abers" and not isinstance(getattr(task, "base", task), BinaryTask):  # per step: its base
        raise ConfigError(f"{where}: Venn-Abers calibration is for binary risks, not task '{task_name}'")
    if not task.is_classifier:
        raise ConfigError(f"{where}: temperature scaling is for classifiers, not task '{task_name}'")


def negative_log_likelihood(logits: torch.Tensor, target: torch.Tensor, temperature: float) -> float:
    """Mean NLL of ``logits`` ``(N,)`` (binary) or ``(N, K)`` (multiclass) at ``temperature``."""
    scaled = logits.double() / temperature
    if scaled.dim() == 1:
        return float(F.binary_cross_entropy_with_logits(scaled, target.double()))
    return float(F.cross_entropy(scaled, target.long()))


def fit_temperature(logits: torch.Tensor, target: torch.Tensor, steps: int = 60) -> float:
    """The ``T`` minimising :func:`negative_log_likelihood` over ``log T`` in :data:`LOG_T_RANGE`, by golden-
    section search (the NLL is convex in ``1 / T``, so unimodal in ``log T``; no learning rate to choose,
    the same answer every time)."""
    ratio = (math.sqrt(5) - 1) / 2
    low, high = LOG_T_RANGE
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = (negative_log_likelihood(logits, target, math.exp(x)) for x in (a, b))
    for _ in range(steps):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = negative_log_likelihood(logits, target, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = negative_log_likelihood(logits, target, math.exp(b))
    return math.exp((low + high) / 2)
