"""Venn-Abers calibration: its bounds are the two isotonic regressions of the definition; a run calibrated so
keeps its map, made from the validation split only, and gives the interval wherever it predicts (tables, the
Python API, the stream) after reloading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.isotonic import IsotonicRegression

from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.data.sources.physionet2012 import load_physionet2012
from tsmoe.errors import ConfigError, DataError
from tsmoe.stream import Risk
from tsmoe.training.calibration import check_calibration_method
from tsmoe.training.venn_abers import VennAbers, one_per_entity

TINY = {"hidden_size": 8, "d_model": 8}


def isotonic_at(scores: np.ndarray, labels: np.ndarray, score: float, label: int) -> float:
    """The definition: the isotonic regression of the validation items plus ``(score, label)``, at ``score``."""
    fit = IsotonicRegression(y_min=0.0, y_max=1.0).fit(np.r_[scores, score], np.r_[labels, label])
    return float(fit.predict([score])[0])


def test_the_bounds_are_the_two_isotonic_regressions_with_the_new_item_labelled_0_and_1():
    rng = np.random.default_rng(0)
    scores = np.round(rng.beta(1, 6, 300), 3)  # rounded: many ties, as a classifier's probabilities have
    labels = (rng.random(300) < 1.4 * scores).astype(int)
    venn_abers = VennAbers.fit(scores, labels)
    new = np.r_[rng.random(30) * 0.6, scores[:10], 0.0, 1.0]  # between, on and beyond the validation scores
    merged, low, high = venn_abers.probability(new)
    for s, p0, p1 in zip(new, low, high, strict=True):
        assert p0 == pytest.approx(isotonic_at(scores, labels, s, 0), abs=1e-12)
        assert p1 == pytest.approx(isotonic_at(scores, labels, s, 1), abs=1e-12)
    assert np.all(low <= merged) and np.all(merged <= high) and np.all((merged > 0) & (merged < 1))
    order = np.argsort(new)
    for bound in (low, high, merged):  # each keeps the scores' order
        assert np.all(np.diff(bound[order]) >= -1e-12)
    saved = VennAbers.from_arrays(venn_abers.arrays())
    np.testing.assert_array_equal(saved.probability(new)[0], merged)


def test_one_item_per_entity_is_drawn_from_all_of_its_items_the_same_way_every_time():
    entity = np.repeat(np.arange(50), np.arange(1, 51))  # entity e has e + 1 items
    kept = one_per_entity(entity, seed=0)
    assert np.array_equal(np.unique(entity[kept]), np.arange(50)) and len(kept) == 50
    np.testing.assert_array_equal(kept, one_per_entity(entity, seed=0))
    draws = np.stack([one_per_entity(entity, seed) for seed in range(400)])  # the last entity's 50 items
    assert len(np.unique(draws[:, -1])) > 40  # are all drawn, not always the first or last


def test_bad_calibration_requests_are_refused():
    with pytest.raises(DataError, match="both classes"):
        VennAbers.fit(np.array([0.1, 0.4, 0.3]), np.array([0, 0, 0]))
    with pytest.raises(ConfigError, match="Venn-Abers calibration is for binary risks, not task 'multiclass'"):
        check_calibration_method("venn_abers", "multiclass", "training.calibrate")
    with pytest.raises(ConfigError, match="Venn-Abers calibration is for binary risks, not task 'forecast'"):
        check_calibration_method("venn_abers", "forecast", "calibration")
    check_calibration_method("venn_abers", "binary_per_step", "training.calibrate")  # every step's risk: allowed


@pytest.fixture(scope="module")
def runs(small_physionet, tmp_path_factory):
    """A tiny MR-MoE trained with ``training.calibrate: venn_abers``, and the same run trained raw."""
    folder = tmp_path_factory.mktemp("venn-abers")

    def train(name: str, **training) -> Estimator:
        estimator = Estimator(
            "mrmoe", "physionet2012", model_params=TINY, trainer={"accelerator": "cpu"},
            data_params={"root": str(small_physionet), "split_file": None},
            training={"max_epochs": 1, "batch_size": 32, **training},
        )  # fmt: skip
        return estimator.fit(run_dir=folder / name)

    return folder, train("calibrated", calibrate="venn_abers"), train("raw")


@pytest.mark.slow
def test_the_map_is_made_from_the_validation_split_and_predictions_use_it(runs):
    folder, calibrated, raw = runs
    assert calibrated.meta_["calibration"]["method"] == "venn_abers"
    assert (folder / "calibrated" / "calibration.safetensors").exists()
    assert not (folder / "raw" / "calibration.safetensors").exists()
    prepared = raw.prepare_data()
    logits, targets = raw._outputs(prepared.val, prepared.collate)  # the same seed trained the same weights
    expected = VennAbers.fit(torch.sigmoid(logits).numpy(), targets["target"].numpy())
    for key, values in expected.arrays().items():
        np.testing.assert_array_equal(calibrated.venn_abers_.arrays()[key], values)
    test_logits, _ = raw._outputs(prepared.test, prepared.collate)
    p_raw = torch.sigmoid(test_logits.double()).numpy()  # as the run computes it: in float64 from the logits
    merged, low, high = expected.probability(p_raw)
    np.testing.assert_allclose(calibrated.predict_proba()[:, 1], merged, atol=1e-6)
    np.testing.assert_allclose(calibrated.predict_proba_interval(), np.stack([low, high], 1), atol=1e-6)
    order = np.argsort(p_raw, kind="stable")  # the order is kept, but ties are made (the map is a step function)
    assert np.all(np.diff(calibrated.predict_proba()[order, 1]) >= -1e-6)
    reloaded = Estimator.load(folder / "calibrated")
    np.testing.assert_allclose(reloaded.predict_proba_interval(), np.stack([low, high], 1), atol=1e-6)
    assert reloaded.evaluate()["brier"] == pytest.approx(calibrated.metrics_["brier"])
    with pytest.raises(ConfigError, match="needs a run calibrated with venn_abers"):
        raw.predict_proba_interval()
    assert main(["report", str(folder / "calibrated")]) == 0  # its reliability diagram: raw and Venn-Abers
    page = (folder / "calibrated" / "report.html").read_text()
    assert "Venn-Abers map made from the validation split" in page and "<td>Venn-Abers</td>" in page


@pytest.mark.slow
def test_a_raw_run_is_calibrated_afterwards_and_predicts_and_streams_the_interval(runs, small_physionet, capsys):
    folder, calibrated, _ = runs
    run = folder / "raw"
    assert main(["calibrate", str(run), "--method", "venn_abers"]) == 0
    assert "Venn-Abers map fitted on the validation split" in capsys.readouterr().out
    later = Estimator.load(run)
    np.testing.assert_allclose(later.predict_proba_interval(), calibrated.predict_proba_interval(), atol=1e-6)
    out = folder / "risks.csv"
    assert main(["predict", str(run), str(small_physionet), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["record_id", "probability", "probability_low", "probability_high", "prediction"]
    assert (table.probability_low <= table.probability + 1e-7).all()
    assert (table.probability <= table.probability_high + 1e-7).all()
    steps = folder / "steps.csv"  # after every step: the same columns; each stay's last step is its row above
    assert main(["predict", str(run), str(small_physionet), "-o", str(steps), "--per-step"]) == 0
    last = pd.read_csv(steps).groupby("record_id", sort=False).last()
    columns = ["probability", "probability_low", "probability_high"]
    differ = (last[columns] - table.set_index("record_id").loc[last.index, columns]).abs().max(axis=1) > 1e-6
    # the map is a step function: a score within float noise of a validation score may land on either side
    assert differ.mean() < 0.01
    # the stream gives the same risk and interval after a stay's last observation
    data = load_physionet2012(small_physionet)
    i = int(np.argmax(data.lengths()))
    stream = later.stream(interval=True)
    static = {name: float(v) for name, v in zip(data.static_names, data.static[i], strict=True) if not np.isnan(v)}
    stream.open("stay", start=0.0, static=static)
    for step in range(data.offsets[i], data.offsets[i + 1]):
        row = {name: float(data.values[step, j]) for j, name in enumerate(data.variables)
               if not np.isnan(data.values[step, j])}  # fmt: skip
        risk = stream.update("stay", float(data.times[step]), row)
    assert isinstance(risk, Risk) and risk.low <= risk.probability <= risk.high
    expected = table.set_index("record_id").loc[data.record_ids[i]]
    assert risk == pytest.approx((expected.probability, expected.probability_low, expected.probability_high), abs=1e-5)
    assert isinstance(later.stream().update("other", 0.0, row), float)  # without interval: the probability
    tempered = Estimator.load(run)
    tempered.calibrate(method="temperature")  # in memory: a temperature replaces the map
    assert tempered.venn_abers_ is None
    with pytest.raises(ConfigError, match="needs a run calibrated with venn_abers"):
        tempered.stream(interval=True)


@pytest.mark.slow
def test_a_per_step_run_makes_its_map_from_one_step_per_validation_stay(small_physionet, tmp_path):
    estimator = Estimator(
        "mrmoe", "physionet2012", model_params=TINY, trainer={"accelerator": "cpu"},
        data_params={"root": str(small_physionet), "split_file": None, "per_step": True},
        training={"max_epochs": 1, "batch_size": 32, "calibrate": "venn_abers"},
    ).fit(run_dir=tmp_path / "run")  # fmt: skip
    record = estimator.meta_["calibration"]
    prepared = estimator.prepare_data()
    logits, targets = estimator._outputs(prepared.val, prepared.collate, raw=True)
    stays = len(np.unique(targets["record"].numpy()))
    assert record["validation_items"] == stays < record["validation_steps"] == len(logits)
    kept = one_per_entity(targets["record"].numpy(), estimator.config.seed)
    expected = VennAbers.fit(torch.sigmoid(logits).numpy()[kept], targets["target"].numpy()[kept])
    np.testing.assert_array_equal(estimator.venn_abers_.scores, expected.scores)
    np.testing.assert_array_equal(estimator.venn_abers_.high, expected.high)
