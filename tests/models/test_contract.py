"""The contract every registered model keeps, generated from the registry: a model added later is covered
without a test of its own.

For each model and each input kind it reads (the liquid models and the LSTM/GRU read records and, as
forecasters, windows), with tiny settings, on a batch of that kind made by the data layer's own collate:
prediction shapes; a training step that gives every parameter a finite gradient (no unused parameters,
which DDP would otherwise need ``find_unused_parameters`` for) and lowers nothing to NaN; a save/load round
trip through safetensors giving equal outputs; and the same weights and outputs when built twice from
one seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tsmoe import io as run_io
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.models.output import unpack
from tsmoe.models.registry import MODELS, build_model
from tsmoe.tasks import get_task

# every width-like setting a model may have, shrunk (only the keys a model's params declare are used)
TINY = {
    "hidden_size": 8, "backbone_units": 8, "d_model": 8, "d_ff": 16, "gate_hidden": 8, "attention_hidden": 8,
    "head_hidden": 8, "n_heads": 2, "patch_len": 4, "stride": 4, "moving_avg": 5,
}  # fmt: skip
WINDOW_DIMS = {"lookback": 16, "horizon": 4, "n_channels": 2, "text_dim": 6}
IRREGULAR_DIMS = {"n_features": 3, "n_static": 2, "n_classes": 2}


def tiny_config(name: str) -> dict:
    fields = {f.name for f in dataclasses.fields(MODELS[name].params)}
    return {"name": name, **{k: v for k, v in TINY.items() if k in fields}}


def irregular_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Six stays of 3 variables (about half observed) at irregular times, with 2 static descriptors."""
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 3, 7, 1, 4, 6])
    times = np.concatenate([np.sort(rng.uniform(0, 48, n)) for n in lengths]).astype(np.float32)
    values = rng.normal(size=(lengths.sum(), 3)).astype(np.float32)
    values[rng.random(values.shape) < 0.5] = np.nan
    values[np.isnan(values).all(1), 0] = 1.0  # every step observes something
    data = IrregularSet(
        record_ids=np.arange(6), offsets=np.concatenate([[0], np.cumsum(lengths)]), times=times, values=values,
        static=rng.normal(size=(6, 2)).astype(np.float32), labels=np.array([0, 1, 0, 1, 1, 0]),
        variables=("a", "b", "c"), static_names=("age", "weight"),
    )  # fmt: skip
    dataset = IrregularDataset(data, IrregularNormalizer.fit(data))
    return collate_irregular([dataset[i] for i in range(len(dataset))])


def window_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Four windows of 2 channels with uneven gaps between rows (``dt``), with a text of 5 tokens each (the
    last masked on two windows)."""
    g = torch.Generator().manual_seed(seed)
    b, d = 4, WINDOW_DIMS["text_dim"]
    mask = torch.ones(b, 5, dtype=torch.bool)
    mask[:2, -1] = False
    return {
        "x": torch.randn(b, WINDOW_DIMS["lookback"], 2, generator=g),
        "y": torch.randn(b, WINDOW_DIMS["horizon"], 2, generator=g),
        "text_tokens": torch.randn(b, 5, d, generator=g),
        "text_mask": mask,
        "text_pooled": torch.randn(b, d, generator=g),
        "dt": torch.rand(b, WINDOW_DIMS["lookback"], generator=g) * 2 + 0.5,
    }


def setting(case: str) -> tuple[dict, dict, str, str]:
    """``(config, dims, task, input kind)`` of a contract case ``name:kind``."""
    name, kind = case.split(":")
    if kind == "irregular":
        return tiny_config(name), IRREGULAR_DIMS, "binary", "irregular"
    return tiny_config(name), {**WINDOW_DIMS, "step": 1.0}, "forecast", "window"


def batch_for(input_kind: str) -> dict[str, torch.Tensor]:
    return irregular_batch() if input_kind == "irregular" else window_batch()


def build(case: str, seed: int = 0) -> torch.nn.Module:
    config, dims, task, kind = setting(case)
    torch.manual_seed(seed)
    return build_model(config, dims, task, kind)


NAMES = [f"{name}:{kind}" for name in sorted(MODELS) for kind in MODELS[name].input_kinds]  # the cases


@pytest.mark.parametrize("name", NAMES)
def test_prediction_shapes(name):
    _, dims, task, kind = setting(name)
    output = unpack(build(name).eval()(batch_for(kind)))[0]
    expected = (6,) if kind == "irregular" else (4, dims["horizon"], dims["n_channels"])
    assert output.shape == expected and torch.isfinite(output).all()


@pytest.mark.parametrize("name", NAMES)
def test_a_training_step_reaches_every_parameter(name):
    _, _, task_name, kind = setting(name)
    model, batch, task = build(name).train(), batch_for(kind), get_task(task_name)
    channels = list(range(WINDOW_DIMS["n_channels"]))
    output, aux = unpack(model(batch))
    loss = task.loss(output, batch, channels, "window") + (aux if aux is not None else 0)
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f"parameters no loss reaches: {unused}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    before = [p.detach().clone() for p in model.parameters()]
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_give_the_same_outputs(name, tmp_path):
    model, batch = build(name, seed=1).eval(), batch_for(setting(name)[3])
    run_io.write_weights(tmp_path / "model.safetensors", model.state_dict())
    loaded = build(name, seed=2).eval()  # other initial weights, replaced by the file's
    run_io.load_weights_into(loaded, tmp_path / "model.safetensors")
    torch.testing.assert_close(unpack(loaded(batch))[0], unpack(model(batch))[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_one_seed_builds_one_model(name):
    first, second = build(name, seed=3), build(name, seed=3)
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    batch = batch_for(setting(name)[3])
    torch.testing.assert_close(unpack(first.eval()(batch))[0], unpack(second.eval()(batch))[0], rtol=0, atol=0)
    other = build(name, seed=4).parameters()
    assert any(not torch.equal(a, b) for a, b in zip(other, first.parameters(), strict=True)), "the seed is ignored"


FORECASTERS = [f"{name}:window" for name, entry in sorted(MODELS.items()) if "forecast" in entry.tasks]
LEVELS = [0.1, 0.5, 0.9]


@pytest.mark.parametrize("name", FORECASTERS)
def test_every_forecaster_trains_for_quantiles(name):
    """``model.quantiles``: the same model asked for one horizon per level, quantiles that never cross, the
    median as the point forecast, and a pinball loss that reaches every parameter."""
    config, dims, task_name, kind = setting(name)
    torch.manual_seed(0)
    model = build_model({**config, "quantiles": LEVELS}, dims, task_name, kind).train()
    batch, task = batch_for(kind), get_task(task_name)
    result = model(batch)
    quantiles = result["quantiles"]
    assert quantiles.shape == (4, dims["horizon"], dims["n_channels"], 3)
    assert (quantiles.diff(dim=-1) >= 0).all()
    torch.testing.assert_close(result["output"], quantiles[..., 1])
    loss = task.quantile_loss(quantiles, LEVELS, batch, list(range(dims["n_channels"])), "window")
    (loss + result.get("aux_loss", 0)).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f"parameters the pinball loss does not reach: {unused}"
