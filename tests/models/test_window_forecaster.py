"""The liquid networks, MR-MoE and the LSTM/GRU as forecasters of windows (tsmoe.models.window_forecaster):
channels read alone or together, the gaps between rows taken from the timestamps, time scales that follow
the data's own clock, and settings that only windows read refused on records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsmoe.data.sampling import elapsed_before, usual_elapsed
from tsmoe.data.series import Series, SeriesSet
from tsmoe.data.windows import StandardScaler, WindowDataset
from tsmoe.errors import ConfigError
from tsmoe.models.mrmoe import CfCParams, MRMoEParams, time_scales
from tsmoe.models.registry import build_model
from tsmoe.models.window_forecaster import window_records

DIMS = {"lookback": 12, "horizon": 3, "n_channels": 3, "text_dim": 0, "step": 1.0}
TINY = {"hidden_size": 8, "head_hidden": 8}
LIQUID_TINY = {**TINY, "backbone_units": 8, "d_model": 8, "gate_hidden": 8, "attention_hidden": 8}


def forecaster(name: str, seed: int = 0, dims: dict | None = None, **settings) -> torch.nn.Module:
    torch.manual_seed(seed)
    tiny = TINY if name in ("gru", "lstm") else LIQUID_TINY
    return build_model({"name": name, **tiny, **settings}, dims or DIMS, "forecast", "window").eval()


def windows(seed: int = 0, n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, DIMS["lookback"], DIMS["n_channels"], generator=g),
            "dt": torch.ones(n, DIMS["lookback"])}  # fmt: skip


@pytest.mark.parametrize("name", ["mrmoe", "cfc", "gru"])
def test_independent_channels_each_read_only_their_own_history_and_joint_ones_read_all(name):
    batch = windows()
    changed = {**batch, "x": batch["x"].clone()}
    changed["x"][:, :, 2] += torch.linspace(0, 3, DIMS["lookback"])[None]
    alone = forecaster(name, channels="independent")
    before, after = alone(batch)["output"], alone(changed)["output"]
    assert before.shape == (4, DIMS["horizon"], DIMS["n_channels"])
    torch.testing.assert_close(after[..., :2], before[..., :2], rtol=0, atol=1e-6)
    assert not torch.allclose(after[..., 2], before[..., 2])
    together = forecaster(name, channels="joint")
    assert not torch.allclose(together(changed)["output"][..., 0], together(batch)["output"][..., 0])


@pytest.mark.parametrize("name", ["mrmoe", "cfc", "ltc", "ctrnn", "moe_same_rate"])
def test_a_series_read_in_minutes_or_in_hours_gives_the_same_forecast(name):
    """The time constants default to the data's own scales (sampling interval to lookback span), so one
    series on a clock 60 times finer is the same problem: every gap and every tau scale together."""
    batch = windows()
    hours = forecaster(name, seed=1, dims={**DIMS, "step": 1.0})(batch)["output"]
    minutes = forecaster(name, seed=1, dims={**DIMS, "step": 60.0})({**batch, "dt": batch["dt"] * 60})["output"]
    torch.testing.assert_close(minutes, hours, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mrmoe", "cfc", "gru"])
def test_a_hole_in_a_series_is_a_longer_step_not_two_rows_glued_together(name):
    batch = windows()
    hole = {**batch, "dt": batch["dt"].clone()}
    hole["dt"][:, 6] = 8.0  # seven rows missing before row 6
    model = forecaster(name)
    assert not torch.allclose(model(hole)["output"], model(batch)["output"])


def test_the_time_scales_default_to_the_sampling_interval_and_the_lookback_span_on_windows():
    assert time_scales(MRMoEParams(), {"step": 24.0, "lookback": 96}) == (24.0, 24.0 * 96)
    assert time_scales(MRMoEParams(tau_min=2.0), {"step": 24.0, "lookback": 96}) == (2.0, 24.0 * 96)
    assert time_scales(MRMoEParams(), {"n_features": 3}) == (0.5, 24.0)  # records: the paper's hours
    assert time_scales(CfCParams(), {"n_features": 3}) == (1.0, 1.0)
    taus = forecaster("mrmoe", dims={**DIMS, "step": 24.0}).body.experts.tau
    torch.testing.assert_close(taus, torch.tensor([24.0, 24.0 * 12**0.5, 24.0 * 12]))


def test_the_gaps_between_rows_come_from_the_timestamps():
    stamps = np.array(["2024-01-01T00", "2024-01-01T01", "2024-01-01T02", "2024-01-01T05", "2024-01-01T06"],
                      dtype="datetime64[ns]")  # fmt: skip
    series = Series("a", stamps, np.arange(10, dtype=np.float32).reshape(5, 2))
    np.testing.assert_array_equal(elapsed_before(series), [1, 1, 1, 3, 1])  # hours; the first row: the usual
    counted = Series("b", np.array([0, 2, 4, 5]), np.zeros((4, 2), np.float32))
    np.testing.assert_array_equal(elapsed_before(counted), [2, 2, 2, 1])  # integer stamps in their own unit
    data = SeriesSet((series,), ("u", "v"), ("u",))
    assert usual_elapsed(data) == 1.0
    dataset = WindowDataset(data, [(0, 5)], lookback=3, horizon=1, scaler=StandardScaler.identity(2))
    assert [dataset[i]["dt"].tolist() for i in range(len(dataset))] == [[1, 1, 1], [1, 1, 3]]


def test_settings_only_windows_read_are_refused_on_records_and_windows_only_forecast():
    records = {"n_features": 3, "n_static": 0, "n_classes": 2}
    with pytest.raises(ConfigError, match="channels, instance_norm and highway are for forecasting windows"):
        build_model({"name": "mrmoe", "channels": "joint"}, records, "binary", "irregular")
    with pytest.raises(ConfigError, match="does not do task 'multiclass' on window input"):
        build_model({"name": "gru"}, {**DIMS, "n_classes": 3}, "multiclass", "window")


def test_without_timestamps_every_gap_is_the_sampling_interval():
    batch = windows()
    model = forecaster("cfc", dims={**DIMS, "step": 2.0})
    torch.testing.assert_close(model({"x": batch["x"]})["output"], model({**batch, "dt": batch["dt"] * 2})["output"])


def test_the_highway_adds_a_linear_forecast_of_each_channel_to_the_recurrent_one():
    batch = windows()
    model = forecaster("gru", highway=True)
    with_highway = model(batch)["output"]
    linear = model.highway
    x = batch["x"]
    mean, std = x.mean(1, keepdim=True), (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
    expected_linear = linear(((x - mean) / std).transpose(1, 2)).transpose(1, 2) * std
    model.highway = None
    torch.testing.assert_close(with_highway, model(batch)["output"] + expected_linear, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_unpadded_records_skip_packing_and_give_what_the_packed_path_gives(name):
    """Windows have no padding, so the RNN runs unpacked (PyTorch's CPU GRU is several times faster so);
    the same records with one padded step more go through the packed path and must agree."""
    torch.manual_seed(0)
    model = build_model({"name": name, **TINY}, {"n_features": 2, "n_static": 0}, "regression", "irregular").eval()
    x, dt = torch.randn(3, 5, 2), torch.ones(3, 5)
    plain = window_records(x, dt)
    padded = window_records(torch.cat([x, torch.zeros(3, 1, 2)], 1), torch.cat([dt, torch.ones(3, 1)], 1))
    padded["lengths"] = torch.full((3,), 5)
    padded["step_mask"][:, -1] = 0
    padded["mask"][:, -1] = 0
    torch.testing.assert_close(model(plain), model(padded), rtol=1e-5, atol=1e-6)
