"""Split-conformal prediction intervals for any trained point forecaster (Vovk et al. 2005; Lei et al.
2018), from its residuals on the validation split, one interval width per horizon step and target.

For level ``l`` and ``n`` validation windows, the half-width at step ``h`` of target ``c`` is the
``ceil((n + 1) l)``-th smallest absolute validation residual ``|y - y_hat|`` at ``(h, c)``; the interval is
``y_hat +- q``. Where validation and test windows are exchangeable, it covers a share of at least ``l`` of
new targets at each step. The validation split chose the epoch too, which the guarantee does not
assume; P7 measures the coverage this gives.

A series whose later months are calmer or wilder than its validation months is not exchangeable with
them. **Rolling** calibration (``calibration="rolling"``; Darts' conformal models with a ``cal_length``)
takes each evaluated window's half-widths from the ``n`` latest windows whose whole target was known when
its forecast was made (origins at least a horizon earlier): the validation windows, then the evaluated
windows themselves as their targets arrive. This is what a deployed forecaster can do, and it follows the
series' level of difficulty; it uses no target before it would be known.
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

CALIBRATIONS = ("validation", "rolling")


def check_levels(levels: Sequence[float]) -> list[float]:
    """Levels as given, if each lies in (0, 1) and none repeats."""
    levels = [float(level) for level in levels]
    bad = [level for level in levels if not 0.0 < level < 1.0]
    if bad:
        raise ConfigError(f"--intervals takes levels between 0 and 1 (0.9 for 90 %), got {bad}")
    if len(set(levels)) != len(levels):
        raise ConfigError(f"--intervals {levels} repeats a level")
    return levels


def check_calibration(levels: Sequence[float], calibration: str, windows: int | None) -> None:
    """Refuse a calibration that is not one of :data:`CALIBRATIONS`, one or a number of windows without
    interval levels, a number of windows for any calibration but rolling, and fewer than one window."""
    if calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration is one of {list(CALIBRATIONS)}, got '{calibration}'")
    if not levels and (calibration != "validation" or windows is not None):
        raise ConfigError(
            "--calibration and --calibration-windows are for conformal intervals: give --intervals too "
            "(intervals=[...] in Python)"
        )
    if windows is not None and calibration != "rolling":
        raise ConfigError("a number of calibration windows (--calibration-windows) is for rolling calibration")
    if windows is not None and windows < 1:
        raise ConfigError(f"rolling calibration needs at least one window, got {windows}")


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


def _held_out_residuals(estimator: Any, prepared: Any, original: bool) -> np.ndarray:
    """The absolute residuals ``(n, H, C)`` of ``prepared``'s validation part, refused for a run without one."""
    check_held_out(estimator, prepared)
    return _abs_residuals(estimator, prepared, prepared.val, original)


def check_held_out(estimator: Any, prepared: Any, without_validation: str | None = None) -> None:
    """Refuse a run that is not a forecaster or has no held-out validation residuals in ``prepared`` (saying
    ``without_validation`` where ``prepared`` has no validation part)."""
    task = get_task(estimator.meta_["task"])
    if task.name != "forecast":
        raise ConfigError(f"conformal intervals are for forecasters; this run's task is {task.name}")
    if "refit" in estimator.meta_:
        raise ConfigError(
            "this run was refit on its validation items (training.refit), so it has no held-out validation "
            "split to take conformal residuals from; train it without refit"
        )
    if len(prepared.val) == 0:
        default = "this run's data has no validation split to take conformal residuals from"
        raise ConfigError(without_validation or default)


def _abs_residuals(estimator: Any, prepared: Any, dataset: Any, original: bool) -> np.ndarray:
    output, target = estimator.scored_outputs(prepared, dataset, original)
    residuals = (output.double() - target.double()).abs().numpy()
    return residuals.reshape(len(residuals), residuals.shape[1], -1)


def validation_residuals(estimator: Any, prepared: Any) -> np.ndarray:
    """The absolute residuals ``(n, H, C)`` of ``prepared``'s validation part on the original scale: what a run
    trained on data in memory keeps (``conformal.safetensors``), as it cannot read that split again."""
    return _held_out_residuals(estimator, prepared, original=True)


