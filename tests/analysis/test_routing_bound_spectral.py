"""Routing health, the top-K truncation bound and the spectral estimates, against exact answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsmoe.analysis.routing import expert_usage
from tsmoe.analysis.spectral import gram_spectrum, power_iteration
from tsmoe.analysis.topk_bound import truncation_bound
from tsmoe.layers.sparse_moe import SparseMoE


def test_expert_usage_of_even_and_collapsed_routing():
    even = expert_usage(np.arange(8).reshape(8, 1) % 4, np.full((8, 4), 0.25))
    assert even.load_cv == pytest.approx(0.0) and even.entropy == pytest.approx(np.log(4)) and even.dead == ()
    collapsed = expert_usage(np.zeros((8, 1), int), np.tile([0.97, 0.01, 0.01, 0.01], (8, 1)))
    assert collapsed.load.tolist() == [1, 0, 0, 0] and collapsed.dead == (1, 2, 3)
    assert collapsed.load_cv == pytest.approx(np.sqrt(3)) and collapsed.entropy < 0.2


@pytest.mark.parametrize(("experts", "top_k"), [(4, 2), (8, 2), (16, 4), (3, 1)])
def test_truncation_bound_holds_on_random_outputs(experts, top_k):
    rng = np.random.default_rng(experts)
    outputs = rng.standard_normal((200, experts, 12)) * rng.uniform(0.1, 3, (200, experts, 1))
    gates = rng.dirichlet(np.ones(experts), 200)
    bound = truncation_bound(outputs, gates, top_k)
    assert bound.holds()
    order = np.argsort(-gates, 1)[:, top_k:]
    dropped = (np.take_along_axis(gates, order, 1)[..., None] * np.take_along_axis(outputs, order[..., None], 1)).sum(1)
    np.testing.assert_allclose(bound.actual, (dropped**2).sum(1), rtol=1e-9)  # the error, computed directly


def test_truncation_bound_holds_on_a_trained_layer():
    torch.manual_seed(0)
    layer = SparseMoE(16, n_experts=8, top_k=2)
    optimiser = torch.optim.Adam(layer.parameters(), lr=1e-2)
    h = torch.randn(256, 16)
    target = torch.sin(h.sum(-1, keepdim=True)).expand(-1, 16)
    for _ in range(100):  # fit something, so the experts differ from their start
        optimiser.zero_grad()
        out, _ = layer(h, torch.zeros(256, dtype=torch.long))
        ((out - target) ** 2).mean().backward()
        optimiser.step()
    with torch.no_grad():
        routing = layer.route(h, torch.zeros(256, dtype=torch.long))
        outputs = layer.experts.dense(h).permute(1, 0, 2).numpy()
    bound = truncation_bound(outputs, routing.probs.numpy(), 2)
    assert bound.holds() and bound.actual.mean() > 0


def test_spectral_estimates_against_exact_eigenvalues():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 5))
    exact = np.linalg.eigvalsh(weight.T @ weight)
    estimate = gram_spectrum(weight, steps=500)
    assert estimate.rayleigh_max == pytest.approx(exact[-1], rel=1e-6)
    assert estimate.gershgorin_max >= exact[-1] and estimate.gershgorin_min <= exact[0]
    assert power_iteration(np.diag([3.0, 1.0, 0.5]), steps=200) == pytest.approx(3.0)


def test_liquid_step_discs_match_the_euler_jacobian_and_every_cell_runs():
    from tsmoe.analysis.spectral import liquid_step_discs
    from tsmoe.layers.liquid import CfCCell, CTRNNCell, LTCCell

    torch.manual_seed(0)
    cell = CTRNNCell(input_size=3, hidden_size=5, experts=2, integrator="euler")
    with torch.no_grad():
        cell.state_weight.mul_(0.2)  # weak recurrence: the leak dominates
    tau = torch.tensor([0.5, 24.0])
    discs = liquid_step_discs(cell, tau, dt=1.0)
    for k, expert in enumerate(discs):
        # at the zero state and input, d/dh [h + (dt/tau)(-h + tanh(W h + b))] = I + (dt/tau)(diag(1 - tanh(b)^2) W - I)
        slope = 1 - torch.tanh(cell.bias[k]) ** 2
        weight = cell.state_weight[k].detach()
        jacobian = (torch.eye(5) + (1.0 / tau[k]) * (slope[:, None] * weight.T - torch.eye(5))).detach()
        np.testing.assert_allclose(expert.centres, torch.diagonal(jacobian).numpy(), atol=1e-5)
        assert expert.spectral_radius == pytest.approx(float(torch.linalg.eigvals(jacobian).abs().max()), abs=1e-5)
    assert not discs[0].stable and discs[1].stable  # dt = 2 tau overshoots; dt = tau / 24 contracts
    for other in (CfCCell(3, 5, experts=2, backbone_units=8), LTCCell(3, 5, experts=2)):
        assert len(liquid_step_discs(other, tau, dt=1.0)) == 2
