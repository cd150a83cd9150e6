"""Regularly sampled series: the container every forecasting loader returns.

Guarantees of :class:`SeriesSet`, enforced at construction:
- every series has a unique name, at least one row, and the same columns;
- timestamps strictly increase within each series (no duplicates, sorted);
- values are finite float32 wherever the column is a target (covariates may hold NaN only if allowed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsmoe.errors import DataError


@dataclass(frozen=True)
class Series:
    """One series: ``timestamps (T,)`` (datetime64 or int64) and ``values (T, C)`` float32."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class SeriesSet:
    """Several series sharing ``columns``; ``targets`` names the columns to forecast and score."""

    series: tuple[Series, ...]
    columns: tuple[str, ...]
    targets: tuple[str, ...]
    source: str = "input"
    texts: dict[str, object] = field(default_factory=dict)  # optional: per-series text tables

    def __post_init__(self) -> None:
        if not self.series:
            raise DataError(f"{self.source}: no series")
        missing = [t for t in self.targets if t not in self.columns]
        if missing:
            raise DataError(f"{self.source}: target column(s) {missing} not among columns {list(self.columns)}")
        names = [s.name for s in self.series]
        if len(set(names)) != len(names):
            raise DataError(f"{self.source}: series names are not unique")
        target_idx = self.target_indices
        for s in self.series:
            if s.values.ndim != 2 or s.values.shape[1] != len(self.columns) or len(s.timestamps) != len(s.values):
                raise DataError(f"{self.source}, series '{s.name}': values must be (T, {len(self.columns)})")
            if len(s.values) == 0:
                raise DataError(f"{self.source}, series '{s.name}': no rows")
            if len(s.timestamps) > 1 and not np.all(s.timestamps[1:] > s.timestamps[:-1]):
                bad = int(np.flatnonzero(~(s.timestamps[1:] > s.timestamps[:-1]))[0]) + 1
                kind = "duplicated" if s.timestamps[bad] == s.timestamps[bad - 1] else "unsorted"
                raise DataError(
                    f"{self.source}, series '{s.name}', row {bad + 1}: {kind} timestamp {s.timestamps[bad]}"
                )
            bad_rows = np.flatnonzero(~np.isfinite(s.values[:, target_idx]).all(axis=1))
            if len(bad_rows):
                col = self.targets[int(np.flatnonzero(~np.isfinite(s.values[bad_rows[0], target_idx]))[0])]
                raise DataError(
                    f"{self.source}, series '{s.name}', column '{col}', row {bad_rows[0] + 1}: "
                    "NaN or infinite value in a forecasting target"
                )

    @property
    def target_indices(self) -> list[int]:
        return [self.columns.index(t) for t in self.targets]

    def __len__(self) -> int:
        return len(self.series)
