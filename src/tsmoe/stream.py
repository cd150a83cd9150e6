"""Streaming predictions: a trained MR-MoE (or one of its rungs) updated one observation at a time.

    stream = Estimator.load("runs/sensors").stream()
    stream.update("pump-7", 0.0, {"temperature": 61.2})          # -> the risk after this observation
    stream.update("pump-7", 0.25, {"vibration": 2.1, "pressure": 5.0})
    stream.update_many([("pump-7", 0.5, {...}), ("pump-9", 0.5, {...})])   # many entities, one batched step
    stream.close("pump-7")

Each entity's state is what the model needs to go on without re-reading the past: the liquid experts'
states, each variable's last observation (observation decay), running sums (observation summary) and the
mixed states temporal attention reads (:meth:`tsmoe.models.mrmoe.MRMoE.step`). The rules are the ones the
model was trained under, so a risk after an observation equals ``predict`` on the entity's table cut at
that time (to float rounding):

- an entity's clock starts at its first update, or at the ``start`` given to :meth:`StreamingPredictor.open`
  (PhysioNet stays: the admission, time 0); times are numbers in the run's clock unit;
- updates with the same time for one entity merge into one step (the step is recomputed from the state
  before it); a variable given twice at one time is merged by the run's ``data.duplicates`` rule;
- a time before the entity's last one is an error, as is a variable the run does not know (its name said).

A run calibrated with ``venn_abers`` streams its merged probability; ``stream(interval=True)`` returns each
risk as ``Risk(probability, low, high)``, with the Venn-Abers interval ``[p0, p1]`` that ``tsmoe predict``
writes as ``probability_low`` and ``probability_high``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from tsmoe.data.irregular import IrregularNormalizer
from tsmoe.errors import ConfigError, DataError
from tsmoe.models.mrmoe import MRMoE, StepState
from tsmoe.tasks import get_task
from tsmoe.training.numerics import flushed_subnormals


class Risk(NamedTuple):
    """A binary risk with its Venn-Abers interval: ``low <= probability <= high``."""

    probability: float
    low: float
    high: float


@dataclass
class EntityStream:
    """One entity: its clock origin, static descriptors (scaled), the state before and after its latest
    step, and that step's time and observations (so an update at the same time can be merged in)."""

    origin: float | None
    static: torch.Tensor
    static_mask: torch.Tensor
    before: StepState
    after: StepState | None = None
    last_time: float | None = None  # the latest step's time since the origin
    previous_time: float = 0.0  # the step before it (0: the origin)
    observed: dict[str, list[float]] = field(default_factory=dict)


