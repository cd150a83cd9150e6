"""``training.refit``: the epoch count is chosen on validation, then a new model from the same seed trains
on the training and validation items for that many epochs, and it is the model kept."""

import math

import pandas as pd
import pytest

from tests.metric_dicts import flat
from tsmoe import Estimator
from tsmoe.cli import main
from tsmoe.ensemble import Ensemble
from tsmoe.errors import ConfigError
from tsmoe.io import read_weights

DATA = {"domain": "SocialGood", "text_encoder": "hashing"}
BATCH = 32


def mome(folder, **training) -> Estimator:
    settings = {"max_epochs": 3, "batch_size": BATCH, "patience": 3, **training}
    return Estimator("mome", "mome_timemmd", data_params=DATA, training=settings, trainer={"accelerator": "cpu"}).fit(
        run_dir=folder
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("refit")
    return mome(root / "plain"), mome(root / "refit", refit=True), root


def test_the_refit_trains_the_chosen_epochs_on_training_and_validation_items(runs):
    plain, refit, root = runs
    prepared = plain.prepare_data()
    # the choice is the plain run's (same seed, same first phase), and so are its validation metrics
    assert refit.meta_["best_epoch"] == plain.meta_["best_epoch"]
    before = flat(refit.meta_["refit"]["validation_before_refit"])
    assert before == pytest.approx(flat(plain.score_part(prepared, prepared.val)))
    epochs, items = plain.meta_["best_epoch"] + 1, len(prepared.train) + len(prepared.val)
    assert refit.meta_["refit"]["epochs"] == epochs and refit.meta_["refit"]["items"] == items
    logged = pd.read_csv(root / "refit" / "logs" / "refit" / "metrics.csv")
    assert logged["epoch"].tolist() == list(range(epochs))
    assert logged["step"].iloc[-1] + 1 == epochs * math.ceil(items / BATCH)  # every item, every epoch


def test_the_saved_model_is_the_refit_one(runs):
    plain, refit, root = runs
    first, second = (read_weights(root / name / "model.safetensors") for name in ("plain", "refit"))
    assert max((first[name] - second[name]).abs().max().item() for name in first) > 1e-4
    assert flat(refit.metrics_) != pytest.approx(flat(plain.metrics_))
    assert flat(Estimator.load(root / "refit").evaluate()) == pytest.approx(flat(refit.metrics_), rel=1e-5)


def test_scoring_the_validation_items_a_refit_run_trained_on_is_refused(runs, capsys):
    _, _, root = runs
    assert main(["evaluate", str(root / "refit"), "--part", "validation", "--no-plots"]) == 2
    assert "was refit on its validation items" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="refit.validation_before_refit"):
        Ensemble.load([root / "plain", root / "refit"]).evaluate(part="validation")
    ensemble = Ensemble.load([root / "plain", root / "refit"]).evaluate()["ensemble"]
    assert set(ensemble) == {"mse", "mae", "mape", "mse_ci", "mae_ci"}


def test_the_report_says_the_kept_model_was_refit(runs):
    from tsmoe.cli import write_run_report

    _, refit, root = runs
    page = write_run_report(root / "refit").read_text()
    items = refit.meta_["refit"]["items"]
    assert f"refit (the kept model)</td><td>{refit.meta_['refit']['epochs']} epochs on {items:,} training" in page
