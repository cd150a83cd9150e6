"""Early prediction: a label at every step, outputs at every step that only see the past, the metrics at
prefixes, and the PhysioNet 2019 utility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, collate_irregular
from tsmoe.data.sources.physionet2012 import load_physionet2012
from tsmoe.errors import ConfigError
from tsmoe.metrics import normalized_utility, prediction_utility
from tsmoe.models.registry import build_model
from tsmoe.predict import on_a_clock
from tsmoe.tasks import get_task, last_rows

PER_STEP_MODELS = {
    "mrmoe": {"hidden_size": 8, "d_model": 8, "observation_decay": True, "observation_summary": True},
    "mrmoe_no_attention": {"hidden_size": 8, "d_model": 8, "fast_expert": "quasi_steady"},
    "cfc": {"hidden_size": 8, "d_model": 8},
    "ltc": {"hidden_size": 4, "d_model": 4},
    "ctrnn": {"hidden_size": 4, "d_model": 4},
    "lstm": {"hidden_size": 8, "observation_summary": True},
    "gru": {"hidden_size": 8, "observation_decay": True},
}


@pytest.fixture(scope="module")
def stays(small_physionet):
    return load_physionet2012(small_physionet)


def items(stays, count: int = 6) -> list[dict]:
    dataset = IrregularDataset(stays.subset(np.arange(count)), IrregularNormalizer.fit(stays))
    return [dataset[i] for i in range(count)]


def cut(item: dict, steps: int) -> dict:
    return {k: (v[:steps] if k in ("values", "mask", "times") else v) for k, v in item.items()}


@pytest.mark.parametrize("name", sorted(PER_STEP_MODELS))
def test_the_output_at_each_step_is_the_models_answer_for_the_stay_cut_there(name, stays):
    torch.manual_seed(0)
    dims = {"n_features": len(stays.variables), "n_static": len(stays.static_names)}
    model = build_model({"name": name, **PER_STEP_MODELS[name]}, dims, "binary_per_step", "irregular").eval()
    whole = build_model({"name": name, **PER_STEP_MODELS[name]}, dims, "binary", "irregular").eval()
    whole.load_state_dict(model.state_dict())
    batch_items = items(stays)
    with torch.no_grad():
        every = model(collate_irregular(batch_items))
        every = every["output"] if isinstance(every, dict) else every
        for steps in (1, 3, 10):
            prefix = [cut(item, steps) for item in batch_items]
            out = whole(collate_irregular(prefix))
            out = out["output"] if isinstance(out, dict) else out
            lengths = torch.tensor([min(steps, len(item["times"])) for item in batch_items])
            np.testing.assert_allclose(every[torch.arange(len(prefix)), lengths - 1], out, atol=1e-5)


def test_until_keeps_what_was_known_and_per_step_labels_every_step(stays):
    early = stays.until(6.0)
    assert early.times.max() <= 6.0 and len(early) == len(stays)
    assert (early.lengths() <= stays.lengths()).all() and early.lengths().sum() < stays.lengths().sum()
    for i in range(5):  # each stay keeps exactly its steps up to 6 h
        times = stays.times[stays.offsets[i] : stays.offsets[i + 1]]
        assert early.lengths()[i] == int((times <= 6.0).sum())
    labelled = early.with_outcome_at_every_step()
    assert np.array_equal(labelled.step_labels, np.repeat(early.labels, early.lengths()).astype(np.float32))


def test_prefix_metrics_read_each_records_last_step_before_the_prefix():
    record = torch.tensor([0, 0, 0, 1, 1, 2])
    time = torch.tensor([1.0, 5.0, 30.0, 7.0, 20.0, 2.0])
    assert last_rows(record, time, 6.0).tolist() == [1, 5]  # record 1 has no step by 6 h
    assert last_rows(record, time, 24.0).tolist() == [1, 4, 5]
    assert last_rows(record, time, None).tolist() == [2, 4, 5]
    task = get_task("binary_per_step")
    logits = torch.tensor([-2.0, 3.0, -3.0, 1.0, -1.0, 2.0])
    table = torch.stack([torch.tensor([1.0, 1, 1, 0, 0, 1]), record.double(), time.double()], dim=-1)
    scores = task.metrics(logits, table)
    assert scores["accuracy_at_6"] == 1.0  # rows 1 (p > 0.5, label 1) and 5 (p > 0.5, label 1)
    assert scores["accuracy_last"] == pytest.approx(2 / 3)  # row 2 is wrong, 4 and 5 right
    assert "utility" not in scores  # one outcome per record: no onset to be early for
    assert "auroc_last_ci" in scores and "auroc_ci" not in scores  # intervals over records, not over steps


def official_utility(labels, predictions, dt_early=-12, dt_optimal=-6, dt_late=3.0, max_u_tp=1, min_u_fn=-2,
                     u_fp=-0.05, u_tn=0):  # fmt: skip
    """compute_prediction_utility of the PhysioNet/CinC 2019 challenge's evaluate_sepsis_score.py, line by line."""
    if np.any(labels):
        is_septic = True
        t_sepsis = np.argmax(labels) - dt_optimal
    else:
        is_septic = False
        t_sepsis = float("inf")
    n = len(labels)
    m_1 = float(max_u_tp) / float(dt_optimal - dt_early)
    b_1 = -m_1 * dt_early
    m_2 = float(-max_u_tp) / float(dt_late - dt_optimal)
    b_2 = -m_2 * dt_late
    m_3 = float(min_u_fn) / float(dt_late - dt_optimal)
    b_3 = -m_3 * dt_optimal
    u = np.zeros(n)
    for t in range(n):
        if t <= t_sepsis + dt_late:
            if is_septic and predictions[t]:
                if t <= t_sepsis + dt_optimal:
                    u[t] = max(m_1 * (t - t_sepsis) + b_1, u_fp)
                elif t <= t_sepsis + dt_late:
                    u[t] = m_2 * (t - t_sepsis) + b_2
            elif not is_septic and predictions[t]:
                u[t] = u_fp
            elif is_septic and not predictions[t]:
                if t <= t_sepsis + dt_optimal:
                    u[t] = 0
                elif t <= t_sepsis + dt_late:
                    u[t] = m_3 * (t - t_sepsis) + b_3
            elif not is_septic and not predictions[t]:
                u[t] = u_tn
    return np.sum(u)