class StreamingPredictor:
    """Stateful predictions of a loaded run for many entities (module docstring)."""

    def __init__(self, estimator: Any, interval: bool = False) -> None:
        model = estimator.model_
        if interval and getattr(estimator, "venn_abers_", None) is None:
            raise ConfigError(
                "stream(interval=True) needs a run calibrated with venn_abers (training.calibrate: venn_abers, "
                "or tsmoe calibrate RUN --method venn_abers)"
            )
        if not isinstance(model, MRMoE):
            raise ConfigError(
                f"streaming updates are for MR-MoE and its rungs (mrmoe, cfc, ltc, ctrnn, ...); this run's model "
                f"is '{estimator.config.model['name']}': score whole tables with predict"
            )
        model.start_state(1)  # refuses the options that read ahead of a step
        self.model = model.eval()
        self.task = get_task(estimator.meta_["task"])
        self.calibrated = estimator.calibrated  # the run's temperature or Venn-Abers map, if it has one
        self.bounds = estimator.probability_bounds if interval else None
        self.state = estimator.state_
        self.normalizer = IrregularNormalizer.from_state(estimator.state_)
        self.variables = list(estimator.meta_["channel_names"])
        self.index = {name: i for i, name in enumerate(self.variables)}
        self.static_names = list(estimator.meta_.get("static_names", []))
        params = estimator.data_params()
        self.duplicates = getattr(params, "duplicates", "mean")
        self.flush = estimator.config.training.flush_subnormals
        self.entities: dict[Any, EntityStream] = {}

    # ---- entities ---------------------------------------------------------------------------------------

    def open(self, entity: Any, start: float | None = None, static: Mapping[str, float] | None = None) -> None:
        """Begin ``entity``: its clock's origin (default: its first update's time) and its static
        descriptors by name (missing ones stay missing)."""
        if entity in self.entities:
            raise DataError(f"entity {entity!r} is already open: close it first")
        raw = np.full((1, len(self.static_names)), np.nan)
        for name, value in (static or {}).items():
            if name not in self.static_names:
                raise DataError(
                    f"static descriptor '{name}' of entity {entity!r} is not one of the run's {self.static_names}"
                )
            raw[0, self.static_names.index(name)] = float(value)
        self.entities[entity] = EntityStream(
            origin=start,
            static=torch.from_numpy(self.normalizer.scale_static(raw)),
            static_mask=torch.from_numpy((~np.isnan(raw)).astype(np.float32)),
            before=self.model.start_state(1),
        )

    def close(self, entity: Any) -> None:
        """Forget ``entity`` (its state is freed)."""
        if self.entities.pop(entity, None) is None:
            raise DataError(f"entity {entity!r} is not open")

    def __len__(self) -> int:
        return len(self.entities)

    # ---- updates ----------------------------------------------------------------------------------------

    def update(self, entity: Any, time: float, observations: Mapping[str, float]) -> Any:
        """Add ``observations`` (variable name -> value) of ``entity`` at ``time``; the prediction after
        them (binary: the probability, or a :class:`Risk` with its interval; multiclass: the class
        probabilities; regression: the value)."""
        return self.update_many([(entity, time, observations)])[0]

    def update_many(self, updates: Iterable[tuple[Any, float, Mapping[str, float]]]) -> list[Any]:
        """Several updates; those of distinct entities go through the model as one batch."""
        updates = list(updates)
        results: list[Any] = [None] * len(updates)
        pending = list(range(len(updates)))
        while pending:  # waves in which each entity appears once, in the order given
            wave, seen, rest = [], set(), []
            for i in pending:
                (rest if updates[i][0] in seen else wave).append(i)
                seen.add(updates[i][0])
            outputs = self._advance([updates[i] for i in wave])
            for i, output in zip(wave, outputs, strict=True):
                results[i] = output
            pending = rest
        return results

    def _advance(self, updates: list[tuple[Any, float, Mapping[str, float]]]) -> list[Any]:
        """One batched step for updates of distinct entities. Every update is checked before any state
        changes, so a refused one leaves every entity as it was."""
        checked = [self._check(entity, time, observations) for entity, time, observations in updates]
        streams, times, dts, observed, states = [], [], [], [], []
        for (entity, time, _), (since, same, merged) in zip(updates, checked, strict=True):
            if entity not in self.entities:
                self.open(entity)
            stream = self.entities[entity]
            if stream.origin is None:
                stream.origin = float(time)
            if not same:  # a new step: the latest one is final now
                if stream.after is not None:
                    stream.before = stream.after
                stream.previous_time = stream.last_time if stream.last_time is not None else 0.0
            stream.observed, stream.last_time = merged, since
            streams.append(stream)
            times.append(since)
            dts.append(since - stream.previous_time)  # the first step's: its time since the start
            observed.append(merged)
            states.append(stream.before)
        return self._run(streams, times, dts, self._rows(observed), states)

    def _check(self, entity: Any, time: float, observations: Mapping[str, float]) -> tuple[float, bool, dict]:
        """``(time since the start, whether it is the latest step's time, the step's merged observations)``."""
        time = float(time)
        if not math.isfinite(time):
            raise DataError(f"entity {entity!r}: time {time} is not a finite number")
        stream = self.entities.get(entity)
        origin = stream.origin if stream is not None and stream.origin is not None else time
        since = time - origin
        if since < 0:
            raise DataError(f"entity {entity!r}: time {time} is before its start {origin}")
        last = stream.last_time if stream is not None else None
        if last is not None and since < last:
            raise DataError(
                f"entity {entity!r}: time {time} goes back before its last update ({last + origin}); "
                "updates come in time order"
            )
        same = last is not None and since == last  # the same step: merged, and redone from the state before it
        merged = self._merge(entity, stream.observed if same and stream is not None else {}, observations)
        return since, same, merged

    def _merge(self, entity: Any, observed: dict[str, list[float]], new: Mapping[str, float]) -> dict[str, list[float]]:
        merged = {name: list(values) for name, values in observed.items()}
        for name, value in new.items():
            if name not in self.index:
                raise DataError(
                    f"entity {entity!r}: variable '{name}' is not one of the run's ({', '.join(self.variables)})"
                )
            value = float(value)
            if not math.isfinite(value):
                raise DataError(f"entity {entity!r}: variable '{name}' has the value {value}, not a finite number")
            if name in merged and self.duplicates == "error" and value not in merged[name]:
                raise DataError(
                    f"entity {entity!r}: variable '{name}' is given {value} and {merged[name][0]} at one time "
                    "(the run's data.duplicates is error)"
                )
            merged.setdefault(name, []).append(value)
        return merged

    def _rows(self, observed: list[dict[str, list[float]]]) -> np.ndarray:
        """The steps' raw values ``(B, F)``, NaN where unobserved; repeats merged by the run's rule."""
        raw = np.full((len(observed), len(self.variables)), np.nan)
        for i, step in enumerate(observed):
            for name, values in step.items():
                if len(values) == 1 or self.duplicates == "first":
                    value = values[0]
                elif self.duplicates == "last":
                    value = values[-1]
                else:  # mean (and error, where every repeat agrees)
                    value = math.fsum(values) / len(values)
                raw[i, self.index[name]] = value
        return raw

    @torch.no_grad()
    def _run(
        self,
        streams: list[EntityStream],
        times: list[float],
        dts: list[float],
        raw: np.ndarray,
        states: list[StepState],
    ) -> list[Any]:
        """One batched model step for the given entities (``raw (B, F)``: their steps' values, NaN where
        unobserved); stores each one's new state."""
        step = {
            "values": torch.from_numpy(self.normalizer.scale_values(raw)),
            "mask": torch.from_numpy((~np.isnan(raw)).astype(np.float32)),
            "times": torch.tensor(times, dtype=torch.float32),
            "dt": torch.tensor(dts, dtype=torch.float32),
            "static": torch.cat([s.static for s in streams]),
            "static_mask": torch.cat([s.static_mask for s in streams]),
        }
        with flushed_subnormals(self.flush):
            output, after = self.model.step(step, StepState.stack(states))
        if len(streams) == 1:
            streams[0].after = after
        else:
            for stream, state in zip(streams, after.rows(), strict=True):
                stream.after = state
        answers = self._answers(self.calibrated(output))
        if self.bounds is None:
            return answers
        bounds = self.bounds(output)
        return [Risk(p, float(low), float(high)) for p, low, high in
                zip(answers, bounds["probability_low"], bounds["probability_high"], strict=True)]  # fmt: skip

    def _answers(self, output: torch.Tensor) -> list[Any]:
        """Each row's answer: binary, the probability; multiclass, the class probabilities; regression,
        the value."""
        columns = self.task.table_columns(output, self.state)
        if "probability" in columns:
            return columns["probability"].astype(float).tolist()
        probabilities = [k for k in columns if k.startswith("probability_")]
        if probabilities:
            return list(np.stack([columns[k] for k in probabilities], axis=1))
        return columns["prediction"].astype(float).tolist()