def trained_in_memory(estimator: Any) -> bool:
    """Whether the run was trained on a frame in memory (data set ``csv`` with no file), so its validation
    split cannot be read again."""
    return estimator.config.data["name"] == "csv" and not estimator.config.data.get("root")


def half_widths(estimator: Any, levels: Sequence[float], original: bool) -> np.ndarray:
    """The run's conformal half-widths ``(L, H, C)``, from its validation split's residuals on the original
    scale (``original``) or on the scale its metrics use: those it kept (a run trained on a frame), else
    from its data set read again."""
    kept = getattr(estimator, "conformal_residuals_", None)
    if kept is not None and original:
        return conformal_quantiles(kept, levels)
    if trained_in_memory(estimator):
        raise ConfigError(
            "conformal intervals take their widths from the run's validation residuals, and this run was trained "
            "on data in memory that it does not keep (nor, trained before tsmoe kept them, its residuals): train "
            "it again, or use --calibration rolling (calibration='rolling'), widths from the input's own errors"
        )
    residuals = _held_out_residuals(estimator, estimator.prepare_data(), original)
    return conformal_quantiles(residuals, levels)


def rolling_quantiles(
    residuals: np.ndarray, origins: np.ndarray, first: int, horizon: int, windows: int, levels: Sequence[float]
) -> np.ndarray:
    """``(L, M - first, H, C)``: for each window ``g >= first`` of one series' absolute residuals ``(M, H, C)``
    with forecast origins ``(M,)`` (increasing), the ``ceil((n + 1) l)``-th smallest over the ``n = windows``
    latest windows whose whole target was known at ``g``'s origin (origin at most ``origin_g - horizon``).
    Needs that many before the first: its pool is full."""
    known = np.searchsorted(origins, origins[first:] - horizon, side="right")  # windows usable by each g
    if known.min() < windows:
        raise ConfigError(
            f"rolling calibration over {windows} windows needs that many validation windows whose targets end "
            f"before the first forecast; this series has {known.min()}"
        )
    flat = pd.DataFrame(residuals.reshape(len(residuals), -1))
    out = []
    for level in levels:
        k = math.ceil((windows + 1) * level)
        if k > windows:
            out.append(np.full((len(known), *residuals.shape[1:]), np.inf))
            continue
        # pandas' rolling quantile takes the floor(q (n - 1))-th smallest (from 0) with interpolation "lower":
        # q a quarter above (k - 1) / (n - 1) gives exactly the k-th, whatever the rounding of q (the largest: 1)
        q = min((k - 1 + 0.25) / (windows - 1), 1.0) if windows > 1 else 0.0
        rolled = flat.rolling(windows).quantile(q, interpolation="lower").to_numpy()  # row j: windows j-n+1..j
        out.append(rolled[known - 1].reshape(-1, *residuals.shape[1:]))
    return np.stack(out)


ROLLING_WITHOUT_VALIDATION = (
    "rolling calibration starts from the validation windows before the scored ones, and with every item scored "
    "(split all, the default when data.root is set) there are none: score the run's test part (--split default)"
)


def conformal_widths(
    estimator: Any,
    prepared: Any,
    dataset: Any,
    levels: Sequence[float],
    calibration: str = "validation",
    windows: int | None = None,
) -> tuple[np.ndarray, int]:
    """Half-widths ``(L, N, H, C)`` (``N`` is 1 for ``validation``: the same for every window) for the windows
    of ``dataset``, a part of ``prepared``, on the scale the run's metrics use, and the number of windows each
    comes from. ``validation`` takes them from the run's own validation split; ``rolling`` each window's from
    the ``windows`` latest windows whose targets were known at its origin, ``prepared``'s validation part then
    ``dataset`` itself, which must follow it (default: as many as the validation part holds before the first
    window; :func:`rolling_widths`)."""
    check_calibration(levels, calibration, windows)
    if calibration == "validation":  # the run's own validation split, whatever data is scored
        val_residuals = _held_out_residuals(estimator, estimator.prepare_data(), estimator.original_scale())
        return conformal_quantiles(val_residuals, levels)[:, None], len(val_residuals)
    check_held_out(estimator, prepared, ROLLING_WITHOUT_VALIDATION)  # split all: nothing before the scored
    windows = rolling_windows(prepared.val, dataset, prepared.dims["horizon"], windows)
    scale = estimator.original_scale()
    val_residuals = _abs_residuals(estimator, prepared, prepared.val, scale)
    residuals = _abs_residuals(estimator, prepared, dataset, scale)
    return rolling_widths(prepared.val, dataset, val_residuals, residuals, levels, windows), windows


