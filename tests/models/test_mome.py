"""MoME and the models sharing its backbone: text starts as a no-op, the null text is exactly no text,
batching is independent of neighbours, and the whole path trains and reloads on the real windows."""

from __future__ import annotations

import pytest
import torch

from tests.metric_dicts import flat
from tsmoe import Estimator
from tsmoe.data.text_windows import TextWindowDataset, collate_text_windows
from tsmoe.errors import ConfigError, DataError
from tsmoe.models.mome import MoME, MomeParams

DIMS = {"lookback": 14, "horizon": 3, "n_channels": 1, "text_dim": 16}


def batch(n: int = 6, tokens: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, tokens, dtype=torch.bool)
    mask[0, 2:] = False  # a shorter text
    return {
        "x": torch.randn(n, 14, 1, generator=generator) * 3 + 10,
        "text_tokens": torch.randn(n, tokens, 16, generator=generator),
        "text_mask": mask,
    }


def pair(**params) -> tuple[MoME, MoME]:
    """A text model and a text-free model with the same backbone weights."""
    torch.manual_seed(0)
    with_text = MoME(MomeParams(**params), DIMS, "forecast").eval()
    without = MoME(MomeParams(**{**params, "text": "none"}), {**DIMS, "text_dim": 0}, "forecast").eval()
    missing, unexpected = without.load_state_dict(with_text.state_dict(), strict=False)
    assert not missing
    return with_text, without


@pytest.mark.parametrize("text", ["both", "eilm", "rm"])
def test_text_starts_exactly_where_no_text_starts(text):
    with_text, without = pair(text=text)
    b = batch()
    torch.testing.assert_close(with_text(b)["output"], without(b)["output"], rtol=0, atol=0)


def test_null_text_is_exactly_no_text_even_after_training():
    with_text, without = pair(text="both", eilm_on="output")
    with torch.no_grad():  # as if trained: modulation weights far from their start
        for module in (with_text.eilm, with_text.router_modulation):
            for p in module.parameters():
                p.normal_(0, 1.0)
    b = batch()
    assert not torch.allclose(with_text(b)["output"], without(b)["output"])  # real text now matters
    b["text_mask"][:] = False  # every text empty
    torch.testing.assert_close(with_text(b)["output"], without(b)["output"], rtol=0, atol=0)


def test_pooled_text_input_reads_the_pooled_vector_only_and_its_null_is_no_text():
    with_text, without = pair(text="both", text_input="pooled")
    with torch.no_grad():  # as if trained, so that text changes the forecast
        for module in (with_text.eilm, with_text.router_modulation):
            for p in module.parameters():
                p.normal_(0, 1.0)
    b = {**batch(), "text_pooled": torch.randn(6, 16, generator=torch.Generator().manual_seed(1))}
    forecast = with_text(b)["output"]
    assert not torch.allclose(forecast, without(b)["output"])  # the pooled vector steers the experts
    other_tokens = {**b, "text_tokens": torch.randn(6, 5, 16), "text_mask": torch.ones(6, 5, dtype=torch.bool)}
    torch.testing.assert_close(with_text(other_tokens)["output"], forecast, rtol=0, atol=0)  # tokens unread
    b["text_pooled"][2:] = 0  # windows 2.. have the null text: a zero pooled vector
    torch.testing.assert_close(with_text(b)["output"][2:], without(b)["output"][2:], rtol=0, atol=0)


def test_text_dropout_gives_dropped_windows_exactly_the_null_text_in_training_only():
    with_text, without = pair(text="both", text_dropout=0.5, dropout=0.0)
    with torch.no_grad():  # as if trained, so that text changes the forecast
        for module in (with_text.eilm, with_text.router_modulation):
            for p in module.parameters():
                p.normal_(0, 1.0)
    b = batch(n=64)
    full = with_text(b)["output"]  # eval mode: every text is used
    torch.manual_seed(1)
    trained = with_text.train()(b)["output"]
    blind = without(b)["output"]
    dropped = (trained - blind).abs().amax((1, 2)) == 0
    kept = (trained - full).abs().amax((1, 2)) == 0
    assert bool((dropped ^ kept).all())  # every window is either exactly without text or exactly with it
    assert 16 < int(dropped.sum()) < 48  # about half of 64


def test_text_dropout_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r"text_dropout must be in \[0, 1\), got 1.0"):
        MoME(MomeParams(text_dropout=1.0), DIMS, "forecast")


def test_a_window_forecast_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    model = MoME(MomeParams(layers=2), DIMS, "forecast").eval()
    b = batch(n=6, tokens=9)
    alone = {k: v[:1, : (2 if k != "x" else None)] if k.startswith("text") else v[:1] for k, v in b.items()}
    torch.testing.assert_close(model(b)["output"][:1], model(alone)["output"], rtol=1e-5, atol=1e-5)


def test_forecast_is_on_the_input_scale_and_routing_is_reported():
    model = MoME(MomeParams(experts=8, top_k=2, balance_weight=0.01), DIMS, "forecast")
    out = model(batch())
    assert out["output"].shape == (6, 3, 1)
    assert out["output"].mean().item() == pytest.approx(10, abs=5)  # the inputs sit around 10
    assert out["expert_load"].sum().item() == 6 * 4 * 2  # 4 patches per window, 2 experts each
    assert out["aux_loss"].item() > 0


@pytest.mark.parametrize("anchor", ["mean", "last"])
def test_a_silent_head_forecasts_the_anchor(anchor):
    """With the head's output at zero the forecast is the window's mean, or with anchor=last its last value."""
    model = MoME(MomeParams(anchor=anchor), DIMS, "forecast").eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    b = batch()
    expected = b["x"][:, -1:] if anchor == "last" else b["x"].mean(1, keepdim=True)
    torch.testing.assert_close(model(b)["output"], expected.expand(-1, 3, -1))


