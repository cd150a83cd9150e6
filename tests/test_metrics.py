import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from tsmoe.tasks import get_task


def test_binary_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 500)
    logits = rng.normal(size=500) + target
    metrics = get_task("binary").metrics(torch.tensor(logits), torch.tensor(target))
    prob = 1 / (1 + np.exp(-logits))
    assert metrics["auroc"] == pytest.approx(roc_auc_score(target, prob), abs=1e-6)
    assert metrics["auprc"] == pytest.approx(average_precision_score(target, prob), abs=1e-6)
    assert metrics["accuracy"] == pytest.approx(((prob >= 0.5) == target).mean())


def test_forecast_metrics():
    target = torch.tensor([[1.0, 2.0], [4.0, 0.0]])
    output = torch.tensor([[2.0, 2.0], [2.0, 1.0]])
    metrics = get_task("forecast").metrics(output, target)
    assert metrics["mse"] == pytest.approx((1 + 0 + 4 + 1) / 4)
    assert metrics["mae"] == pytest.approx((1 + 0 + 2 + 1) / 4)
    assert metrics["mape"] == pytest.approx(100 * (1.0 + 0.0 + 0.5) / 3)  # the zero target is left out
    assert "mse_ci" not in metrics  # two windows of two steps: less than two blocks of two horizons
    many = get_task("forecast").metrics(output.repeat(8, 1), target.repeat(8, 1))  # 16 windows, 4 blocks
    low, high = many["mse_ci"]
    assert 0.5 <= low <= many["mse"] <= high <= 2.5  # the windows' losses are 0.5 and 2.5 by turns


def test_block_bootstrap_of_independent_items_matches_the_standard_error():
    from tsmoe.metrics import block_bootstrap_intervals

    losses = np.random.default_rng(0).exponential(size=4000)
    low, high = block_bootstrap_intervals({"mse": losses})["mse_ci"]
    expected = 2 * 1.96 * losses.std() / np.sqrt(len(losses))
    assert high - low == pytest.approx(expected, rel=0.1)
    assert block_bootstrap_intervals({"mse": losses}) == block_bootstrap_intervals({"mse": losses})  # seeded


def test_block_bootstrap_covers_the_mean_of_dependent_items_where_the_plain_bootstrap_does_not():
    """AR(1) losses (phi = 0.9, true mean 0) as overlapping windows give: 95 % intervals from blocks of 60
    items cover the mean in most of 60 series; the plain bootstrap, which takes the items as independent,
    in under half of them."""
    from tsmoe.metrics import block_bootstrap_intervals

    rng = np.random.default_rng(1)
    covered = {1: 0, 60: 0}
    for _ in range(60):
        noise, series = rng.normal(size=3000), np.zeros(3000)
        for t in range(1, 3000):
            series[t] = 0.9 * series[t - 1] + noise[t]
        for block in covered:
            low, high = block_bootstrap_intervals({"loss": series}, block, resamples=400)["loss_ci"]
            covered[block] += low <= 0 <= high
    assert covered[60] >= 48 and covered[1] <= 30


def test_block_bootstrap_keeps_blocks_within_their_series():
    """Two series of constant losses 0 and 10 (the second not a whole number of blocks): every resample
    keeps each series' count, so the mean is always 4 (12 items of 0, 8 of 10); across series it is not."""
    from tsmoe.metrics import block_bootstrap_intervals

    losses, groups = np.r_[np.zeros(12), np.full(8, 10.0)], np.r_[np.zeros(12, int), np.ones(8, int)]
    assert block_bootstrap_intervals({"mse": losses}, 3, groups)["mse_ci"] == pytest.approx([4.0, 4.0])
    low, high = block_bootstrap_intervals({"mse": losses}, 3)["mse_ci"]
    assert low < 3 and high > 5


def test_block_bootstrap_gives_no_interval_below_two_blocks(caplog):
    from tsmoe.metrics import block_bootstrap_intervals

    losses = np.random.default_rng(0).random(798)  # Exchange's test windows at horizon 720: blocks of 1,440
    assert block_bootstrap_intervals({"mse": losses}, 1440) == {}
    assert "798 items hold 1.0 blocks of 1440" in caplog.text
    assert set(block_bootstrap_intervals({"mse": losses}, 384)) == {"mse_ci"}  # two blocks and more: an interval


def test_multiclass_accuracy():
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]])
    metrics = get_task("multiclass").metrics(logits, torch.tensor([0, 1, 2, 1]))
    assert metrics["accuracy"] == pytest.approx(0.75)
    top = np.exp(3.0) / (np.exp(3.0) + 2)  # every row's largest probability; 3 of the 4 are right
    assert metrics["ece"] == pytest.approx(abs(0.75 - top))  # top-label calibration error


def test_auroc_and_average_precision_with_ties_equal_scikit_learn_and_torchmetrics():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from tsmoe.metrics import auroc_of, average_precision_of

    rng = np.random.default_rng(3)
    for n in (7, 60, 500):
        target = (rng.random(n) < 0.2).astype(int)
        target[:2] = [0, 1]
        prob = np.round(rng.random(n) * 0.5 + 0.3 * target, 1)  # coarse: many tied scores
        assert auroc_of(prob, target) == pytest.approx(roc_auc_score(target, prob), abs=1e-12)
        assert average_precision_of(prob, target) == pytest.approx(average_precision_score(target, prob), abs=1e-12)


def test_calibration_metrics_on_known_cases():
    from sklearn.metrics import log_loss as sk_log_loss

    from tsmoe.metrics import brier_score, expected_calibration_error, log_loss

    target = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 1])
    assert brier_score(np.full(10, 0.5), target) == pytest.approx(0.25)
    assert expected_calibration_error(np.full(10, 0.5), target) == pytest.approx(0.0)  # right on average
    assert expected_calibration_error(target.astype(float), target) == 0.0
    # two equal-mass bins, predicting 0.9 where half are positive and 0.1 where half are: |0.5 - 0.9| and |0.5 - 0.1|
    prob, labels = np.array([0.1, 0.1, 0.9, 0.9]), np.array([0, 1, 0, 1])
    assert expected_calibration_error(prob, labels, bins=2) == pytest.approx(0.4)
    prob = np.linspace(0.05, 0.95, 10)
    assert log_loss(prob, target) == pytest.approx(sk_log_loss(target, prob))


def test_bootstrap_intervals_are_seeded_hold_the_estimate_and_narrow_with_more_items():
    from tsmoe.metrics import auroc_of, bootstrap_intervals

    rng = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        target = (rng.random(n) < 0.15).astype(int)
        return np.clip(rng.normal(0.3 + 0.25 * target, 0.2), 0, 1), target

    prob, target = sample(400)
    first, again = bootstrap_intervals(prob, target), bootstrap_intervals(prob, target)
    assert first == again
    low, high = first["auroc_ci"]
    assert low < auroc_of(prob, target) < high
    big_prob, big_target = sample(4000)
    big_low, big_high = bootstrap_intervals(big_prob, big_target, resamples=300)["auroc_ci"]
    assert big_high - big_low < (high - low) / 2  # about 1 / sqrt(10) as wide
