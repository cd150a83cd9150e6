"""Irregularly sampled multivariate series: a flat container, its normaliser, a torch Dataset and collate.

Guarantees of :class:`IrregularSet` (checked at construction):
- record ``i`` owns steps ``offsets[i]:offsets[i + 1]``; ``offsets`` starts at 0 and never decreases;
- within a record, ``times`` (hours since the start) strictly increase;
- ``values`` is NaN exactly where a variable was not observed at that step; ``static`` is NaN where missing.

A record may have zero steps (a stay with no time-varying measurement). The Dataset gives such a
record one fully masked step at time 0, so models see its static descriptors and a well-defined, empty
series instead of a length-0 sequence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from tsmoe.errors import DataError


@dataclass(frozen=True)
class Clock:
    """Where a set's times came from, to write a prediction beside the time it is for: ``steps (S,)``
    float64 each step's time as the table gave it and ``origins (N,)`` each record's clock start, both in
    the clock's unit (since 1970-01-01 where ``kind`` is ``"timestamp"``; the table's numbers where it is
    ``"number"``)."""

    steps: np.ndarray
    origins: np.ndarray
    kind: str


@dataclass(frozen=True)
class IrregularSet:
    """N irregular multivariate series stored flat, with static descriptors and a label each.

    Shapes: ``record_ids (N,)``, ``offsets (N + 1,)``, ``times (S,)``, ``values (S, F)``,
    ``static (N, P)``, ``labels (N,)``, where S is the total number of steps.
    """

    record_ids: np.ndarray
    offsets: np.ndarray
    times: np.ndarray
    values: np.ndarray
    static: np.ndarray
    labels: np.ndarray
    variables: tuple[str, ...]
    static_names: tuple[str, ...]
    notes: dict = field(default_factory=dict)  # what reading the source did (rows skipped by a stated policy)
    step_labels: np.ndarray | None = None  # (S,) a label per step (early prediction), NaN where a step has none
    clock: Clock | None = None  # the times as a table gave them (a table read to predict)
    class_names: tuple[str, ...] = ()  # classes given by name: class k is class_names[k] (empty: unnamed)

    def __post_init__(self) -> None:
        n = len(self.record_ids)
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise DataError("IrregularSet: offsets must be (N + 1,), start at 0 and never decrease")
        steps = int(self.offsets[-1])
        if self.times.shape != (steps,) or self.values.shape != (steps, len(self.variables)):
            raise DataError(
                f"IrregularSet: times {self.times.shape} and values {self.values.shape} do not match "
                f"{steps} steps of {len(self.variables)} variables"
            )
        if self.static.shape != (n, len(self.static_names)) or self.labels.shape != (n,):
            raise DataError("IrregularSet: static must be (N, P) and labels (N,)")
        if self.step_labels is not None and self.step_labels.shape != (steps,):
            raise DataError(f"IrregularSet: step_labels must be (S,) = ({steps},), got {self.step_labels.shape}")
        gaps = np.diff(self.times)
        # a gap may be <= 0 only where a new record starts
        starts = np.zeros(max(steps - 1, 0), dtype=bool)
        boundary = self.offsets[1:-1] - 1
        starts[boundary[(boundary >= 0) & (boundary < steps - 1)]] = True
        if np.any((gaps <= 0) & ~starts):
            bad = int(np.flatnonzero((gaps <= 0) & ~starts)[0]) + 1
            record = int(np.searchsorted(self.offsets, bad, side="right") - 1)
            raise DataError(
                f"IrregularSet: times of record {self.record_ids[record]} do not strictly increase "
                f"(step {bad - self.offsets[record]})"
            )

    def __len__(self) -> int:
        return len(self.record_ids)

    def lengths(self) -> np.ndarray:
        """Number of steps of each record, ``(N,)``."""
        return np.diff(self.offsets)

    def subset(self, indices: np.ndarray) -> IrregularSet:
        """The records at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths()[indices]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        steps = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices])
            if len(indices)
            else np.zeros(0, dtype=np.int64)
        ).astype(np.int64)
        return IrregularSet(
            record_ids=self.record_ids[indices],
            offsets=offsets,
            times=self.times[steps],
            values=self.values[steps],
            static=self.static[indices],
            labels=self.labels[indices],
            variables=self.variables,
            static_names=self.static_names,
            class_names=self.class_names,
            notes=self.notes,
            step_labels=None if self.step_labels is None else self.step_labels[steps],
            clock=None
            if self.clock is None
            else Clock(self.clock.steps[steps], self.clock.origins[indices], self.clock.kind),  # fmt: skip
        )

    def until(self, hours: float) -> IrregularSet:
        """Each record's steps up to ``hours`` after its start (its first ``hours`` time units): what was
        known then. A record keeps its label (and its static descriptors)."""
        keep = self.times <= hours
        kept_before = np.concatenate([[0], np.cumsum(keep)])
        counts = kept_before[self.offsets[1:]] - kept_before[self.offsets[:-1]]
        dropped = int((~keep).sum())
        notes = (
            {**self.notes, f"steps after {hours:g} time units dropped (data.until)": dropped} if dropped else self.notes
        )
        return IrregularSet(
            record_ids=self.record_ids,
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            times=self.times[keep],
            values=self.values[keep],
            static=self.static,
            labels=self.labels,
            variables=self.variables,
            static_names=self.static_names,
            class_names=self.class_names,
            notes=notes,
            step_labels=None if self.step_labels is None else self.step_labels[keep],
            clock=None if self.clock is None else Clock(self.clock.steps[keep], self.clock.origins, self.clock.kind),
        )

    def with_outcome_at_every_step(self) -> IrregularSet:
        """Every step labelled with its record's outcome: trained at each step, a model learns to predict
        the outcome from what it has seen so far (early prediction)."""
        return dataclasses.replace(self, step_labels=np.repeat(self.labels, self.lengths()).astype(np.float32))


