"""A forecaster's windows of a scored part as one table: what it forecast from each origin, beside what came.

This is what ``tsmoe evaluate RUN --forecasts FILE`` writes, and what neuralforecast's ``cross_validation``
and Darts' ``historical_forecasts`` give: a row per window and step, ``<id>, cutoff, <time>, step`` (the
series, the time of the window's last input row, the time forecast and how many steps ahead), then per
target ``<target>`` (the forecast, as ``tsmoe predict`` names it), ``<target>_actual``, a quantile run's
``<target>_q10, ...`` and the intervals evaluated, ``<target>_lo_80, <target>_hi_80``, all on the data's
original scale. Windows that are not of dated series (MoME's fixed windows) are numbered, ``window``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsmoe.data.windows import WindowDataset
from tsmoe.errors import ConfigError, DataError
from tsmoe.forecast import key_columns
from tsmoe.intervals import check_calibration, check_levels, conformal_widths, half_widths, level_name
from tsmoe.quantile_intervals import check_conformal, quantile_bands, quantile_corrections, quantile_pairs


def backtest(
    estimator: Any,
    data: Any = None,
    part: str = "test",
    intervals: Sequence[float] | None = None,
    calibration: str = "validation",
    calibration_windows: int | None = None,
    conformal: str = "residual",
    split: str = "default",
    data_overrides: dict | None = None,
) -> pd.DataFrame:
    """The table ``tsmoe evaluate RUN --forecasts FILE`` writes (module docstring), for the ``part`` of the
    loaded forecaster's split of its data set, or of ``data`` (a frame, as the run was trained on one), or
    with ``split="all"`` of every window of other data (``data_overrides``), with intervals as ``evaluate``
    makes them."""
    if estimator.meta_["task"] != "forecast":
        raise ConfigError(f"a backtest is a forecaster's; this run's task is {estimator.meta_['task']}")
    levels = check_levels(intervals) if intervals else []
    check_calibration(levels, calibration, calibration_windows)
    check_conformal(conformal, levels, calibration)
    if part not in ("test", "validation"):
        raise ConfigError(f"part is 'test' or 'validation', got {part!r}")
    if split == "all" and part == "validation":
        raise ConfigError("with split 'all' every window is scored as test; there is no validation part")
    estimator.check_part_unseen(part)
    prepared = estimator.prepare_data(data, split, data_overrides)
    return backtest_part(estimator, prepared, prepared.test if part == "test" else prepared.val, levels, calibration,
                         calibration_windows, conformal)  # fmt: skip


def backtest_part(
    estimator: Any,
    prepared: Any,
    dataset: Any,
    levels: Sequence[float] = (),
    calibration: str = "validation",
    calibration_windows: int | None = None,
    conformal: str = "residual",
) -> pd.DataFrame:
    """The table of the windows of ``dataset`` (a part of ``prepared``, the settings checked) as forecast by the
    loaded ``estimator``, on the original scale; with ``levels``, their intervals, made as ``evaluate`` makes
    them, on it too."""
    if len(dataset) == 0:
        raise DataError("the part holds no window to backtest")
    lowers: Sequence[np.ndarray] = ()  # the intervals' ends (L, N, H, C), on the original scale
    uppers: Sequence[np.ndarray] = ()
    if levels and conformal == "quantile":  # the run's band moved by its validation corrections
        pairs, corrections = quantile_pairs(estimator, levels), quantile_corrections(estimator, levels)
        ends = quantile_bands(estimator.quantile_forecasts(prepared, dataset)[0], pairs, corrections)
        lowers, uppers = _original(estimator, prepared, *ends)
    elif levels and calibration == "validation":  # the run's own residuals, kept on the original scale by a frame's
        widths = half_widths(estimator, levels, original=True)[:, None]  # (L, 1, H, C)
        lowers, uppers = _about(estimator.scored_outputs(prepared, dataset, original=True)[0], widths)
    elif levels:  # rolling: each window's widths from the latest errors known at its origin, on the metrics' scale
        widths, _ = conformal_widths(estimator, prepared, dataset, levels, calibration, calibration_windows)
        lowers, uppers = _original(estimator, prepared, *_about(estimator.scored_outputs(prepared, dataset)[0], widths))
    forecast, actual = (values.double().numpy() for values in estimator.scored_outputs(prepared, dataset, True))
    windows, horizon = len(forecast), forecast.shape[1]
    forecast, actual = forecast.reshape(windows, horizon, -1), actual.reshape(windows, horizon, -1)
    names = [estimator.meta_["channel_names"][c] for c in prepared.target_channels] or ["value"]
    table = _keys(estimator, getattr(dataset, "windows", dataset), windows, horizon)
    for j, name in enumerate(names):
        table[name] = forecast[..., j].reshape(-1)
        table[f"{name}_actual"] = actual[..., j].reshape(-1)
    model_levels = getattr(estimator.model_, "levels", [])
    if model_levels:
        quantiles = estimator.quantile_forecasts(prepared, dataset, original=True)[0]  # (Q, N, H, C)
        for q, level in enumerate(model_levels):
            for j, name in enumerate(names):
                table[f"{name}_q{level_name(level)}"] = quantiles[q][..., j].reshape(-1)
    for level, lower, upper in zip(levels, lowers, uppers, strict=True):
        for j, name in enumerate(names):
            table[f"{name}_lo_{level_name(level)}"] = lower[..., j].reshape(-1)
            table[f"{name}_hi_{level_name(level)}"] = upper[..., j].reshape(-1)
    return table


def key_names(estimator: Any, dataset: Any) -> list[str]:
    """The table's first columns for windows of ``dataset``: ``<id>, cutoff, <time>, step`` (windows of
    series), or ``window, step``."""
    if not isinstance(getattr(dataset, "windows", dataset), WindowDataset):
        return ["window", "step"]
    id_col, time_col = key_columns(estimator)
    return [id_col, "cutoff", time_col, "step"]


def _keys(estimator: Any, windows: Any, count: int, horizon: int) -> pd.DataFrame:
    """The :func:`key_names` columns of each window's steps."""
    steps = np.tile(np.arange(1, horizon + 1), count)
    if not isinstance(windows, WindowDataset):
        return pd.DataFrame({"window": np.repeat(np.arange(count), horizon), "step": steps})
    id_col, _, time_col, _ = key_names(estimator, windows)
    series, origins = windows.item_series(), windows.target_starts()  # origin: the row of the first target
    cutoffs = [windows.timestamps[s][o - 1] for s, o in zip(series, origins, strict=True)]
    times = np.concatenate([windows.timestamps[s][o : o + horizon] for s, o in zip(series, origins, strict=True)])
    return pd.DataFrame({
        id_col: np.repeat(np.array(windows.names, dtype=object)[series], horizon),
        "cutoff": np.repeat(np.array(cutoffs), horizon),
        time_col: times,
        "step": steps,
    })  # fmt: skip


def _about(output: torch.Tensor, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ends ``(L, N, H, C)`` of intervals of half-widths ``(L, N or 1, H, C)`` about scored forecasts."""
    point = output.double().numpy()
    point = point.reshape(len(point), point.shape[1], -1)  # (N, H, C)
    return point - widths, point + widths


def _original(estimator: Any, prepared: Any, lowers: np.ndarray, uppers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval ends ``(L, N, H, C)`` on the scale the run's metrics use, on the original scale."""
    if estimator.original_scale() or prepared.scaler is None:
        return lowers, uppers
    channels = prepared.target_channels

    def undo(ends: np.ndarray) -> np.ndarray:
        return prepared.scaler.inverse(torch.from_numpy(ends), channels).numpy()

    return undo(lowers), undo(uppers)
