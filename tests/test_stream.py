"""Streaming updates: a trained MR-MoE fed one observation at a time gives what predict gives for the
same stay cut at that time, for real stays, at every prefix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tsmoe import Estimator
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, collate_irregular
from tsmoe.data.sources.physionet2012 import load_physionet2012
from tsmoe.errors import ConfigError, DataError

TINY = {"hidden_size": 8, "d_model": 8, "observation_decay": True, "observation_summary": True,
        "fast_expert": "quasi_steady"}  # fmt: skip


@pytest.fixture(scope="module")
def run(small_physionet):
    estimator = Estimator(
        "mrmoe", "physionet2012", model_params=TINY, training={"max_epochs": 1, "batch_size": 32},
        data_params={"root": str(small_physionet), "split_file": None, "value_scaling": "quantile"},
        trainer={"accelerator": "cpu"},
    )  # fmt: skip
    return estimator.fit()


def observations(data, step: int) -> dict[str, float]:
    return {name: float(data.values[step, j]) for j, name in enumerate(data.variables)
            if not np.isnan(data.values[step, j])}  # fmt: skip


def stay_static(data, i: int) -> dict[str, float]:
    return {name: float(v) for name, v in zip(data.static_names, data.static[i], strict=True) if not np.isnan(v)}


def test_every_update_equals_predict_on_the_stay_cut_there(run, small_physionet):
    data = load_physionet2012(small_physionet).subset(np.arange(20))
    dataset = IrregularDataset(data, IrregularNormalizer.from_state(run.state_))
    outputs, records, _ = run.predict_every_step(dataset, collate_irregular)
    expected = torch.sigmoid(outputs).numpy()
    stream = run.stream()
    streamed = []
    for i, stay in enumerate(data.record_ids):
        stream.open(stay, start=0.0, static=stay_static(data, i))  # PhysioNet's clock starts at admission
        for step in range(data.offsets[i], data.offsets[i + 1]):
            streamed.append(stream.update(stay, float(data.times[step]), observations(data, step)))
    has_steps = data.lengths()[records] > 0
    np.testing.assert_allclose(streamed, expected[has_steps], atol=1e-5)
    # and literally: predict on the stay cut at a few of its times
    i = int(np.argmax(data.lengths()))
    for steps in (1, 5, int(data.lengths()[i])):
        cut = data.subset(np.array([i])).until(float(data.times[data.offsets[i] + steps - 1]))
        whole = run.predict_proba(cut, split="all")[0, 1]
        assert streamed[int(data.offsets[i]) + steps - 1] == pytest.approx(whole, abs=1e-5)


def test_updates_at_one_time_merge_into_one_step_and_batches_equal_one_by_one(run, small_physionet):
    data = load_physionet2012(small_physionet).subset(np.arange(4))
    one, split, batched, elapsed = run.stream(), run.stream(), run.stream(), run.stream()
    for i, stay in enumerate(data.record_ids):
        for stream in (one, split, batched):
            stream.open(stay, start=0.0, static=stay_static(data, i))
        elapsed.open(stay, start=pd.Timedelta(0), static=stay_static(data, i))
    singles, halves, queue = {}, {}, []
    for i, stay in enumerate(data.record_ids):
        for step in range(data.offsets[i], data.offsets[i + 1]):
            seen = observations(data, step)
            time = float(data.times[step])
            singles[stay, step] = one.update(stay, time, seen)
            # a duration since admission (pandas' timedelta) is the same time in the clock's unit (hours)
            assert elapsed.update(stay, pd.Timedelta(hours=time), seen) == pytest.approx(singles[stay, step], abs=1e-6)
            names = list(seen)
            split.update(stay, time, {n: seen[n] for n in names[: len(names) // 2]})
            halves[stay, step] = split.update(stay, time, {n: seen[n] for n in names[len(names) // 2 :]})
            queue.append((stay, time, seen, step, step - data.offsets[i] < 3 * i))
    # stay i's first 3 i steps first, so that the stays' histories differ in length in every batch after it;
    # then the rest interleaved in time, as a monitor receives them
    head = [q for q in queue if q[4]]
    queue = head + sorted((q for q in queue if not q[4]), key=lambda q: q[1])
    answers = batched.update_many([(stay, time, seen) for stay, time, seen, _, _ in head])
    answers += batched.update_many([(stay, time, seen) for stay, time, seen, _, _ in queue[len(head) :]])
    for (stay, _, _, step, _), answer in zip(queue, answers, strict=True):
        assert answer == pytest.approx(singles[stay, step], abs=1e-6)
        assert halves[stay, step] == pytest.approx(singles[stay, step], abs=1e-6)


def test_rows_grown_and_reused_leave_every_other_entity_as_it_would_be_alone(run, small_physionet):
    """Entities open while the stream's rows double, and a closed entity's row goes to a new one: every
    entity's risks are those it gets in a stream of its own."""
    data = load_physionet2012(small_physionet).subset(np.arange(40))
    steps = {stay: range(data.offsets[i], data.offsets[i + 1]) for i, stay in enumerate(data.record_ids)}
    alone = {}
    for stay, rows in steps.items():
        own = run.stream()
        alone[stay] = [own.update(stay, float(data.times[k]), observations(data, k)) for k in rows]
    shared = run.stream()
    got: dict = {stay: [] for stay in steps}
    early, late = list(steps)[:10], list(steps)[10:]
    for k in range(3):  # ten entities with a history, before thirty more make the rows grow twice
        at = {s: steps[s][k] for s in early}
        answers = shared.update_many([(s, float(data.times[at[s]]), observations(data, at[s])) for s in early])
        for stay, answer in zip(early, answers, strict=True):
            got[stay].append(answer)
    shared.close(early[3])  # its row is taken by the next entity opened
    reopened = early[3]
    got[reopened] = []
    for k in range(max(len(rows) for rows in steps.values())):
        wave = [s for s in steps if (k if s in late or s == reopened else k + 3) < len(steps[s])]
        at = {s: steps[s][k if s in late or s == reopened else k + 3] for s in wave}
        answers = shared.update_many([(s, float(data.times[at[s]]), observations(data, at[s])) for s in wave])
        for stay, answer in zip(wave, answers, strict=True):
            got[stay].append(answer)
    for stay in steps:
        np.testing.assert_allclose(got[stay], alone[stay], atol=1e-6)


