"""Split-conformal prediction intervals for any trained point forecaster (Vovk et al. 2005; Lei et al.
2018), from its residuals on the validation split, one interval width per horizon step and target.

For level ``l`` and ``n`` validation windows, the half-width at step ``h`` of target ``c`` is the
``ceil((n + 1) l)``-th smallest absolute validation residual ``|y - y_hat|`` at ``(h, c)``; the interval is
``y_hat +- q``. Where validation and test windows are exchangeable, it covers a share of at least ``l`` of
new targets at each step. The validation split chose the epoch too, which the guarantee does not
assume; P7 measures the coverage this gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsmoe.errors import ConfigError
from tsmoe.metrics import block_bootstrap_intervals, quantile_metrics, window_block
from tsmoe.tasks import get_task


def check_levels(levels: Sequence[float]) -> list[float]:
    """Levels as given, if each lies in (0, 1) and none repeats."""
    levels = [float(level) for level in levels]
    bad = [level for level in levels if not 0.0 < level < 1.0]
    if bad:
        raise ConfigError(f"--intervals takes levels between 0 and 1 (0.9 for 90 %), got {bad}")
    if len(set(levels)) != len(levels):
        raise ConfigError(f"--intervals {levels} repeats a level")
    return levels


def level_name(level: float) -> str:
    """``0.9`` -> ``"90"``, ``0.975`` -> ``"97.5"`` (the suffix of ``coverage_90``, ``y_lo_90``, ``y_q10``)."""
    return f"{level * 100:.10g}"


def conformal_quantiles(abs_residuals: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """``(L, H, C)`` half-widths from ``abs_residuals (n, H, C)``: the ``ceil((n + 1) l)``-th smallest at each
    step and target (infinite where ``n`` is too small for level ``l``)."""
    n = len(abs_residuals)
    ordered = np.sort(abs_residuals, axis=0)
    widths = []
    for level in levels:
        k = math.ceil((n + 1) * level)
        widths.append(ordered[k - 1] if k <= n else np.full(ordered.shape[1:], np.inf))
    return np.stack(widths)


def half_widths(estimator: Any, levels: Sequence[float], original: bool) -> np.ndarray:
    """The run's conformal half-widths ``(L, H, C)``, from its validation split's residuals on the original
    scale (``original``) or on the scale its metrics use."""
    task = get_task(estimator.meta_["task"])
    if task.name != "forecast":
        raise ConfigError(f"conformal intervals are for forecasters; this run's task is {task.name}")
    if "refit" in estimator.meta_:
        raise ConfigError(
            "this run was refit on its validation items (training.refit), so it has no held-out validation "
            "split to take conformal residuals from; train it without refit"
        )
    prepared = estimator.prepare_data()
    if len(prepared.val) == 0:
        raise ConfigError("this run's data has no validation split to take conformal residuals from")
    output, target = estimator.scored_outputs(prepared, prepared.val, original)
    residuals = (output.double() - target.double()).abs().numpy()
    return conformal_quantiles(residuals.reshape(len(residuals), residuals.shape[1], -1), levels)


def interval_metrics(
    estimator: Any, output: Any, target: Any, levels: Sequence[float]
) -> dict[str, float | list[float]]:
    """``coverage_<l>`` and ``width_<l>`` per level, with ``coverage_<l>_ci``, the 95 % interval of the
    coverage over this test sample (windows resampled in blocks of two horizons, as ``mse_ci``), and
    ``crps`` and ``wql`` from the quantiles the intervals give (the point forecast as the median, each
    interval's ends as its two tail quantiles), for scored ``output`` and ``target`` ``(N, H, C)`` on the
    scale the run's metrics use."""
    widths = half_widths(estimator, levels, estimator.original_scale())
    point, y = output.double().numpy(), target.double().numpy()
    point, y = point.reshape(len(point), point.shape[1], -1), y.reshape(len(y), y.shape[1], -1)
    metrics: dict[str, float] = {}
    quantiles, forecasts = [0.5], [point]
    for level, width in zip(levels, widths, strict=True):
        inside = np.abs(y - point) <= width
        metrics[f"coverage_{level_name(level)}"] = float(inside.mean())
        by_window = {f"coverage_{level_name(level)}": inside.reshape(len(inside), -1).mean(1)}
        metrics |= block_bootstrap_intervals(by_window, window_block(point.shape[1]))
        metrics[f"width_{level_name(level)}"] = float(np.broadcast_to(2 * width, point.shape).mean())
        quantiles += [(1 - level) / 2, (1 + level) / 2]
        forecasts += [point - width, point + width]
    return metrics | quantile_metrics(np.stack(forecasts), np.array(quantiles), y)


def with_interval_columns(frame: pd.DataFrame, estimator: Any, levels: Sequence[float]) -> pd.DataFrame:
    """A forecast table (``tsmoe predict``: a ``step`` column and one column per target) with
    ``<target>_lo_<l>`` and ``<target>_hi_<l>`` after the targets' columns, on the original scale."""
    widths = half_widths(estimator, levels, original=True)
    names = [estimator.meta_["channel_names"][c] for c in estimator.meta_["target_channels"]]
    steps = frame["step"].to_numpy() - 1
    out = frame.copy()
    for c, name in enumerate(names):
        for level, width in zip(levels, widths, strict=True):
            out[f"{name}_lo_{level_name(level)}"] = out[name] - width[steps, c]
            out[f"{name}_hi_{level_name(level)}"] = out[name] + width[steps, c]
    return out
