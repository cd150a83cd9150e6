"""Distillation: a classifier trained towards its teachers' mean probability (training.distill_from)."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.tiny_runs import tiny_lstm as lstm
from tsmoe.errors import ConfigError, DataError
from tsmoe.estimator import Estimator
from tsmoe.metrics import BINARY_METRICS
from tsmoe.tasks import get_task
from tsmoe.training.distillation import SoftTargets, teacher_probabilities, with_soft_targets


@pytest.fixture(scope="module")
def teachers(small_physionet, tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    lstm(0, small_physionet).fit(run_dir=root / "t0")
    lstm(1, small_physionet, split_file=str(root / "t0" / "split.json")).fit(run_dir=root / "t1")
    return [root / "t0", root / "t1"]


def test_the_soft_target_mixes_label_and_teacher():
    items = [{"target": torch.tensor(1)}, {"target": torch.tensor(0)}]
    soft = SoftTargets(items, torch.tensor([0.2, 0.6]), weight=0.25)
    assert float(soft[0]["soft_target"]) == pytest.approx(0.75 * 1 + 0.25 * 0.2)
    assert float(soft[1]["soft_target"]) == pytest.approx(0.25 * 0.6)
    multiclass = SoftTargets(items, torch.tensor([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]), weight=0.5)
    torch.testing.assert_close(multiclass[0]["soft_target"], torch.tensor([0.05, 0.6, 0.35]))
    batch = with_soft_targets(lambda xs: {"target": torch.stack([x["target"] for x in xs])})([soft[0], soft[1]])
    assert batch["soft_target"].shape == (2,)
    with pytest.raises(ConfigError, match="distill_weight"):
        SoftTargets(items, torch.tensor([0.2, 0.6]), weight=0.0)


def test_the_loss_scores_the_soft_target_in_training_and_the_label_without_it():
    logits = torch.tensor([0.3, -1.2])
    batch = {"target": torch.tensor([1, 0]), "soft_target": torch.tensor([0.7, 0.4])}
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["soft_target"])
    torch.testing.assert_close(get_task("binary").loss(logits, batch, [], "window"), expected)
    hard = get_task("binary").loss(logits, {"target": batch["target"]}, [], "window")
    assert not torch.isclose(hard, expected)
    # cross-entropy is linear in its target: (1 - w) CE(y) + w CE(p)
    p, w = torch.tensor([0.2, 0.6]), 0.3
    mixed = {"target": batch["target"], "soft_target": (1 - w) * batch["target"].float() + w * p}
    soft = get_task("binary").loss(logits, {"target": batch["target"], "soft_target": p}, [], "window")
    parts = (1 - w) * hard + w * soft
    torch.testing.assert_close(get_task("binary").loss(logits, mixed, [], "window"), parts)


def test_teacher_probabilities_are_the_teachers_mean_over_the_training_items(teachers):
    loaded = [Estimator.load(folder) for folder in teachers]
    prepared = loaded[0].prepare_data()
    mean = teacher_probabilities(teachers, prepared, "physionet2012", load_run=Estimator.load)
    each = [torch.sigmoid(t.scored_outputs(t.prepare_data(), t.prepare_data().train)[0]) for t in loaded]
    torch.testing.assert_close(mean, (each[0] + each[1]) / 2)
    assert mean.shape == (len(prepared.train),)


def test_a_student_trains_towards_its_teachers(teachers, small_physionet, tmp_path):
    student = lstm(
        2, small_physionet, split_file=str(teachers[0] / "split.json"), distill_from=list(map(str, teachers))
    )
    student.fit(run_dir=tmp_path / "student")
    assert set(student.metrics_) == set(BINARY_METRICS)
    assert Estimator.load(tmp_path / "student").config.training.distill_from == list(map(str, teachers))
    plain = lstm(2, small_physionet, split_file=str(teachers[0] / "split.json")).fit()  # the same run, hard labels
    assert plain.metrics_ != student.metrics_
    weights = zip(plain.model_.state_dict().values(), student.model_.state_dict().values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in weights)


def test_a_teacher_trained_on_another_split_is_refused_before_training(teachers, small_physionet, tmp_path):
    student = lstm(5, small_physionet, distill_from=[str(teachers[0])])  # its own seeded split
    with pytest.raises(DataError, match="trained on another split"):
        student.fit(run_dir=tmp_path / "leaky")
    assert not (tmp_path / "leaky" / "model.safetensors").exists()


def test_distillation_is_refused_for_forecasting(teachers, tmp_path):
    forecaster = Estimator(
        "dlinear",
        "etth1",
        data_params={"lookback": 24, "horizon": 6},
        training={"max_epochs": 1, "distill_from": [str(teachers[0])]},
        trainer={"accelerator": "cpu"},
    )
    with pytest.raises(ConfigError, match="distill_from is for classifiers"):
        forecaster.fit()


def test_a_trend_classifier_distils_from_a_trend_teacher(tmp_path):
    # the windows' own arrays hold forecast targets; the labels the teacher is checked against are the classes
    data = {"domain": "SocialGood", "text_encoder": "hashing", "task": "trend"}

    def trend_run(**training):
        return Estimator("mome", "mome_timemmd", data_params=data, training={"max_epochs": 1, **training},
                         trainer={"accelerator": "cpu"})  # fmt: skip

    trend_run().fit(run_dir=tmp_path / "teacher")
    prepared = Estimator.load(tmp_path / "teacher").prepare_data()
    mean = teacher_probabilities([tmp_path / "teacher"], prepared, "mome_timemmd", load_run=Estimator.load)
    assert mean.shape == (len(prepared.train), 3)
    with pytest.raises(ConfigError, match="names training items by record id"):  # windows have no ids
        teacher_probabilities(
            [tmp_path / "teacher", tmp_path / "probabilities.csv"], prepared, "mome_timemmd", load_run=Estimator.load
        )
    torch.testing.assert_close(mean.sum(1), torch.ones(len(prepared.train)))
    student = trend_run(distill_from=[str(tmp_path / "teacher")]).fit()
    assert set(student.metrics_) == {"accuracy", "auroc", "brier", "ece", "log_loss"}


def training_ids(teacher_folder) -> np.ndarray:
    return Estimator.load(teacher_folder).prepare_data().train.data.record_ids


def test_a_teacher_file_and_a_run_folder_mix_by_their_weights(teachers, tmp_path):
    ids = training_ids(teachers[0])
    given = np.linspace(0.05, 0.95, len(ids))
    file = tmp_path / "gbm.csv"
    pd.DataFrame({"record_id": ids[::-1], "probability": given[::-1]}).to_csv(file, index=False)  # any row order
    prepared = Estimator.load(teachers[0]).prepare_data()
    folder_only = teacher_probabilities([teachers[0]], prepared, "physionet2012", load_run=Estimator.load)
    mixed = teacher_probabilities(
        [teachers[0], file], prepared, "physionet2012", weights=[3, 1], load_run=Estimator.load
    )
    torch.testing.assert_close(mixed, 0.75 * folder_only + 0.25 * torch.tensor(given, dtype=torch.float32))
    with pytest.raises(ConfigError, match="one positive weight per teacher"):
        teacher_probabilities([teachers[0], file], prepared, "physionet2012", weights=[1], load_run=Estimator.load)


def test_a_student_learns_from_a_teacher_file_that_names_training_stays_only(teachers, small_physionet, tmp_path):
    split = str(teachers[0] / "split.json")
    ids = training_ids(teachers[0])
    file = tmp_path / "teacher.csv"
    pd.DataFrame({"record_id": ids, "probability": 0.3}).to_csv(file, index=False)
    student = lstm(2, small_physionet, split_file=split, distill_from=[str(file)], distill_weight=0.9).fit()
    plain = lstm(2, small_physionet, split_file=split).fit()
    assert student.metrics_ != plain.metrics_
    validation_id = Estimator.load(teachers[0]).prepare_data().val.data.record_ids[0]
    pd.DataFrame({"record_id": [*ids, validation_id], "probability": 0.3}).to_csv(file, index=False)
    leaky = lstm(2, small_physionet, split_file=split, distill_from=[str(file)])
    with pytest.raises(DataError, match="not training items of this run"):
        leaky.fit(run_dir=tmp_path / "leaky")
    assert not (tmp_path / "leaky" / "model.safetensors").exists()


def test_teacher_weights_must_match_the_teachers_in_the_config(teachers, small_physionet):
    with pytest.raises(ConfigError, match="distill_teacher_weights needs one positive weight per entry"):
        lstm(0, small_physionet, distill_from=[str(teachers[0])], distill_teacher_weights=[1.0, 2.0])
