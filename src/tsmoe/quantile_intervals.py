"""Conformalized quantile regression (Romano, Patterson and Candès, NeurIPS 2019): the band of a quantile
forecaster's own quantiles, widened or narrowed until it covers its level on the validation split.

For level ``l`` a run trained with ``model.quantiles`` holding ``q_lo = (1 - l) / 2`` and ``q_hi = (1 + l) / 2``
gives each window a band ``[f_lo, f_hi]`` of its own shape (wide where the model is unsure), but pinball
training on a few hundred windows tends to make it too narrow (``docs/UNCERTAINTY.md``, P7). Each validation
window's score at step ``h`` and target ``c`` is

    E = max(f_lo - y, y - f_hi)        (negative inside the band)

and the correction ``Q`` at ``(h, c)`` is the ``ceil((n + 1) l)``-th smallest of the ``n`` validation scores;
the interval is ``[f_lo - Q, f_hi + Q]``. Where validation and test windows are exchangeable it covers at
least ``l`` of new targets, as split conformal on the median's residuals does (:mod:`tsmoe.intervals`),
while keeping each window's band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsmoe.errors import ConfigError
from tsmoe.intervals import check_held_out, conformal_quantiles, level_name, trained_in_memory

CONFORMAL_SCORES = ("residual", "quantile")


def check_conformal(conformal: str, levels: Sequence[float], calibration: str) -> None:
    """Refuse a score that is not one of :data:`CONFORMAL_SCORES`, ``quantile`` without levels, and
    ``quantile`` with rolling calibration (the run's validation quantiles are what it calibrates on)."""
    if conformal not in CONFORMAL_SCORES:
        raise ConfigError(f"conformal is one of {list(CONFORMAL_SCORES)}, got '{conformal}'")
    if conformal == "quantile" and not levels:
        raise ConfigError("--conformal quantile calibrates intervals: give --intervals too (intervals=[...] in Python)")
    if conformal == "quantile" and calibration != "validation":
        raise ConfigError(
            "--conformal quantile calibrates the run's quantiles on its validation split; rolling calibration "
            "takes the median's recent errors: use one or the other"
        )


def quantile_pairs(estimator: Any, levels: Sequence[float]) -> list[tuple[int, int]]:
    """For each level ``l``, the indices of the run's quantiles ``(1 - l) / 2`` and ``(1 + l) / 2``; refused
    for a run without quantiles, or without the two a level needs."""
    trained = [float(q) for q in getattr(estimator.model_, "levels", [])]
    if estimator.meta_["task"] != "forecast" or not trained:
        raise ConfigError(
            "--conformal quantile calibrates a quantile forecaster's band: train the run with model.quantiles "
            "(e.g. [0.1, 0.5, 0.9]), or use --conformal residual (the default) for a point forecast"
        )
    pairs = []
    for level in levels:
        ends = [round((1 - level) / 2, 10), round((1 + level) / 2, 10)]
        found = [next((i for i, q in enumerate(trained) if abs(q - end) < 1e-9), None) for end in ends]
        if None in found:
            raise ConfigError(
                f"a {level_name(level)} % interval from the run's quantiles needs the levels {ends[0]:g} and "
                f"{ends[1]:g}; this run was trained for {trained}"
            )
        pairs.append((found[0], found[1]))
    return pairs


def quantile_scores(forecasts: np.ndarray, target: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """The scores ``max(f_lo - y, y - f_hi)`` ``(L, N, H, C)`` of quantile forecasts ``(Q, N, H, C)`` against
    ``target (N, H, C)``, one per level's pair of quantiles."""
    return np.stack([np.maximum(forecasts[lo] - target, target - forecasts[hi]) for lo, hi in pairs])


def quantile_corrections(estimator: Any, levels: Sequence[float], original: bool | None = None) -> np.ndarray:
    """The corrections ``Q`` ``(L, H, C)`` from the run's validation split, on the original scale
    (``original``) or the scale its metrics use (``None``)."""
    pairs = quantile_pairs(estimator, levels)
    if trained_in_memory(estimator):
        raise ConfigError(
            "--conformal quantile reads the run's validation split again, and this run was trained on data in "
            "memory that it does not keep: train it on a file (data.root), or use --conformal residual"
        )
    prepared = estimator.prepare_data()
    check_held_out(estimator, prepared)
    forecasts, target = estimator.quantile_forecasts(prepared, prepared.val, original)
    scores = quantile_scores(forecasts, target, pairs)  # (L, n, H, C): each level's own scores
    return np.stack([conformal_quantiles(own, [level])[0] for level, own in zip(levels, scores, strict=True)])


def quantile_bands(
    forecasts: np.ndarray, pairs: Sequence[tuple[int, int]], corrections: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends ``(L, N, H, C)`` of the calibrated intervals, ``f_lo - Q`` and ``f_hi + Q``, from
    quantile forecasts ``(Q, N, H, C)`` and corrections ``(L, H, C)``."""
    lowers = np.stack([forecasts[lo] - q for (lo, _), q in zip(pairs, corrections, strict=True)])
    uppers = np.stack([forecasts[hi] + q for (_, hi), q in zip(pairs, corrections, strict=True)])
    return lowers, uppers


def with_quantile_interval_columns(frame: pd.DataFrame, estimator: Any, levels: Sequence[float]) -> pd.DataFrame:
    """A quantile forecaster's forecast table (``<target>_q10``, ... columns and a ``step`` column) with
    ``<target>_lo_<l>`` and ``<target>_hi_<l>``: its own quantiles moved out (or in) by the corrections
    from its validation split, on the original scale."""
    pairs = quantile_pairs(estimator, levels)
    corrections = quantile_corrections(estimator, levels, original=True)[:, frame["step"].to_numpy() - 1]
    trained = [float(q) for q in estimator.model_.levels]
    names = [estimator.meta_["channel_names"][c] for c in estimator.meta_["target_channels"]]
    out = frame.copy()
    for c, name in enumerate(names):
        for number, (level, (lo, hi)) in enumerate(zip(levels, pairs, strict=True)):
            lower, upper = (f"{name}_q{level_name(trained[i])}" for i in (lo, hi))
            out[f"{name}_lo_{level_name(level)}"] = out[lower] - corrections[number, :, c]
            out[f"{name}_hi_{level_name(level)}"] = out[upper] + corrections[number, :, c]
    return out
