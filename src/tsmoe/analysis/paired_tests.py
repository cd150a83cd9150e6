"""Tests of a difference between two models scored on the same items: DeLong's test for two correlated
AUROCs, a paired stratified bootstrap for any metric of probabilities, and the Diebold-Mariano test with a
batch-means variance for two forecasters' per-window losses. Plain functions of arrays; p-values are two-sided.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from tsmoe.metrics import auroc_of, average_ranks

Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def normal_p_value(z: float) -> float:
    """Two-sided p-value of a standard normal statistic: ``P(|Z| >= |z|) = erfc(|z| / sqrt 2)``."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def delong_components(prob: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components of one model's AUROC: ``V10 (m,)``, for each positive the share of
    negatives it outranks (ties half), and ``V01 (n,)``, for each negative the share of positives that
    outrank it; ``mean(V10) = mean(V01) = AUROC``. From mid-ranks (Sun and Xu 2014): ``V10_i = (R_i -
    R^pos_i) / n`` with ``R`` the rank among all items and ``R^pos`` among the positives."""
    positive = target == 1
    m, n = int(positive.sum()), int((~positive).sum())
    ranks = average_ranks(prob)
    v10 = (ranks[positive] - average_ranks(prob[positive])) / n
    v01 = 1.0 - (ranks[~positive] - average_ranks(prob[~positive])) / m
    return v10, v01


def delong_test(prob_a: np.ndarray, prob_b: np.ndarray, target: np.ndarray) -> dict[str, float | list[float]]:
    """DeLong, DeLong and Clarke-Pearson (1988): ``AUROC_a - AUROC_b`` on the same items, its variance
    ``S10 / m + S01 / n`` from the components' covariances (the two models' scores are correlated, which
    this uses), the 95 % interval and the p-value of ``z = difference / sd``."""
    a10, a01 = delong_components(prob_a, target)
    b10, b01 = delong_components(prob_b, target)
    s10, s01 = np.cov(np.stack([a10, b10])), np.cov(np.stack([a01, b01]))
    contrast = np.array([1.0, -1.0])
    variance = float(contrast @ s10 @ contrast / len(a10) + contrast @ s01 @ contrast / len(a01))
    difference = auroc_of(prob_a, target) - auroc_of(prob_b, target)
    sd = math.sqrt(max(variance, 0.0))
    p = normal_p_value(difference / sd) if sd > 0 else (1.0 if difference == 0 else 0.0)
    return {"difference": difference, "interval": [difference - Z_95 * sd, difference + Z_95 * sd], "p_value": p}


def paired_bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], float],
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    target: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    by_class: bool = False,
) -> dict[str, float | list[float]]:
    """``metric(a) - metric(b)`` over ``resamples`` stratified bootstrap samples of the items, the same
    sample for both models (so what they share cancels): the percentile 95 % interval, and the p-value as
    twice the share of samples on the far side of zero, counted as ``(k + 1) / (R + 1)`` (Davison and Hinkley
    1997): ``R`` samples cannot show a p-value below ``2 / (R + 1)``, and none is reported as 0. Strata: the
    positives and the rest, or with ``by_class`` each class of ``target`` (several classes)."""
    rng = np.random.default_rng(seed)
    if by_class:
        strata = [np.flatnonzero(target == k) for k in np.unique(target)]
    else:
        strata = [np.flatnonzero(target == 1), np.flatnonzero(target != 1)]
    diffs = np.empty(resamples)
    for i in range(resamples):
        rows = np.concatenate([rng.choice(stratum, len(stratum)) for stratum in strata])
        diffs[i] = metric(prob_a[rows], target[rows]) - metric(prob_b[rows], target[rows])
    far_side = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    p = min(1.0, 2 * (far_side + 1) / (resamples + 1))
    interval = [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]
    return {"difference": metric(prob_a, target) - metric(prob_b, target), "interval": interval, "p_value": p}


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, batch: int) -> dict[str, float | list[float] | None]:
    """Diebold and Mariano's (1995) test of equal accuracy on the per-window loss differential ``d = L_a - L_b``
    (windows in time order), its long-run variance estimated by batch means: the latest ``M = floor(T / b)``
    batches of ``b = batch`` consecutive windows, ``DM = mean(d) / (sd(batch means) / sqrt(M))`` against
    Student's t with ``M - 1`` degrees of freedom; the difference is ``mean(d)`` over all ``T`` windows, its
    interval ``mean(d) +- t_{0.975, M-1} se``.

    Forecasts from windows less than a horizon apart share targets, so their losses are correlated; means
    over batches of two horizons are nearly independent. A Newey-West variance (Bartlett weights up to lag
    ``h - 1``), which tsmoe used before, underestimates that variance: at the benchmarks' test-split sizes
    it rejected a true null 10 % to 21 % of the time at the 5 % level, batch means 2 % to 7 %
    (``benchmarks/paired_test_size.py``, ``results/paired-test-size.json``). ``batch = 1`` is the ordinary
    paired t-test of independent items.
    With fewer than two batches there is no test: interval, p-value and statistic are ``None``."""
    d = np.asarray(loss_a, dtype=np.float64) - np.asarray(loss_b, dtype=np.float64)
    mean, b = float(d.mean()), max(int(batch), 1)
    m = len(d) // b
    if m < 2:
        return {"difference": mean, "interval": None, "p_value": None, "statistic": None, "batches": m}
    means = d[len(d) - m * b :].reshape(m, b).mean(1)
    se = float(means.std(ddof=1)) / math.sqrt(m)
    if se == 0:
        return {"difference": mean, "interval": [mean, mean], "p_value": 1.0 if mean == 0 else 0.0,
                "statistic": 0.0, "batches": m}  # fmt: skip
    statistic = mean / se
    half = float(stats.t.ppf(0.975, m - 1)) * se
    return {"difference": mean, "interval": [mean - half, mean + half],
            "p_value": float(2 * stats.t.sf(abs(statistic), m - 1)), "statistic": statistic, "batches": m}  # fmt: skip
