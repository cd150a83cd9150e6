"""MR-MoE and its ladder: shapes, masks, padding, gates, attention, the quasi-steady fast expert."""

import numpy as np
import pytest
import torch

from tests.metric_dicts import flat
from tsmoe import Estimator
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.data.sources.physionet2012 import load_physionet2012
from tsmoe.errors import ConfigError, DataError
from tsmoe.layers.gate import StepGate, gated_readout, load_balancing_loss
from tsmoe.layers.observation_dropout import drop_observations
from tsmoe.layers.observation_summary import observation_summary
from tsmoe.models.registry import build_model

DIMS = {"n_features": 37, "n_static": 5, "n_classes": 2}
LADDER = ["lstm", "gru", "cfc", "ltc", "ctrnn", "moe_same_rate", "mrmoe_no_attention", "mrmoe"]
TINY = {"hidden_size": 8}


def tiny(name: str, **extra) -> torch.nn.Module:
    params = {"name": name, **TINY, **extra}
    if name not in ("lstm", "gru"):
        params.update(backbone_units=16, d_model=16, gate_hidden=8, attention_hidden=8, head_hidden=8)
    else:
        params.update(head_hidden=8)
    torch.manual_seed(0)
    return build_model(params, DIMS, "binary", "irregular").eval()


@pytest.fixture(scope="module")
def batch_items(small_physionet):
    data = load_physionet2012(small_physionet)
    dataset = IrregularDataset(data, IrregularNormalizer.fit(data))
    lengths = data.lengths()
    return [dataset[int(lengths.argmin())], dataset[int(lengths.argmax())], dataset[5]]


@pytest.mark.parametrize("name", LADDER)
def test_every_rung_gives_finite_logits_and_ignores_padding(name, batch_items):
    model = tiny(name)
    out = model(collate_irregular(batch_items))
    logits = out["output"] if isinstance(out, dict) else out
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    alone = model(collate_irregular(batch_items[:1]))
    alone = alone["output"] if isinstance(alone, dict) else alone
    torch.testing.assert_close(alone, logits[:1], rtol=1e-4, atol=1e-5)


def test_mrmoe_returns_its_weights_for_analysis(batch_items):
    out = tiny("mrmoe")(collate_irregular(batch_items))
    batch = collate_irregular(batch_items)
    gate, alpha, time_weights = out["gate"], out["feature_attention"], out["temporal_attention"]
    assert gate.shape == (3, batch["values"].shape[1], 3)
    torch.testing.assert_close(gate.sum(-1), torch.ones(gate.shape[:2]))
    assert torch.all(alpha[batch["mask"] == 0] == 0)  # an unobserved variable gets no weight
    observed_steps = batch["mask"].sum(-1) > 0
    torch.testing.assert_close(alpha.sum(-1)[observed_steps], torch.ones(int(observed_steps.sum())))
    assert torch.all(time_weights[batch["step_mask"] == 0] == 0)  # padding gets no attention
    torch.testing.assert_close(time_weights.sum(-1), torch.ones(3))


def test_multi_rate_and_same_rate_time_constants():
    assert torch.allclose(tiny("mrmoe").experts.tau, torch.tensor([0.5, 0.5 * 48**0.5, 24.0]))
    assert torch.allclose(tiny("moe_same_rate").experts.tau, torch.full((3,), 48**0.5 * 0.5))


def test_quasi_steady_fast_expert_is_not_integrated(batch_items):
    model = tiny("mrmoe", fast_expert="quasi_steady")
    assert model.experts.cell.experts == 2 and torch.allclose(model.experts.tau, torch.tensor([0.5 * 48**0.5, 24.0]))
    out = model(collate_irregular(batch_items))
    assert out["gate"].shape[-1] == 3 and torch.isfinite(out["output"]).all()


def test_top_k_gate_keeps_k_experts_per_step():
    gate = StepGate(4, experts=4, hidden=8, top_k=2)
    weights, probs = gate(torch.randn(2, 5, 4))
    assert torch.all((weights > 0).sum(-1) == 2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))