def test_the_utility_is_the_challenges_on_hourly_steps():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        labels = np.zeros(n, dtype=np.int64)
        if rng.random() < 0.5:
            labels[int(rng.integers(0, n)) :] = 1
        predictions = (rng.random(n) < 0.3).astype(np.int64)
        expected = official_utility(labels, predictions)
        assert prediction_utility(labels, predictions, np.arange(n, dtype=float)) == pytest.approx(expected)
    # normalised: the ideal alarms score 1, never alarming 0
    labels = np.array([0] * 20 + [1] * 10 + [0] * 15)
    records = np.array([0] * 30 + [1] * 15)
    times = np.concatenate([np.arange(30.0), np.arange(15.0)])
    ideal = ((np.arange(30) >= 20 + 6 - 12) & (np.arange(30) <= 20 + 6 + 3)).astype(int)
    assert normalized_utility(labels, np.concatenate([ideal, np.zeros(15, int)]), records, times) == pytest.approx(1)
    assert normalized_utility(labels, np.zeros(45, int), records, times) == pytest.approx(0)


@pytest.mark.slow
def test_a_per_step_run_reports_prefix_metrics_and_predicts_every_step(small_physionet, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "mrmoe-physionet2012", "--out", str(run), "--set", f"data.root={small_physionet}",
                 "--set", "data.split_file=null", "--set", "data.per_step=true", "--set", "model.hidden_size=8",
                 "--set", "training.max_epochs=1", "--set", "trainer.accelerator=cpu"]) == 0  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"auroc", "auroc_at_6", "auroc_at_24", "auroc_at_48", "auroc_last", "auroc_last_ci"} <= set(metrics)
    assert "auroc_ci" not in metrics  # over all steps the items are not independent: no interval
    assert json.loads((run / "meta.json").read_text())["task"] == "binary_per_step"
    out = tmp_path / "steps.csv"
    assert main(["predict", str(run), str(small_physionet), "-o", str(out), "--per-step"]) == 0
    steps = pd.read_csv(out)
    data = load_physionet2012(small_physionet)
    assert len(steps) == int(np.maximum(data.lengths(), 1).sum())  # a stay without measurements: one row
    assert list(steps.columns) == ["record_id", "hours_since_start", "probability", "prediction"]
    whole = tmp_path / "whole.csv"
    assert main(["predict", str(run), str(small_physionet), "-o", str(whole)]) == 0
    last = steps.groupby("record_id", sort=False).last()
    np.testing.assert_allclose(last["probability"], pd.read_csv(whole).set_index("record_id")["probability"], atol=1e-6)
    hourly = tmp_path / "hourly.csv"  # a risk at every 6 hours: the per-step rows read on that clock
    assert main(["predict", str(run), str(small_physionet), "-o", str(hourly), "--every", "6"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(hourly), on_a_clock(steps, "record_id", "hours_since_start", 6.0))


def test_labels_at_times_train_a_per_step_model_scored_by_utility(tmp_path):
    rng = np.random.default_rng(1)
    rows, labels = [], []
    for e in range(40):
        hours = np.arange(0.0, 30.0)
        onset = 18 if e % 2 else None
        for h in hours:
            rows.append((f"p{e}", h, "hr", 80 + (15 if onset and h > onset - 8 else 0) + rng.normal()))
            labels.append((f"p{e}", h, int(onset is not None and h >= onset - 6)))
    pd.DataFrame(rows, columns=["id", "time", "variable", "value"]).to_csv(tmp_path / "obs.csv", index=False)
    pd.DataFrame(labels, columns=["id", "time", "label"]).to_csv(tmp_path / "labels.csv", index=False)
    estimator = Estimator(
        "gru", "irregular", model_params={"hidden_size": 8, "head_hidden": 8}, training={"max_epochs": 2},
        trainer={"accelerator": "cpu"},
        data_params={"observations": str(tmp_path / "obs.csv"), "labels": str(tmp_path / "labels.csv"),
                     "label_time_col": "time", "split_fractions": [0.5, 0.25, 0.25]},
    )  # fmt: skip
    estimator.fit()
    assert estimator.meta_["task"] == "binary_per_step"
    assert "utility" in estimator.metrics_ and -5 < estimator.metrics_["utility"] <= 1


def test_per_step_predictions_read_on_a_clock_hold_what_was_known_at_each_time():
    frame = pd.DataFrame({
        "id": ["a"] * 4 + ["b"] * 2 + ["c"],
        "hours_since_start": np.array([0.0, 0.4, 2.0, 2.9, 1.5, 1.5, 0.0], dtype=np.float32),
        "probability": np.arange(7) / 10,
    })  # fmt: skip
    clocked = on_a_clock(frame, "id", "hours_since_start", 1.0)
    assert list(clocked.columns) == ["id", "hours_since_start", "step_hours_since_start", "probability"]
    # independently: for each record and hour from its first step's to the first at or after its last, the
    # latest step at or before that hour
    grid = pd.DataFrame({"id": ["a"] * 4 + ["b", "c"], "hours_since_start": [0.0, 1.0, 2.0, 3.0, 2.0, 0.0]})
    steps = frame.rename(columns={"hours_since_start": "step"}).assign(step=lambda f: f.step.astype(float))
    ordered = steps.reset_index().sort_values("step", kind="stable")  # ties keep their order: the later step last
    expected = pd.merge_asof(grid.sort_values("hours_since_start"), ordered, left_on="hours_since_start",
                             right_on="step", by="id", direction="backward")  # fmt: skip
    expected = expected.sort_values(["id", "hours_since_start"]).reset_index(drop=True)
    np.testing.assert_array_equal(clocked["id"], expected["id"])
    np.testing.assert_allclose(clocked["hours_since_start"], expected["hours_since_start"])
    np.testing.assert_allclose(clocked["probability"], expected["probability"])  # b at 2 h: its later step at 1.5
    # a float32 time a rounding after a multiple counts as at it
    tenth = pd.DataFrame({"id": ["a", "a"], "t": np.array([0.0, 0.3], dtype=np.float32), "probability": [0.1, 0.9]})
    assert on_a_clock(tenth, "id", "t", 0.1)["probability"].tolist() == [0.1, 0.1, 0.1, 0.9]


def test_a_clock_that_is_not_a_positive_number_or_too_fine_is_refused(monkeypatch):
    frame = pd.DataFrame({"id": ["a", "a"], "t": [0.0, 100.0], "probability": [0.1, 0.2]})
    for every in (0.0, -1.0, float("nan"), float("inf"), "1", True, None):  # text and truth values: from Python
        with pytest.raises(ConfigError, match=r"every \(--every\) must be a positive number"):
            on_a_clock(frame, "id", "t", every)
    monkeypatch.setattr("tsmoe.predict.MAX_CLOCK_ROWS", 50)
    with pytest.raises(ConfigError, match="would write 101 rows"):
        on_a_clock(frame, "id", "t", 1.0)


def test_metrics_at_a_time_are_left_out_where_no_record_has_a_step_since_the_time_before():
    rng = np.random.default_rng(0)
    record = np.repeat(np.arange(40), 8)
    time = np.tile(np.linspace(0.0, 11.0, 8), 40)  # every record cut at 11 h, as data.until=12 would
    label = np.repeat(np.arange(40) % 2, 8)
    output = torch.tensor(rng.normal(size=len(record)) + label, dtype=torch.float32)
    table = torch.tensor(np.stack([label, record, time], axis=1), dtype=torch.float64)
    metrics = get_task("binary_per_step").metrics(output, table, intervals=False)
    assert {"auroc_at_6", "auroc_at_12", "auroc_last"} <= set(metrics)
    assert not {"auroc_at_24", "auroc_at_36", "auroc_at_48"} & set(metrics)  # the 12 h steps again
    assert metrics["auroc_at_12"] == metrics["auroc_last"]
