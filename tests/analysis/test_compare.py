"""``tsmoe compare``: DeLong's test against its definition, the Diebold-Mariano test of window losses on
known cases and on its level, and two runs compared on the same items (runs on other items refused)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tiny_runs import FAST, TINY_LSTM, tiny_lstm
from tsmoe.analysis.paired_tests import delong_test, diebold_mariano, paired_bootstrap
from tsmoe.cli import main
from tsmoe.ensemble import Ensemble
from tsmoe.estimator import Estimator
from tsmoe.metrics import auroc_of, brier_score


def delong_by_definition(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    """The variance of AUROC_a - AUROC_b from the pairwise kernel psi(x, y) written out (O(m n))."""
    def components(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = p[y == 1][:, None], p[y == 0][None, :]
        psi = (pos > neg) + 0.5 * (pos == neg)
        return psi.mean(1), psi.mean(0)

    (a10, a01), (b10, b01) = components(a), components(b)
    s10, s01 = np.cov([a10, b10]), np.cov([a01, b01])
    c = np.array([1, -1])
    return c @ s10 @ c / len(a10) + c @ s01 @ c / len(a01)


def test_delong_matches_its_definition_and_a_paired_bootstrap():
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.2).astype(int)
    shared = rng.normal(size=600)
    a = np.round(shared + 1.0 * y + rng.normal(0, 0.5, 600), 1)  # ties
    b = np.round(shared + 0.7 * y + rng.normal(0, 0.5, 600), 1)
    test = delong_test(a, b, y)
    assert test["difference"] == pytest.approx(auroc_of(a, y) - auroc_of(b, y))
    sd = (test["interval"][1] - test["interval"][0]) / (2 * 1.959963984540054)
    assert sd**2 == pytest.approx(delong_by_definition(a, b, y), rel=1e-9)
    boot = paired_bootstrap(auroc_of, a, b, y, resamples=2000)
    width = test["interval"][1] - test["interval"][0]
    assert boot["interval"][1] - boot["interval"][0] == pytest.approx(width, rel=0.2)
    assert test["p_value"] < 0.05  # a is better by construction
    same = delong_test(a, a, y)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_diebold_mariano_finds_a_real_difference_and_holds_its_level():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=2000)
    smoothed = np.convolve(noise, np.ones(10) / 10, mode="same")  # autocorrelated losses, as overlapping windows
    base = 1 + smoothed**2
    better = diebold_mariano(base, base + 0.05, batch=20)
    assert better["difference"] == pytest.approx(-0.05) and better["p_value"] < 1e-6 and better["batches"] == 100
    d = base - base[::-1]  # batches of one item: the ordinary paired t-test
    single = diebold_mariano(base, base[::-1], batch=1)
    assert single["statistic"] == pytest.approx(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))
    # a true null, differentials the mean of 12 shocks (windows of horizon 12): rejected near 5 % of the time
    # at the 5 % level, where a Newey-West variance with Bartlett weights up to lag 11 rejects it far more often
    rejected = 0
    for _ in range(400):
        null = np.convolve(rng.normal(size=400 + 11), np.ones(12) / 12, mode="valid")
        rejected += diebold_mariano(null, np.zeros(400), batch=24)["p_value"] < 0.05
    assert 0.02 <= rejected / 400 <= 0.09
    assert diebold_mariano(base[:30], base[:30] + 1, batch=24)["p_value"] is None  # one batch: no test


@pytest.fixture(scope="module")
def two_runs(small_physionet, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    tiny_lstm(0, small_physionet).fit(run_dir=root / "a")
    tiny_lstm(1, small_physionet, split_file=str(root / "a" / "split.json")).fit(run_dir=root / "b")
    tiny_lstm(2, small_physionet).fit(run_dir=root / "other-split")  # a split drawn by its own seed
    return root


@pytest.mark.slow
def test_compare_two_runs_on_the_same_items(two_runs, capsys):
    a, b = two_runs / "a", two_runs / "b"
    assert main(["compare", str(a), str(b), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["metrics"]) == {"auroc", "auprc", "brier"} and result["items"] == 40
    auroc = result["metrics"]["auroc"]
    assert auroc["test"] == "DeLong" and auroc["interval"][0] <= auroc["difference"] <= auroc["interval"][1]
    assert auroc["a"] == pytest.approx(json.loads((a / "metrics.json").read_text())["auroc"], abs=1e-6)
    assert result["metrics"]["brier"]["a"] == pytest.approx(json.loads((a / "metrics.json").read_text())["brier"])
    assert main(["compare", str(a), str(b)]) == 0
    assert "DeLong" in capsys.readouterr().out
    assert main(["compare", str(a), str(two_runs / "other-split")]) == 2
    assert "other test splits" in capsys.readouterr().err


@pytest.mark.slow
def test_an_ensemble_compares_as_it_scores_and_members_split_otherwise_are_refused(two_runs, capsys):
    a, b = two_runs / "a", two_runs / "b"
    assert main(["compare", f"{a}+{b}", str(a), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    ensemble = Ensemble.load([a, b]).evaluate()["ensemble"]
    assert result["run_a"] == f"{a}+{b}" and result["items"] == 40
    for metric in ("auroc", "auprc", "brier"):
        assert result["metrics"][metric]["a"] == pytest.approx(ensemble[metric], abs=1e-6)
    assert result["metrics"]["auroc"]["b"] == pytest.approx(json.loads((a / "metrics.json").read_text())["auroc"])
    assert main(["compare", f"{a}+{two_runs / 'other-split'}", str(b)]) == 2
    assert "ensemble members were split differently" in capsys.readouterr().err
    assert main(["compare", f"{a}+{a}", str(b)]) == 2
    assert "is given twice" in capsys.readouterr().err
    assert main(["compare", f"{a}+", str(b)]) == 2  # not the current folder read as a run
    assert "a run folder's name is empty" in capsys.readouterr().err


@pytest.mark.slow
def test_runs_that_scale_values_otherwise_still_compare_on_the_same_stays(two_runs, small_physionet, capsys):
    # P1's MR-MoE reads quantile-scaled values and its ladder z-scores: the stays and targets are the same
    quantile = Estimator("lstm", "physionet2012", seed=3, model_params=TINY_LSTM, training=FAST,
                         data_params={"root": str(small_physionet), "split_file": str(two_runs / "a" / "split.json"),
                                      "value_scaling": "quantile"}, trainer={"accelerator": "cpu"})  # fmt: skip
    quantile.fit(run_dir=two_runs / "quantile")
    assert main(["compare", str(two_runs / "a"), str(two_runs / "quantile"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 40


@pytest.mark.slow
def test_compare_refuses_runs_of_other_tasks_or_data_and_compares_forecasters(two_runs, tmp_path, capsys):
    sets = ["--set", "training.max_epochs=1", "--set", "data.lookback=24", "--set", "data.horizon=6"]
    for name, kernel in (("f1", 5), ("f2", 25)):
        assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(tmp_path / name), *sets,
                     "--set", f"model.moving_avg={kernel}"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "f1"), str(tmp_path / "f2"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["mse"]["test"] == "Diebold-Mariano, batch-means variance (12 windows a batch)"
    assert "warning" not in result  # 2,875 windows of horizon 6
    stored = json.loads((tmp_path / "f1" / "metrics.json").read_text())
    assert result["metrics"]["mse"]["a"] == pytest.approx(stored["mse"])
    assert main(["compare", str(tmp_path / "f1"), str(two_runs / "a")]) == 2
    assert "only runs of one task compare" in capsys.readouterr().err
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(tmp_path / "f3"), *sets[:4], "--set",
                 "data.horizon=12"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "f1"), str(tmp_path / "f3")]) == 2
    assert "data.horizon: 6 against 12" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_with_text_compares_with_the_same_model_without_text(tmp_path, capsys):
    # text or none changes what the model reads, not the windows scored: P2's and P3's question
    sets = ["data.domain=SocialGood", "training.max_epochs=1", "training.refit=false"]
    readers = {"text": ["data.text_encoder=hashing"], "none": ["data.text_encoder=none", "model.text=none"]}
    for name, text in readers.items():
        assert main(["train", "configs/mome-mome_timemmd.yaml", "--out", str(tmp_path / name),
                     *[f"--set={s}" for s in [*sets, *text]]]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "text"), str(tmp_path / "none"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    stored = json.loads((tmp_path / "none" / "metrics.json").read_text())
    assert result["metrics"]["mse"]["b"] == pytest.approx(stored["mse"])


def test_too_few_windows_for_the_test_are_said_so():
    from tsmoe.analysis.compare import too_few_windows

    assert "798 windows hold 0.6 stretches" in too_few_windows(798, 720)  # Exchange's test split at horizon 720
    assert too_few_windows(2161, 720) is not None and too_few_windows(2545, 336) is None  # ETTh1 at 720 and 336
    assert too_few_windows(5, 0) is None  # regression: independent items


def test_brier_and_paired_bootstrap_agree_on_identical_models():
    y = np.array([0, 1] * 50)
    p = np.linspace(0.1, 0.9, 100)
    same = paired_bootstrap(brier_score, p, p, y)
    assert same["difference"] == 0 and same["interval"] == [0.0, 0.0] and same["p_value"] == 1.0
    # every sample on one side: the smallest p-value 1,000 samples can show, not 0
    clear = paired_bootstrap(brier_score, np.where(y == 1, 0.9, 0.1), np.full(100, 0.5), y, resamples=1000)
    assert clear["interval"][1] < 0 and clear["p_value"] == pytest.approx(2 / 1001)


def test_a_bootstrap_within_classes_keeps_each_class_count_and_finds_a_better_classifier():
    from tsmoe.metrics import multiclass_accuracy, multiclass_brier, multiclass_log_loss

    y = np.repeat([0, 1, 2], [10, 30, 60])
    share_of_last = paired_bootstrap(lambda p, t: float(np.mean(t == 2)), np.zeros((100, 3)), np.ones((100, 3)), y,
                                     by_class=True)  # fmt: skip
    assert share_of_last["interval"] == [0.0, 0.0]  # every sample holds 60 of class 2
    right = np.eye(3)[y] * 0.8 + 0.2 / 3  # 0.8667 on the label
    unsure = np.full((100, 3), 1 / 3)
    assert multiclass_accuracy(right, y) == 1.0  # Brier: (1 - 0.8667)^2 + 2 (0.0667)^2 = 6 (0.2 / 3)^2
    assert multiclass_brier(right, y) == pytest.approx(6 * (0.2 / 3) ** 2)
    assert multiclass_log_loss(unsure, y) == pytest.approx(np.log(3))
    better = paired_bootstrap(multiclass_log_loss, right, unsure, y, by_class=True)
    assert better["difference"] == pytest.approx(-np.log(0.8 + 0.2 / 3) - np.log(3))
    assert better["interval"][1] < 0 and better["p_value"] == pytest.approx(2 / 1001)