def test_gate_given_parts_equals_the_gate_given_their_concatenation():
    gate = StepGate(7, experts=3, hidden=5)
    u, states = torch.randn(2, 4, 3, requires_grad=True), torch.randn(2, 4, 4, requires_grad=True)
    parted, _ = gate(u, states)
    whole, _ = gate(torch.cat([u, states], -1))
    torch.testing.assert_close(parted, whole)
    torch.testing.assert_close(gate(u[..., :1], u[..., 1:], states)[0], whole)  # three parts
    grads = torch.autograd.grad(parted.pow(2).sum(), (u, states, gate.net[0].weight))
    grads_whole = torch.autograd.grad(whole.pow(2).sum(), (u, states, gate.net[0].weight))
    for got, expected in zip(grads, grads_whole, strict=True):
        torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match=r"\[3, 3\] columns, 6 in all; it takes 7"):
        gate(u, states[..., :3])


def test_gated_readout_is_the_weighted_sum_of_each_experts_readout():
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(2, 5, 3, dtype=torch.float64), -1).requires_grad_()
    states = torch.randn(2, 3, 5, 4, dtype=torch.float64).transpose(1, 2).requires_grad_()  # a strided view
    readout = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    inputs = (weights, states, readout, bias)
    per_expert = torch.stack([states[:, :, k] @ readout[k] + bias[k] for k in range(3)], dim=2)  # (B, T, K, D)
    expected = (weights.unsqueeze(-1) * per_expert).sum(2)
    got = gated_readout(*inputs)
    torch.testing.assert_close(got, expected)
    # the hand-written backward against autograd's through the per-expert formula
    upstream = torch.randn_like(got)
    for mine, reference in zip(
        torch.autograd.grad(got, inputs, upstream), torch.autograd.grad(expected, inputs, upstream), strict=True
    ):
        torch.testing.assert_close(mine, reference)


def test_gated_readout_under_autocast_follows_the_float_result():
    torch.manual_seed(0)
    inputs = (torch.softmax(torch.randn(2, 5, 3), -1), torch.randn(2, 5, 3, 4), torch.randn(3, 4, 6), torch.randn(3, 6))
    inputs = tuple(x.requires_grad_() for x in inputs)
    expected = gated_readout(*inputs)
    expected_grads = torch.autograd.grad(expected.sum(), inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = gated_readout(*inputs)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, atol=0.1, rtol=0.05)
    for mine, reference in zip(torch.autograd.grad(got.float().sum(), inputs), expected_grads, strict=True):
        torch.testing.assert_close(mine.float(), reference, atol=0.1, rtol=0.05)


def test_mrmoe_trains_under_autocast(batch_items):
    model = tiny("mrmoe").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(collate_irregular(batch_items))
    out["output"].float().sum().backward()
    assert torch.isfinite(out["output"].float()).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_balance_loss_is_one_when_even_and_larger_when_collapsed():
    even = torch.full((1, 4, 2), 0.5)
    even_weights = torch.tensor([[[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.4, 0.6]]])
    assert load_balancing_loss(even, even_weights, torch.ones(1, 4)).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[[0.9, 0.1]] * 4])
    assert load_balancing_loss(collapsed, collapsed, torch.ones(1, 4)).item() == pytest.approx(1.8)


def test_stay_with_no_observation(batch_items):
    empty = {**batch_items[0], "values": torch.zeros(1, 37), "mask": torch.zeros(1, 37), "times": torch.zeros(1)}
    out = tiny("mrmoe")(collate_irregular([empty, batch_items[1]]))
    assert torch.isfinite(out["output"]).all()


def test_times_that_go_backwards_are_refused_by_the_data_not_the_model():
    # validation belongs to data preparation: a stay whose clock goes backwards never reaches a model
    with pytest.raises(DataError, match="times of record 7 do not strictly increase"):
        IrregularSet(
            record_ids=np.array([7]), offsets=np.array([0, 3]), times=np.array([0.0, 2.0, 1.0], np.float32),
            values=np.ones((3, 1), np.float32), static=np.zeros((1, 0), np.float32), labels=np.array([1]),
            variables=("hr",), static_names=(),
        )  # fmt: skip


