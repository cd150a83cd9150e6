"""Whatever a caller hands a stream, each call answers or raises a tsmoe error, and a refused call changes
nothing: replaying only the accepted calls on a fresh stream gives the same answers.

Hypothesis generates sequences of ``open``, ``update``, ``update_many`` and ``close`` with entities, times,
observations and descriptors of any kind (missing, unhashable, out of order, beyond float32, timestamps
mixed with numbers, unknown variables, batches naming one entity twice).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsmoe import Estimator
from tsmoe.errors import TsmoeError

# the plausible more often than the odd, so that accepted calls build up states for refused ones to spoil
named = st.sampled_from(["a", "b"])
entities = st.one_of(named, named, st.sampled_from([3, None, math.nan, ["l"], ("a", ["b"]), True]))
plausible = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5, 10.0])
numbers = st.one_of(plausible, plausible, st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([-1.0, 1e39]))
times = st.one_of(
    plausible,
    numbers,
    st.sampled_from(["2026-01-01T00:00", "2026-01-01T01:30Z", "x", "", None, True,
                     dt.datetime(2026, 1, 1, 2), np.datetime64("NaT")]),
)  # fmt: skip
values = st.one_of(st.sampled_from([80.0, 36.5, 120.25]), numbers, st.sampled_from(["80", "x", None, [1]]))
observations = st.one_of(
    st.dictionaries(st.sampled_from(["HR", "Temp"]), values, max_size=2),
    st.dictionaries(st.sampled_from(["HR", "Temp", "Pulse", ""]), values, max_size=3),
    st.sampled_from([None, 80.0, [("HR", 80.0)]]),
)
update = st.tuples(entities, times, observations)
operations = st.one_of(
    st.tuples(st.just("update"), update),
    st.tuples(st.just("update_many"), st.lists(st.one_of(update, st.sampled_from([None, ("a", 1.0)])), max_size=4)),
    st.tuples(st.just("open"), st.tuples(entities, st.one_of(st.none(), times),
                                         st.one_of(st.none(), st.dictionaries(st.sampled_from(["Age", "Height", "x"]),
                                                                              values, max_size=2)))),
    st.tuples(st.just("close"), entities),
)  # fmt: skip


def call(stream: Any, name: str, arguments: Any) -> Any:
    if name == "update":
        return stream.update(*arguments)
    if name == "update_many":
        return stream.update_many(arguments)
    if name == "open":
        entity, start, static = arguments
        return stream.open(entity, start=start, static=static)
    return stream.close(arguments)


@pytest.fixture(scope="module")
def estimator(small_physionet):
    model = {"hidden_size": 8, "d_model": 8, "observation_decay": True}
    return Estimator(
        "mrmoe", "physionet2012", model_params=model, training={"max_epochs": 1, "batch_size": 32},
        data_params={"root": str(small_physionet), "split_file": None, "value_scaling": "quantile"},
        trainer={"accelerator": "cpu"},
    ).fit()  # fmt: skip


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(operations, max_size=10))
def test_a_stream_answers_or_refuses_and_a_refused_call_changes_nothing(estimator, calls):
    stream = estimator.stream()
    accepted = []
    for name, arguments in calls:
        try:
            answer = call(stream, name, arguments)
        except TsmoeError as error:
            assert str(error)
            continue
        accepted.append((name, arguments, answer))
    replay = estimator.stream()
    for name, arguments, answer in accepted:
        again = call(replay, name, arguments)
        again, answer = np.asarray(again, dtype=float), np.asarray(answer, dtype=float)  # None (open, close): NaN
        assert np.allclose(again, answer, atol=1e-6, rtol=0, equal_nan=True)
    assert len(replay) == len(stream)
