"""``model.quantiles``: any forecaster trained with the pinball loss, scored by CRPS, WQL and the coverage
of its outer levels, predicting quantile columns; bad levels refused before training."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.metric_dicts import flat
from tsmoe.cli import main
from tsmoe.config import load_config
from tsmoe.errors import ConfigError
from tsmoe.estimator import Estimator
from tsmoe.paths import shipped_data_dir

SETS = ["--set", "training.max_epochs=2", "--set", "data.lookback=24", "--set", "data.horizon=6",
        "--set", "training.lr=0.01"]  # fmt: skip


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ("[0.9, 0.5, 0.1]", "must increase without repeats"),
        ("[0.1, 0.5, 0.5, 0.9]", "must increase without repeats"),
        ("[0.0, 0.5, 1.0]", "must lie in (0, 1)"),
        ("[0.1, 0.9]", "the median 0.5 must be among the levels"),
        ("[]", "give the levels"),
        ("[0.1, a, 0.9]", "a list of numbers"),
    ],
)
def test_bad_quantile_levels_are_refused_before_training(levels, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("configs/dlinear-etth1.yaml", [f"model.quantiles={levels}"])


def test_quantiles_are_for_forecasting():
    """The LSTM forecasts windows, but PhysioNet holds records: refused when the config is read."""
    with pytest.raises(ConfigError, match="data set 'physionet2012' holds records of irregular observations"):
        load_config("configs/lstm-physionet2012.yaml", ["model.quantiles=[0.1, 0.5, 0.9]"])
    assert load_config("configs/lstm-etth1.yaml", ["model.quantiles=[0.1, 0.5, 0.9]"]).model["quantiles"] == [
        0.1, 0.5, 0.9]  # fmt: skip


def test_a_quantile_forecaster_trains_scores_reloads_and_predicts_its_quantiles(tmp_path):
    run = tmp_path / "q"
    assert main(["train", "configs/dlinear-etth1.yaml", "--out", str(run), *SETS,
                 "--set", "model.quantiles=[0.1, 0.5, 0.9]"]) == 0  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"mse", "mae", "crps", "wql", "coverage_80", "width_80"} <= set(metrics)
    assert 0.3 < metrics["coverage_80"] <= 1.0 and metrics["width_80"] > 0
    assert flat(Estimator.load(run).evaluate()) == pytest.approx(flat(metrics), rel=1e-6)
    frame = pd.read_csv(shipped_data_dir() / "ett" / "ETTh1.csv.gz").tail(60)
    frame.to_csv(tmp_path / "recent.csv", index=False)
    assert main(["predict", str(run), str(tmp_path / "recent.csv"), "-o", str(tmp_path / "fc.csv")]) == 0
    table = pd.read_csv(tmp_path / "fc.csv")
    assert (table["OT_q10"] <= table["OT_q50"]).all() and (table["OT_q50"] <= table["OT_q90"]).all()
    assert table["OT"].tolist() == pytest.approx(table["OT_q50"].tolist())  # the median is the point forecast
    assert main(["report", str(run)]) == 0
    assert '<section id="fans">' in (run / "report.html").read_text()


def test_the_report_of_a_quantile_mome_keeps_its_expert_read_outs(tmp_path):
    run = tmp_path / "qm"
    sets = ["data.domain=SocialGood", "data.text_encoder=hashing", "training.max_epochs=1",
            "model.quantiles=[0.1, 0.5, 0.9]"]  # fmt: skip
    assert main(["train", "configs/mome-mome_timemmd.yaml", "--out", str(run), *[f"--set={s}" for s in sets]]) == 0
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert all(f'<section id="{name}">' in page for name in ("fans", "usage", "bound"))
    windows = pd.DataFrame({"input_seq": ["[" + ", ".join(str(float(v)) for v in range(14)) + "]"], "text": [""]})
    windows.to_csv(tmp_path / "windows.csv", index=False)  # a table of windows, as the MoME files hold them
    assert main(["predict", str(run), str(tmp_path / "windows.csv"), "-o", str(tmp_path / "fc.csv")]) == 0
    table = pd.read_csv(tmp_path / "fc.csv")
    assert list(table.columns) == ["row", "step", "value", "value_q10", "value_q50", "value_q90"]
    assert table["value"].tolist() == pytest.approx(table["value_q50"].tolist())
