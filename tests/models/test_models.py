import dataclasses

import numpy as np
import pytest
import torch

from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.data.sources.physionet2012 import STATIC, VARIABLES, load_physionet2012, parse_stay
from tsmoe.errors import ConfigError
from tsmoe.models.registry import MODELS, build_model


def test_lstm_output_ignores_padding(small_physionet):
    data = load_physionet2012(small_physionet)
    dataset = IrregularDataset(data, IrregularNormalizer.fit(data))
    lengths = data.lengths()
    short, long = int(lengths.argmin()), int(lengths.argmax())
    model = build_model(
        {"name": "lstm", "hidden_size": 16}, {"n_features": 37, "n_static": 5, "n_classes": 2}, "binary", "irregular"
    ).eval()
    alone = model(collate_irregular([dataset[short]]))
    padded = model(collate_irregular([dataset[short], dataset[long]]))[:1]
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-6)


def test_empty_stay_gives_one_masked_step_and_finite_output():
    record, times, values, static = parse_stay("e.txt", "Time,Parameter,Value\n00:00,RecordID,7\n00:00,Age,70\n")
    data = IrregularSet(
        record_ids=np.array([record]),
        offsets=np.array([0, 0]),
        times=times,
        values=values,
        static=static[None],
        labels=np.array([1]),
        variables=VARIABLES,
        static_names=STATIC,
    )
    item = IrregularDataset(data, IrregularNormalizer.fit(data))[0]
    assert item["values"].shape == (1, 37) and item["mask"].sum() == 0
    model = build_model(
        {"name": "lstm", "hidden_size": 8}, {"n_features": 37, "n_static": 5, "n_classes": 2}, "binary", "irregular"
    )
    assert torch.isfinite(model(collate_irregular([item]))).all()


def test_dlinear_shapes_and_mean_initialisation():
    model = build_model({"name": "dlinear"}, {"lookback": 48, "horizon": 12, "n_channels": 3}, "forecast", "window")
    x = torch.randn(4, 48, 3)
    out = model({"x": x})
    assert out.shape == (4, 12, 3)
    # at initialisation each map is the window mean, and trend + seasonal = x: the forecast is the mean
    torch.testing.assert_close(
        out - model.seasonal[0].bias[None, :, None] - model.trend[0].bias[None, :, None],
        x.mean(1, keepdim=True).expand(-1, 12, -1),
        rtol=1e-4,
        atol=1e-5,
    )


def test_dlinear_individual_has_maps_per_channel():
    model = build_model(
        {"name": "dlinear", "individual": True}, {"lookback": 24, "horizon": 6, "n_channels": 5}, "forecast", "window"
    )
    assert len(model.seasonal) == 5 and model({"x": torch.randn(2, 24, 5)}).shape == (2, 6, 5)


@pytest.mark.parametrize("kernel", [97, 10**18])
def test_a_dlinear_kernel_longer_than_twice_the_lookback_is_refused(kernel):
    with pytest.raises(ConfigError, match=rf"model.moving_avg: .* 1 to twice the lookback \(96\) steps, got {kernel}"):
        build_model({"name": "dlinear", "moving_avg": kernel}, {"lookback": 48, "horizon": 12, "n_channels": 3},
                    "forecast", "window")  # fmt: skip
    assert build_model({"name": "dlinear", "moving_avg": 96}, {"lookback": 48, "horizon": 12, "n_channels": 3},
                       "forecast", "window") is not None  # fmt: skip


SIZES = {"irregular": {"n_features": 5, "n_static": 2, "n_classes": 2},
         "window": {"lookback": 24, "horizon": 6, "n_channels": 3}}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_integer_setting_of_every_model_below_one_is_refused_by_name(name):
    """Widths, layers, experts, heads, patches, strides: 0 or -1 became a tensor of no width, a division by
    zero or a reshape error inside a layer."""
    entry = MODELS[name]
    kind = entry.input_kind
    task = "binary" if kind == "irregular" else "forecast"
    integers = [f.name for f in dataclasses.fields(entry.params) if isinstance(f.default, int)
                and not isinstance(f.default, bool)]  # fmt: skip
    assert integers
    for field in integers:
        for value in (0, -1):
            with pytest.raises(ConfigError, match=rf"model.{field} is a count or a size: at least 1, got {value}"):
                build_model({"name": name, field: value}, SIZES[kind], task, kind)
    if "expert_stride" in {f.name for f in dataclasses.fields(entry.params)}:
        with pytest.raises(ConfigError, match=r"model.expert_stride is a count or a size: at least 1, got \[1, 0, 2\]"):
            build_model({"name": name, "expert_stride": [1, 0, 2]}, SIZES[kind], task, kind)


def test_sizes_whose_weights_cannot_be_held_are_a_config_error():
    with pytest.raises(ConfigError, match="model 'lstm' cannot be built with these sizes"):
        build_model({"name": "lstm", "hidden_size": 2**40}, SIZES["irregular"], "binary", "irregular")