def test_bad_updates_are_refused_and_closing_frees_an_entity(run, small_physionet):
    stream = run.stream()
    stream.update("a", 2.0, {"HR": 80.0})
    stream.update("a", 3.0, {"HR": 80.0})
    with pytest.raises(DataError, match=r"goes back [0-9.e+-]+ hours before its last update"):
        stream.update("a", 2.5, {"HR": 81.0})
    with pytest.raises(DataError, match="is before its start"):
        stream.update("a", 1.0, {"HR": 81.0})
    with pytest.raises(DataError, match="beyond float32's range"):  # it would be an infinite time to the model
        stream.update("a", 1e39, {"HR": 81.0})
    with pytest.raises(DataError, match="variable 'Pulse' is not one of the run's"):
        stream.update("a", 4.0, {"Pulse": 81.0})
    with pytest.raises(DataError, match="not a finite number"):
        stream.update("a", 4.0, {"HR": float("nan")})
    with pytest.raises(DataError, match=r"observations are a mapping \{variable: value\}, got 80.0"):
        stream.update("a", 4.0, 80.0)
    with pytest.raises(DataError, match=r"an update is \(entity, time, \{variable: value\}\), got \('a', 4.0\)"):
        stream.update_many([("a", 4.0)])
    with pytest.raises(DataError, match=r"entity \['a'\] cannot name an entity"):
        stream.update_many([(["a"], 4.0, {"HR": 80.0})])
    with pytest.raises(DataError, match=r"entity \('a', \['b'\]\) cannot name an entity"):  # a tuple holding a list
        stream.update(("a", ["b"]), 4.0, {"HR": 80.0})
    with pytest.raises(DataError, match=r"entity \['a'\] cannot name an entity"):
        stream.close(["a"])
    with pytest.raises(DataError, match=r"entity 'z': time 4.0 is before its start"):  # in the batch's second wave
        stream.update_many([("z", 5.0, {"HR": 80.0}), ("z", 4.0, {"HR": 80.0})])
    with pytest.raises(DataError, match=r"variable 'HR' has the value \[80.0\], not a finite number"):
        stream.update_many([("z", 5.0, {"HR": 80.0}), ("z", 5.0, {"HR": [80.0]})])
    assert "z" not in stream.entities  # neither call took its first update either
    assert stream.update("a", 3.0, {}) == pytest.approx(stream.update("a", 3.0, {"HR": 80.0}))  # nothing changed
    assert len(stream) == 1
    stream.close("a")
    assert len(stream) == 0
    with pytest.raises(DataError, match="is not open"):
        stream.close("a")


def test_a_rung_without_attention_streams_what_predict_gives(small_physionet):
    """A single CfC (no gate, no attention: nothing in the state memory) streams in batches as predict
    scores the stays cut at each step."""
    cfc = Estimator("cfc", "physionet2012", model_params={"hidden_size": 8}, training={"max_epochs": 1},
                    data_params={"root": str(small_physionet), "split_file": None},
                    trainer={"accelerator": "cpu"}).fit()  # fmt: skip
    data = load_physionet2012(small_physionet).subset(np.arange(6))
    dataset = IrregularDataset(data, IrregularNormalizer.from_state(cfc.state_))
    outputs, records, _ = cfc.predict_every_step(dataset, collate_irregular)
    expected = torch.sigmoid(outputs).numpy()[data.lengths()[records] > 0]
    stream = cfc.stream()
    for i, stay in enumerate(data.record_ids):
        stream.open(stay, start=0.0, static=stay_static(data, i))
    longest = int(data.lengths().max())
    streamed: dict = {stay: [] for stay in data.record_ids}
    for k in range(longest):  # all stays step k together, as one batch
        wave = [(i, stay) for i, stay in enumerate(data.record_ids) if k < data.lengths()[i]]
        steps = [int(data.offsets[i]) + k for i, _ in wave]
        answers = stream.update_many([(stay, float(data.times[j]), observations(data, j))
                                      for (_, stay), j in zip(wave, steps, strict=True)])  # fmt: skip
        for (_, stay), answer in zip(wave, answers, strict=True):
            streamed[stay].append(answer)
    np.testing.assert_allclose(np.concatenate([streamed[stay] for stay in data.record_ids]), expected, atol=1e-5)


def test_a_model_without_a_step_form_is_refused(small_physionet):
    lstm = Estimator("lstm", "physionet2012", model_params={"hidden_size": 4, "head_hidden": 4},
                     training={"max_epochs": 1}, data_params={"root": str(small_physionet), "split_file": None},
                     trainer={"accelerator": "cpu"}).fit()  # fmt: skip
    with pytest.raises(ConfigError, match="streaming updates are for MR-MoE"):
        lstm.stream()