def rolling_windows(val: Any, dataset: Any, horizon: int, windows: int | None) -> int:
    """How many windows rolling calibration of ``dataset`` after ``val`` (windows of one prepared split) pools:
    ``windows``, or as many as every series' validation part holds before its first scored window; refused,
    before any window is scored, where the windows do not know their places or do not follow ``val``."""
    if not hasattr(dataset, "target_starts"):
        raise ConfigError(
            "rolling calibration needs windows that know where they start in their series (a table of series); "
            "these are fixed windows without positions: use --calibration validation"
        )
    series, val_series = dataset.item_series(), val.item_series()
    starts, val_starts = dataset.target_starts(), val.target_starts()
    for s in np.unique(series):
        before, after = val_starts[val_series == s], starts[series == s]
        if len(after) and (np.any(np.diff(after) <= 0) or (len(before) and after[0] <= before[-1])):
            raise ConfigError(
                f"rolling calibration needs the scored windows of series {s} to come after its validation windows, "
                "in time order (the test part of the run's own chronological split)"
            )
    if windows is not None:
        return windows
    firsts = {s: starts[series == s][0] for s in np.unique(series)}
    return max(1, min(int(np.sum(val_starts[val_series == s] <= o - horizon)) for s, o in firsts.items()))


def rolling_widths(
    val: Any,
    dataset: Any,
    val_residuals: np.ndarray,
    residuals: np.ndarray,
    levels: Sequence[float],
    windows: int,
) -> np.ndarray:
    """Half-widths ``(L, N, H, C)`` for the ``N`` windows of ``dataset`` from the absolute residuals ``(n, H, C)``
    of ``val`` and ``(N, H, C)`` of ``dataset`` (one model's, or an ensemble's mean forecast's): each window's
    from the ``windows`` latest of its series whose targets were known at its origin (:func:`rolling_quantiles`)."""
    series, val_series = dataset.item_series(), val.item_series()
    starts, val_starts = dataset.target_starts(), val.target_starts()
    horizon = residuals.shape[1]
    widths = np.empty((len(levels), *residuals.shape))
    for s in np.unique(series):
        here, before = series == s, val_series == s
        sequence = np.concatenate([val_residuals[before], residuals[here]])
        origins = np.concatenate([val_starts[before], starts[here]])
        widths[:, here] = rolling_quantiles(sequence, origins, int(before.sum()), horizon, windows, levels)
    return widths


def interval_metrics(
    output: Any, target: Any, levels: Sequence[float], widths: np.ndarray
) -> dict[str, float | list[float]]:
    """``coverage_<l>`` and ``width_<l>`` per level, with ``coverage_<l>_ci``, the 95 % interval of the
    coverage over this test sample (windows resampled in blocks of two horizons, as ``mse_ci``), and
    ``crps`` and ``wql`` from the quantiles the intervals give (the point forecast as the median, each
    interval's ends as its two tail quantiles), for scored ``output`` and ``target`` ``(N, H, C)`` and
    half-widths ``(L, N or 1, H, C)`` (:func:`conformal_widths`), all on the scale the run's metrics use."""
    point, y = _as_windows(output), _as_windows(target)
    bands = [(np.abs(y - point) <= width, float(np.broadcast_to(2 * width, point.shape).mean()), point - width,
              point + width) for width in widths]  # fmt: skip
    return _band_scores(point, y, levels, bands)


