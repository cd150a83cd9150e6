"""Forecast windows over a :class:`SeriesSet`, chronological splits, and scalers fit on training rows.

A window is ``x = values[t - lookback : t]`` (the input) and ``y = values[t : t + horizon]`` (the target),
for every ``t`` whose window lies inside a split range of one series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from tsmoe.data.sampling import elapsed_before
from tsmoe.data.series import SeriesSet
from tsmoe.errors import DataError


@dataclass(frozen=True)
class StandardScaler:
    """Per-column z-score ``(x - mean) / std``; statistics from training rows only. Shapes ``(C,)``."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, blocks: list[np.ndarray]) -> StandardScaler:
        rows = np.concatenate(blocks, axis=0).astype(np.float64)
        mean = np.nanmean(rows, axis=0)
        std = np.nanstd(rows, axis=0)
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return cls(np.nan_to_num(mean).astype(np.float32), std.astype(np.float32))

    @classmethod
    def identity(cls, n_columns: int) -> StandardScaler:
        return cls(np.zeros(n_columns, np.float32), np.ones(n_columns, np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: torch.Tensor, columns: list[int] | None = None) -> torch.Tensor:
        """Undo the scaling of ``x (..., C')``, whose last axis holds ``columns`` (default: all)."""
        mean = torch.as_tensor(self.mean if columns is None else self.mean[columns], device=x.device)
        std = torch.as_tensor(self.std if columns is None else self.std[columns], device=x.device)
        return x * std + mean

    def state(self) -> dict[str, np.ndarray]:
        return {"scaler_mean": self.mean, "scaler_std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> StandardScaler:
        return cls(np.asarray(state["scaler_mean"], np.float32), np.asarray(state["scaler_std"], np.float32))


class WindowDataset(Dataset):
    """All forecast windows of given row ranges of each series.

    Items: ``x (lookback, C)``, ``y (horizon, C)`` (scaled), ``series`` (index of the series) and ``dt
    (lookback,)``, the time from each input row's previous row to it (:func:`elapsed_before`: hours for
    datetime stamps), which the continuous-time models integrate. ``ranges[i] = (start, end)`` restricts
    series ``i`` to rows ``start:end``.
    """

    def __init__(
        self,
        data: SeriesSet,
        ranges: list[tuple[int, int]],
        lookback: int,
        horizon: int,
        scaler: StandardScaler,
        stride: int = 1,
    ) -> None:
        if lookback < 1 or horizon < 1:
            raise DataError(f"lookback and horizon must be >= 1, got {lookback} and {horizon}")
        self.lookback, self.horizon = lookback, horizon
        self.range_starts = np.array([start for start, _ in ranges], dtype=np.int64)
        self.names = [series.name for series in data.series]
        self.timestamps = [series.timestamps for series in data.series]  # the series' own, not copies
        self.blocks: list[np.ndarray] = []
        self.elapsed: list[np.ndarray] = []
        index: list[tuple[int, int]] = []
        for i, (series, (start, end)) in enumerate(zip(data.series, ranges, strict=True)):
            block = scaler.transform(series.values[start:end])
            self.blocks.append(block)
            self.elapsed.append(elapsed_before(series)[start:end])
            n_windows = len(block) - lookback - horizon + 1
            index += [(i, t) for t in range(0, max(n_windows, 0), stride)]
        self.index = np.array(index, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def item_series(self) -> np.ndarray:
        """``(N,)``: the series of each window (items run series by series, in time order within each)."""
        return self.index[:, 0]

    def target_starts(self) -> np.ndarray:
        """``(N,)``: the row of its series where each window's target begins (its forecast's origin)."""
        return self.range_starts[self.index[:, 0]] + self.index[:, 1] + self.lookback

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        series, start = self.index[item]
        block = self.blocks[series]
        middle = start + self.lookback
        return {
            "x": torch.from_numpy(block[start:middle]),
            "y": torch.from_numpy(block[middle : middle + self.horizon]),
            "series": torch.tensor(series),
            "dt": torch.from_numpy(self.elapsed[series][start:middle]),
        }


def check_window_fits(data: SeriesSet, lookback: int, horizon: int) -> None:
    """Raise a :class:`DataError` for the first series shorter than one window."""
    for series in data.series:
        if len(series.values) < lookback + horizon:
            raise DataError(
                f"{data.source}, series '{series.name}': lookback + horizon = {lookback + horizon} is longer "
                f"than the series ({len(series.values)} rows); shorten the lookback or the horizon"
            )