Scaling = Literal["zscore", "quantile"]
QUANTILES = 1001  # levels of each quantile table (0, 0.001, ..., 1)
_LEVELS = np.linspace(0.0, 1.0, QUANTILES)


@dataclass(frozen=True)
class IrregularNormalizer:
    """Maps observed values and static descriptors to a common scale, and z-scores (regression)
    targets, with statistics from training records only.

    ``value_mean/value_std (F,)``, ``static_mean/static_std (P,)``, ``target_mean/target_std (1,)``
    (0 and 1 for class labels, which are not scaled). A variable never observed in training gets mean 0
    and std 1 (it stays masked everywhere in training anyway).

    Two scalings (``scaling``, chosen at :meth:`fit`):
    - ``zscore``: ``z = (x - mean) / std``;
    - ``quantile``: ``z = Phi^-1(F_train(x))``, each variable's empirical training CDF (a grid of
      ``QUANTILES`` quantiles, linear in between) followed by the standard normal quantile function,
      the probability clipped to [1e-3, 1 - 1e-3] (so ``|z| <= 3.09``). Monotone, so it keeps every
      ordering, and robust to the heavy tails of ICU labs (ALT and AST in the thousands, urine output of
      0 or 1000 ml) that a z-score lets dominate. The quantile tables are ``value_quantiles (F, Q)`` and
      ``static_quantiles (P, Q)``, NaN for a column never observed in training (mapped to 0); empty
      ``(0,)`` under ``zscore``.
    """

    value_mean: np.ndarray
    value_std: np.ndarray
    static_mean: np.ndarray
    static_std: np.ndarray
    target_mean: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    target_std: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    value_quantiles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    static_quantiles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def scaling(self) -> Scaling:
        return "quantile" if self.value_quantiles.size else "zscore"

    @classmethod
    def fit(cls, data: IrregularSet, scaling: Scaling = "zscore") -> IrregularNormalizer:
        if scaling not in ("zscore", "quantile"):
            raise DataError(f"unknown value scaling '{scaling}': expected 'zscore' or 'quantile'")

        def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            observed = ~np.isnan(x)
            count = observed.sum(0)
            safe = np.where(observed, x, 0.0)
            mean = np.where(count > 0, safe.sum(0) / np.maximum(count, 1), 0.0)
            var = np.where(observed, (x - mean) ** 2, 0.0).sum(0) / np.maximum(count, 1)
            std = np.sqrt(var)
            std = np.where((count > 1) & (std > 1e-8), std, 1.0)
            return mean.astype(np.float32), std.astype(np.float32)

        value_mean, value_std = stats(data.values.astype(np.float64))
        static_mean, static_std = stats(data.static.astype(np.float64))
        quantiles: dict[str, np.ndarray] = {}
        if scaling == "quantile":
            quantiles = {
                "value_quantiles": _quantile_table(data.values),
                "static_quantiles": _quantile_table(data.static),
            }
        if is_regression(data.labels):
            target_mean, target_std = stats(data.labels.astype(np.float64)[:, None])
            return cls(value_mean, value_std, static_mean, static_std, target_mean, target_std, **quantiles)
        return cls(value_mean, value_std, static_mean, static_std, **quantiles)

    def scale_values(self, values: np.ndarray) -> np.ndarray:
        """``values (S, F)`` with NaN where unobserved -> the scaled values, 0 where unobserved (float32)."""
        return self._scale(values, self.value_mean, self.value_std, self.value_quantiles)

    def scale_static(self, static: np.ndarray) -> np.ndarray:
        """``static (N, P)`` with NaN where missing -> the scaled descriptors, 0 where missing (float32)."""
        return self._scale(static, self.static_mean, self.static_std, self.static_quantiles)

    @staticmethod
    def _scale(x: np.ndarray, mean: np.ndarray, std: np.ndarray, table: np.ndarray) -> np.ndarray:
        observed = ~np.isnan(x)
        if table.size:  # only the columns with an observed value: a step observes a few of many variables
            scaled = np.zeros(x.shape, dtype=np.float64)
            for j in np.flatnonzero(observed.any(axis=0)):
                rows = observed[:, j]
                scaled[rows, j] = _quantile_map(x[rows, j], table[j])
        else:
            scaled = (x - mean) / std
        return np.where(observed, scaled, 0.0).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """The fitted statistics, to be saved beside a model."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> IrregularNormalizer:
        # runs saved before quantile scaling existed have no quantile tables: they were z-scored
        return cls(
            **{name: np.asarray(state[name], dtype=np.float32) for name in cls.__dataclass_fields__ if name in state}
        )


def _quantile_table(x: np.ndarray) -> np.ndarray:
    """``x (S, C)`` with NaN where unobserved -> ``(C, QUANTILES)`` empirical quantiles of each column's
    observed values at the levels ``linspace(0, 1, QUANTILES)`` (NaN for a column with none)."""
    levels = np.linspace(0.0, 1.0, QUANTILES)
    table = np.full((x.shape[1], QUANTILES), np.nan, dtype=np.float32)
    for j in range(x.shape[1]):
        column = x[:, j][~np.isnan(x[:, j])].astype(np.float64)
        if column.size:
            table[j] = np.quantile(column, levels)
    return table


def _quantile_map(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """``Phi^-1(clip(F(x), 1e-3, 1 - 1e-3))`` through one column's quantile table ``(Q,)``.

    ``F`` interpolates linearly between the table's levels. A value tied across several levels (a lab
    reported in whole units, a flag) gets the middle of its share of probability: the mean of
    interpolating from below and from above, taken before ``Phi^-1``, as scikit-learn's
    QuantileTransformer does."""
    if np.isnan(quantiles).any():
        return np.zeros_like(x, dtype=np.float64)
    levels = _LEVELS if len(quantiles) == QUANTILES else np.linspace(0.0, 1.0, len(quantiles))
    x, q = x.astype(np.float64), quantiles.astype(np.float64)
    upward = np.interp(x, q, levels)
    downward = 1.0 - np.interp(-x, -q[::-1], levels)
    probability = np.clip(0.5 * (upward + downward), 1e-3, 1 - 1e-3)
    return torch.special.ndtri(torch.from_numpy(probability)).numpy()


def is_regression(labels: np.ndarray) -> bool:
    """Float labels are regression targets; integer labels are classes."""
    return np.issubdtype(labels.dtype, np.floating)


class IrregularDataset(Dataset):
    """Torch view of an :class:`IrregularSet`, normalised; one item per record.

    An item holds ``values (T, F)`` (scaled by the normaliser, 0 where unobserved), ``mask (T, F)``
    (1 where observed), ``times (T,)`` hours, ``static (P,)`` (scaled likewise, 0 where missing),
    ``static_mask (P,)`` and ``target ()`` (the class, or the z-scored regression target).
    """

    def __init__(self, data: IrregularSet, normalizer: IrregularNormalizer) -> None:
        self.data = data
        self.values = normalizer.scale_values(data.values)
        self.mask = (~np.isnan(data.values)).astype(np.float32)
        self.static = normalizer.scale_static(data.static)
        self.static_mask = (~np.isnan(data.static)).astype(np.float32)
        self.targets = self._scaled_targets(data.labels, normalizer)
        # early prediction: a target per step, and whether the step has one
        self.step_targets = None if data.step_labels is None else self._scaled_targets(data.step_labels, normalizer)

    def _scaled_targets(self, labels: np.ndarray, normalizer: IrregularNormalizer) -> np.ndarray:
        """Regression targets z-scored with the training statistics; classes as they are."""
        if is_regression(self.data.labels):
            return ((labels - normalizer.target_mean[0]) / normalizer.target_std[0]).astype(np.float32)
        return labels

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start, end = int(self.data.offsets[index]), int(self.data.offsets[index + 1])
        if end == start:  # no measurement at all: one fully masked step at time 0
            values = np.zeros((1, len(self.data.variables)), dtype=np.float32)
            mask, times = values.copy(), np.zeros(1, dtype=np.float32)
        else:
            values, mask = self.values[start:end], self.mask[start:end]
            times = self.data.times[start:end].astype(np.float32)
        item = {
            "values": torch.from_numpy(values),
            "mask": torch.from_numpy(mask),
            "times": torch.from_numpy(times),
            "static": torch.from_numpy(self.static[index]),
            "static_mask": torch.from_numpy(self.static_mask[index]),
            "target": torch.tensor(self.targets[index]),
        }
        if self.step_targets is not None:
            if end == start:  # the masked step of a record with no measurement predicts from its descriptors
                step_target = np.array([self.targets[index]], dtype=np.float32)
            else:
                step_target = self.step_targets[start:end].astype(np.float32)
            item["step_target"] = torch.from_numpy(np.nan_to_num(step_target, nan=0.0))
            item["step_labelled"] = torch.from_numpy((~np.isnan(step_target)).astype(np.float32))
        return item


def collate_irregular(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad a list of records to the longest one.

    Returns ``values, mask (B, T, F)``, ``times, dt, step_mask (B, T)``, ``lengths (B,)``,
    ``static, static_mask (B, P)``, ``target (B,)`` and, for early prediction, ``step_target,
    step_labelled (B, T)`` (0 on padding). ``dt`` is the time since the previous step (the first step's is
    its time since the start); padded steps have ``dt = 0`` and ``step_mask = 0``.
    """
    lengths = torch.tensor([len(item["times"]) for item in items], dtype=torch.long)
    batch, steps = len(items), int(lengths.max())
    n_features = items[0]["values"].shape[-1]
    values = torch.zeros(batch, steps, n_features)
    mask = torch.zeros(batch, steps, n_features)
    times = torch.zeros(batch, steps)
    for row, item in enumerate(items):
        n = len(item["times"])
        values[row, :n], mask[row, :n], times[row, :n] = item["values"], item["mask"], item["times"]
    step_mask = (torch.arange(steps)[None, :] < lengths[:, None]).float()
    dt = torch.diff(times, dim=1, prepend=torch.zeros(batch, 1)) * step_mask
    per_step = {}
    if "step_target" in items[0]:
        for key in ("step_target", "step_labelled"):
            per_step[key] = torch.zeros(batch, steps)
            for row, item in enumerate(items):
                per_step[key][row, : len(item[key])] = item[key]
    return {
        **per_step,
        "values": values,
        "mask": mask,
        "times": times,
        "dt": dt,
        "step_mask": step_mask,
        "lengths": lengths,
        "static": torch.stack([item["static"] for item in items]),
        "static_mask": torch.stack([item["static_mask"] for item in items]),
        "target": torch.stack([item["target"] for item in items]),
    }
