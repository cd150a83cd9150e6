"""An ensemble's stream: every member's :class:`tsmoe.stream.StreamingPredictor` fed the same calls, their
answers averaged.

    stream = Ensemble.load(["runs/s0", "runs/s1", "runs/s2"]).stream()
    stream.update("pump-7", 0.0, {"temperature": 61.2})   # -> the members' mean risk after this observation

The mean is the one ``Ensemble.predict_table`` gives after every step: ``p = (1/M) sum_m p_m`` for a risk
(each class's probability, a regression's value, and with ``interval`` each end of the Venn-Abers interval).
The members must read updates alike (the same variables, static descriptors, clock unit and merging rule),
so that a call one member refuses, every member refuses: each call goes to the first member first, whose
refusal changes nothing, and only then to the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tsmoe.errors import ConfigError
from tsmoe.stream import Risk, StreamingPredictor

ALIKE = ("variables", "static_names", "time_unit", "duplicates")  # what decides whether an update is accepted


class EnsembleStream:
    """The members' streams ``streams`` (one per run, named by ``names`` in errors) as one."""

    def __init__(self, streams: Sequence[StreamingPredictor], names: Sequence[str]) -> None:
        first = streams[0]
        for name, stream in zip(names[1:], streams[1:], strict=True):
            for setting in ALIKE:
                if getattr(stream, setting) != getattr(first, setting):
                    raise ConfigError(
                        f"ensemble members read updates differently: {names[0]} and {name} differ in {setting} "
                        f"({getattr(first, setting)!r} against {getattr(stream, setting)!r}); stream runs "
                        "trained on the same table"
                    )
        self.streams = list(streams)

    def open(self, entity: Any, start: Any = None, static: Mapping[str, Any] | None = None) -> None:
        """:meth:`StreamingPredictor.open` on every member."""
        for stream in self.streams:
            stream.open(entity, start=start, static=static)

    def close(self, entity: Any) -> None:
        """:meth:`StreamingPredictor.close` on every member."""
        for stream in self.streams:
            stream.close(entity)

    def __len__(self) -> int:
        return len(self.streams[0])

    @property
    def entities(self) -> dict[Any, Any]:
        """The open entities (the first member's; every member holds the same ones)."""
        return self.streams[0].entities

    def update(self, entity: Any, time: Any, observations: Mapping[str, float]) -> Any:
        """The members' mean answer after ``observations`` of ``entity`` at ``time``."""
        return self.update_many([(entity, time, observations)])[0]

    def update_many(self, updates: Iterable[tuple[Any, Any, Mapping[str, float]]]) -> list[Any]:
        """Several updates (:meth:`StreamingPredictor.update_many`), each answered by the members' mean."""
        updates = list(updates)
        answers = [stream.update_many(updates) for stream in self.streams]
        return [_mean(parts) for parts in zip(*answers, strict=True)]


def _mean(parts: tuple[Any, ...]) -> Any:
    """The mean of the members' answers to one update: floats, class-probability arrays or ``Risk``s."""
    if isinstance(parts[0], Risk):
        return Risk(*(float(np.mean(values)) for values in zip(*parts, strict=True)))
    if isinstance(parts[0], np.ndarray):
        return np.mean(parts, axis=0)
    return float(np.mean(parts))