def test_training_step_gives_finite_gradients_with_balance_loss(batch_items):
    model = tiny("mrmoe", balance_weight=0.01).train()
    out = model(collate_irregular(batch_items))
    loss = (
        torch.nn.functional.binary_cross_entropy_with_logits(out["output"], torch.tensor([0.0, 1.0, 0.0]))
        + out["aux_loss"]
    )
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_mrmoe_trains_and_reloads_through_the_one_path(small_physionet, tmp_path):
    estimator = Estimator(
        "mrmoe",
        "physionet2012",
        model_params={"hidden_size": 8, "d_model": 8, "backbone_units": 16},
        data_params={"root": str(small_physionet), "split_file": None},
        training={"max_epochs": 1},
        trainer={"accelerator": "cpu"},
    ).fit(run_dir=tmp_path / "mrmoe")
    assert np.isfinite(estimator.metrics_["auroc"])
    assert flat(Estimator.load(tmp_path / "mrmoe").evaluate()) == pytest.approx(flat(estimator.metrics_), abs=1e-7)


@pytest.mark.parametrize("cell", ["cfc", "ltc", "ctrnn"])
def test_zero_gaps_and_never_observed_variables_give_a_finite_loss(cell, batch_items):
    batch = collate_irregular(batch_items)
    batch["dt"][:, :3] = 0.0  # several observations at the same instant (and padding, whose dt is 0)
    batch["values"][..., 5] = 0.0
    batch["mask"][..., 5] = 0.0  # variable 5 is never observed in this batch
    model = tiny("mrmoe", cell=cell).train()
    out = model(batch)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out["output"], torch.tensor([0.0, 1.0, 0.0]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert torch.all(out["feature_attention"][..., 5] == 0)


@pytest.mark.parametrize("cell", ["cfc", "ltc", "ctrnn"])
def test_moving_average_input_rate(cell, batch_items):
    model = tiny("mrmoe", cell=cell, input_rate="moving_average")
    out = model(collate_irregular(batch_items))
    assert torch.isfinite(out["output"]).all()
    alone = model(collate_irregular(batch_items[:1]))["output"]
    torch.testing.assert_close(alone, out["output"][:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", ["cfc", "ltc", "ctrnn"])
def test_expert_stride_runs_every_cell_and_ignores_padding(cell, batch_items):
    model = tiny("mrmoe", cell=cell, expert_stride=[1, 2, 4])
    batch = collate_irregular(batch_items)
    out = model(batch)
    assert torch.isfinite(out["output"]).all()
    alone = model(collate_irregular(batch_items[:1]))["output"]
    torch.testing.assert_close(alone, out["output"][:1], rtol=1e-4, atol=1e-5)
    out["output"].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_expert_stride_is_checked_against_the_experts():
    with pytest.raises(ConfigError, match="expert_stride must hold one stride per expert"):
        tiny("mrmoe", expert_stride=[1, 2])
    with pytest.raises(ConfigError, match="model.expert_stride is a count or a size: at least 1"):
        tiny("mrmoe", expert_stride=[1, 0, 2])
    with pytest.raises(ConfigError, match=r"expert_stride\[0\] must be 1"):
        tiny("mrmoe", expert_stride=[2, 2, 4], fast_expert="quasi_steady")


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("mrmoe", {}),
        ("mrmoe", {"input_rate": "moving_average"}),
        ("mrmoe", {"fast_expert": "quasi_steady"}),
        ("gru", {}),
    ],
)
def test_observation_decay_inputs_ignore_padding(name, extra, batch_items):
    model = tiny(name, observation_decay=True, **extra)
    out = model(collate_irregular(batch_items))
    out = out["output"] if isinstance(out, dict) else out
    assert torch.isfinite(out).all()
    alone = model(collate_irregular(batch_items[:1]))
    alone = alone["output"] if isinstance(alone, dict) else alone
    torch.testing.assert_close(alone, out[:1], rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert model.decay.w.grad is not None and torch.isfinite(model.decay.w.grad).all()


def test_observation_dropout_hides_values_in_training_only(batch_items):
    batch = collate_irregular(batch_items)
    torch.manual_seed(0)
    dropped = drop_observations(batch, 0.3)
    observed = batch["mask"] > 0
    hidden = observed & (dropped["mask"] == 0)
    assert abs(hidden.sum().item() / observed.sum().item() - 0.3) < 0.03
    assert torch.all(dropped["values"][hidden] == 0)  # hidden means unmeasured: value and mask both 0
    kept = dropped["mask"] > 0
    torch.testing.assert_close(dropped["values"][kept], batch["values"][kept], rtol=0, atol=0)
    assert not torch.any(dropped["mask"][~observed] > 0)  # nothing unobserved appears
    for key in ("times", "dt", "step_mask", "static", "target"):  # the steps and their clock are kept
        assert dropped[key] is batch[key]
    plain, augmented = tiny("mrmoe"), tiny("mrmoe", observation_dropout=0.5)
    torch.testing.assert_close(augmented(batch)["output"], plain(batch)["output"], rtol=0, atol=0)  # eval: off
    augmented.train()
    plain.train()
    torch.manual_seed(1)
    train_plain = plain(batch)["output"]
    torch.manual_seed(1)
    assert not torch.allclose(augmented(batch)["output"], train_plain)
    with pytest.raises(ConfigError, match="observation_dropout must be in"):
        tiny("mrmoe", observation_dropout=1.0)


def test_the_recurrent_baselines_take_observation_dropout_too(batch_items):
    batch = collate_irregular(batch_items)
    plain, augmented = tiny("gru"), tiny("gru", observation_dropout=0.5)
    torch.testing.assert_close(augmented(batch), plain(batch), rtol=0, atol=0)  # evaluation: nothing dropped
    augmented.train()
    plain.train()
    torch.manual_seed(1)
    train_plain = plain(batch)
    torch.manual_seed(1)
    assert not torch.allclose(augmented(batch), train_plain)
    with pytest.raises(ConfigError, match="observation_dropout must be in"):
        tiny("lstm", observation_dropout=-0.1)


def test_observation_summary_is_the_mean_and_count_of_each_variables_observed_values(batch_items):
    batch = collate_irregular(batch_items)
    summary = observation_summary(batch["values"], batch["mask"])
    n_features = batch["values"].shape[-1]
    assert summary.shape == (3, 2 * n_features)
    for row, item in enumerate(batch_items):  # by hand, from each record before padding
        observed = item["mask"] > 0
        for f in range(n_features):
            count = int(observed[:, f].sum())
            mean = float(item["values"][observed[:, f], f].mean()) if count else 0.0
            assert summary[row, f].item() == pytest.approx(mean, abs=1e-5)
            assert summary[row, n_features + f].item() == pytest.approx(np.log1p(count), abs=1e-6)
    never = batch["mask"].sum(1) == 0
    assert never.any() and torch.all(summary[:, :n_features][never] == 0)  # never observed: 0, not NaN
    unobserved = batch["mask"] == 0  # whatever lies where nothing was measured does not count
    noise = torch.where(unobserved, torch.randn_like(batch["values"]), batch["values"])
    torch.testing.assert_close(observation_summary(noise, batch["mask"]), summary, rtol=0, atol=0)


def test_mrmoe_head_reads_the_observation_summary_when_asked(batch_items):
    batch = collate_irregular(batch_items)
    plain, summarised = tiny("mrmoe"), tiny("mrmoe", observation_summary=True)
    assert summarised.head.net[0].in_features == plain.head.net[0].in_features + 2 * DIMS["n_features"]
    out = summarised(batch)["output"]
    alone = summarised(collate_irregular(batch_items[:1]))["output"]
    torch.testing.assert_close(alone, out[:1], rtol=1e-4, atol=1e-5)  # padding does not enter the summary
    mixed = 2 * 16  # [context, m(T)] at tiny()'s d_model; the head reads [mixed, summary, static, static mask]
    summarised.head.net[0].weight.data[:, mixed : mixed + 2 * DIMS["n_features"]] = 0
    assert not torch.allclose(summarised(batch)["output"], out)  # without the summary's columns the output changes


def test_the_recurrent_baselines_read_the_observation_summary_too(batch_items):
    batch = collate_irregular(batch_items)
    plain, summarised = tiny("gru"), tiny("gru", observation_summary=True)
    assert summarised.head.net[0].in_features == plain.head.net[0].in_features + 2 * DIMS["n_features"]
    out = summarised(batch)
    torch.testing.assert_close(summarised(collate_irregular(batch_items[:1])), out[:1], rtol=1e-4, atol=1e-5)
    hidden = 8  # TINY's hidden size: the head reads [hidden state, summary, static, static mask]
    summarised.head.net[0].weight.data[:, hidden : hidden + 2 * DIMS["n_features"]] = 0
    assert not torch.allclose(summarised(batch), out)  # without the summary's columns the output changes
