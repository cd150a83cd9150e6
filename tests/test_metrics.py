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


def test_multiclass_accuracy():
    logits = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]])
    metrics = get_task("multiclass").metrics(logits, torch.tensor([0, 1, 2, 1]))
    assert metrics["accuracy"] == pytest.approx(0.75)