def band_metrics(
    output: Any, target: Any, levels: Sequence[float], lowers: np.ndarray, uppers: np.ndarray
) -> dict[str, float | list[float]]:
    """The metrics of :func:`interval_metrics` for intervals given by their ends ``(L, N, H, C)`` (each level's
    own, not centred on the point forecast: :mod:`tsmoe.quantile_intervals`), the point forecast as the median."""
    point, y = _as_windows(output), _as_windows(target)
    bands = [((y >= lower) & (y <= upper), float((upper - lower).mean()), lower, upper)
             for lower, upper in zip(lowers, uppers, strict=True)]  # fmt: skip
    return _band_scores(point, y, levels, bands)


def _as_windows(values: Any) -> np.ndarray:
    """Scored forecasts or targets as float64 ``(N, H, C)``."""
    array = values.double().numpy()
    return array.reshape(len(array), array.shape[1], -1)


def _band_scores(point: np.ndarray, y: np.ndarray, levels: Sequence[float], bands: list[tuple]) -> dict:
    """Per level, from its ``(inside, mean width, lower, upper)``: ``coverage_<l>`` with its 95 % interval over
    windows (blocks of two horizons) and ``width_<l>``; then ``crps`` and ``wql`` over the median and every
    band's ends as tail quantiles."""
    metrics: dict[str, float | list[float]] = {}
    quantiles, forecasts = [0.5], [point]
    for level, (inside, width, lower, upper) in zip(levels, bands, strict=True):
        name = f"coverage_{level_name(level)}"
        by_window = {name: inside.reshape(len(inside), -1).mean(1)}
        metrics |= {name: float(inside.mean()), **block_bootstrap_intervals(by_window, window_block(y.shape[1])),
                    f"width_{level_name(level)}": width}  # fmt: skip
        quantiles += [(1 - level) / 2, (1 + level) / 2]
        forecasts += [lower, upper]
    return metrics | quantile_metrics(np.stack(forecasts), np.array(quantiles), y)


def with_interval_columns(
    frame: pd.DataFrame,
    estimator: Any,
    levels: Sequence[float],
    by_series: tuple[str, dict[Any, np.ndarray]] | None = None,
    widths: np.ndarray | None = None,
) -> pd.DataFrame:
    """A forecast table (``tsmoe predict``: a ``step`` column and one column per target) with
    ``<target>_lo_<l>`` and ``<target>_hi_<l>`` after the targets' columns, on the original scale: the
    validation split's half-widths (the run's, or ``widths (L, H, C)`` given, an ensemble's), or ``by_series =
    (id column, {series: (L, H, C) half-widths})``, each series' own (:func:`recent_half_widths`)."""
    names = [estimator.meta_["channel_names"][c] for c in estimator.meta_["target_channels"]]
    steps = frame["step"].to_numpy() - 1
    if by_series is None:
        if widths is None:
            widths = half_widths(estimator, levels, original=True)
        rows = widths[:, steps]  # (L, rows, C)
    else:
        id_col, widths = by_series
        rows = np.stack([widths[key][:, step] for key, step in zip(frame[id_col], steps, strict=True)], axis=1)
    out = frame.copy()
    for c, name in enumerate(names):
        for number, level in enumerate(levels):
            out[f"{name}_lo_{level_name(level)}"] = out[name] - rows[number, :, c]
            out[f"{name}_hi_{level_name(level)}"] = out[name] + rows[number, :, c]
    return out


def recent_half_widths(residuals: dict[Any, np.ndarray], levels: Sequence[float], where: str) -> dict[Any, np.ndarray]:
    """Per series, the conformal half-widths ``(L, H, C)`` from its own recent absolute errors ``(n, H, C)``
    (:func:`tsmoe.forecast.recent_residuals`); refused where ``n`` windows are too few for a level."""
    for name, errors in residuals.items():
        for level in levels:
            if math.ceil((len(errors) + 1) * level) > len(errors):
                fewest = next(n for n in range(1, 10**6) if math.ceil((n + 1) * level) <= n)
                raise ConfigError(
                    f"{where}, series '{name}': {len(errors)} calibration windows are too few for a "
                    f"{level_name(level)} % interval (it needs at least {fewest})"
                )
    return {name: conformal_quantiles(errors, levels) for name, errors in residuals.items()}