def test_a_text_model_without_text_data_is_refused():
    with pytest.raises(ConfigError, match="reads text.*the data has none"):
        MoME(MomeParams(text="both"), {**DIMS, "text_dim": 0}, "forecast")


def test_windows_and_texts_of_different_counts_are_refused():
    with pytest.raises(DataError, match="10 inputs, 10 targets and 9 texts"):
        TextWindowDataset(torch.zeros(10, 14).numpy(), torch.zeros(10, 3).numpy(), [], torch.zeros(9).long().numpy())


def test_collate_pads_texts_and_marks_them():
    items = [{"x": torch.zeros(4, 1), "y": torch.zeros(2, 1), "scale": torch.ones(1, 1),
              "text_tokens": torch.ones(n, 3), "text_pooled": torch.ones(3)} for n in (2, 0, 5)]  # fmt: skip
    b = collate_text_windows(items)
    assert b["text_tokens"].shape == (3, 5, 3) and b["text_mask"].sum(1).tolist() == [2, 0, 5]


@pytest.mark.parametrize("model", ["mome", "timemoe", "token_fusion", "patchtst", "itransformer", "dlinear"])
def test_every_p2_model_trains_saves_and_reloads(model, tmp_path):
    estimator = Estimator(model, "mome_timemmd", data_params={"domain": "SocialGood", "text_encoder": "hashing"},
                          training={"max_epochs": 2, "batch_size": 32}, trainer={"accelerator": "cpu"})  # fmt: skip
    estimator.fit(run_dir=tmp_path / model)
    assert set(estimator.metrics_) == {"mse", "mae", "mape", "mse_ci", "mae_ci"}
    assert all(v == v and v < 1e6 for v in flat(estimator.metrics_).values())
    assert flat(Estimator.load(tmp_path / model).evaluate()) == pytest.approx(flat(estimator.metrics_), rel=1e-5)


def test_trend_labels_follow_the_threshold():
    from tsmoe.data.text_windows import trend_labels

    inputs = torch.tensor([[0.0, 2.0, 0.0, 2.0]] * 3).numpy()  # std 1, last value 2
    targets = torch.tensor([[4.0, 4.0], [2.2, 2.2], [0.0, 0.0]]).numpy()  # change +2, +0.2, -2 stds
    assert trend_labels(inputs, targets, threshold=0.5).tolist() == [2, 1, 0]


def test_trend_task_trains_and_is_scored_by_accuracy():
    data = {"domain": "SocialGood", "text_encoder": "hashing", "task": "trend"}
    estimator = Estimator("mome", "mome_timemmd", data_params=data, training={"max_epochs": 2},
                          trainer={"accelerator": "cpu"}).fit()  # fmt: skip
    assert set(estimator.metrics_) == {"accuracy", "auroc", "brier", "ece", "log_loss"}
    assert 0 <= estimator.metrics_["accuracy"] <= 1
    assert estimator.predict_proba().shape == (73, 3)


def test_the_share_dropped_by_capacity_is_logged(tmp_path):
    import pandas as pd

    data = {"domain": "SocialGood", "text_encoder": "hashing"}
    Estimator("mome", "mome_timemmd", data_params=data, model_params={"capacity_factor": 0.5},
              training={"max_epochs": 1}, trainer={"accelerator": "cpu"}).fit(run_dir=tmp_path)  # fmt: skip
    dropped = pd.read_csv(tmp_path / "logs" / "metrics.csv")["train_dropped_share"].dropna()
    assert len(dropped) == 1 and 0.0 < dropped.iloc[0] < 1.0


@pytest.mark.parametrize("forecast_loss", ["window", "original"])
def test_the_forecast_loss_scores_windows_on_the_scale_asked_for(forecast_loss, tmp_path):
    import pandas as pd

    data = {"domain": "SocialGood", "text_encoder": "hashing"}
    Estimator("mome", "mome_timemmd", data_params=data, training={"max_epochs": 1, "forecast_loss": forecast_loss},
              trainer={"accelerator": "cpu"}).fit(run_dir=tmp_path)  # fmt: skip
    logged = pd.read_csv(tmp_path / "logs" / "metrics.csv").dropna(subset=["val_loss"]).iloc[-1]
    same = logged["val_loss"] == pytest.approx(logged["val_mse"], rel=1e-4)  # val_mse: on the original scale
    assert same if forecast_loss == "original" else not same


def test_the_mape_loss_is_the_mape_metric_as_a_fraction():
    from tsmoe.tasks import get_task

    output, target = torch.tensor([[[2.0], [1.0], [5.0]]]), torch.tensor([[[4.0], [0.0], [-5.0]]])
    # |2 - 4| / 4 and |5 - (-5)| / 5; the zero target is not counted, as in the metric
    loss = get_task("forecast").loss(output, {"y": target}, [0], "mape")
    assert float(loss) == pytest.approx((0.5 + 2.0) / 2)
    data = {"domain": "SocialGood", "text_encoder": "hashing"}
    run = Estimator("mome", "mome_timemmd", data_params=data, training={"max_epochs": 2, "forecast_loss": "mape"},
                    trainer={"accelerator": "cpu"}).fit()  # fmt: skip
    prepared = run.prepare_data()
    assert len(prepared.val) <= run.config.training.eval_batch_size  # one validation batch: no averaging of batches
    # the kept epoch is the one with the lowest validation MAPE
    assert run.meta_["best_score"] == pytest.approx(run.score_part(prepared, prepared.val)["mape"] / 100, rel=1e-4)
