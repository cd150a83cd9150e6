"""The sparse MoE layer: equal to running every expert and keeping the top-K, computing only routed
tokens, capacity and its drop share, the balance loss, and the shared expert."""

from __future__ import annotations

import pytest
import torch

from tsmoe.layers.sparse_moe import SparseMoE, SwiGLUExperts, balance_loss


@pytest.mark.parametrize(("experts", "top_k", "renormalize", "shared"), [(4, 2, False, False), (8, 1, True, True),
                                                                          (16, 4, False, True)])  # fmt: skip
def test_sparse_dispatch_equals_the_dense_mixture(experts, top_k, renormalize, shared):
    torch.manual_seed(0)
    layer = SparseMoE(12, experts, top_k, d_inner=20, renormalize=renormalize, shared_expert=shared)
    h = torch.randn(97, 12)
    out, routing = layer(h, torch.zeros(97, dtype=torch.long))
    torch.testing.assert_close(out, layer.dense_forward(h, routing), rtol=1e-5, atol=1e-6)
    if renormalize:
        torch.testing.assert_close(routing.weights.sum(-1), torch.ones(97))


def test_each_expert_runs_only_on_its_tokens(monkeypatch):
    torch.manual_seed(0)
    layer = SparseMoE(8, n_experts=16, top_k=2)
    seen = []
    original = SwiGLUExperts.forward
    monkeypatch.setattr(SwiGLUExperts, "forward", lambda self, h: seen.append(h.shape) or original(self, h))
    h = torch.randn(640, 8)
    _, routing = layer(h, torch.zeros(640, dtype=torch.long))
    rows = seen[0][0] * seen[0][1]  # E x C rows computed
    load = torch.bincount(routing.experts.reshape(-1), minlength=16)
    assert seen[0][1] == int(load.max())
    assert rows < 16 * 640 / 4  # far below running every expert on every token (E * N rows)


def test_capacity_drops_overflow_and_reports_the_share():
    torch.manual_seed(0)
    layer = SparseMoE(8, n_experts=4, top_k=1, capacity_factor=1.0)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0, 0] = 10.0  # every token with h[0] > 0 prefers expert 0
    h = torch.randn(400, 8)
    h[:, 0] = h[:, 0].abs() + 1  # all tokens want expert 0; capacity is 400 * 1 / 4 = 100
    out, routing = layer(h, torch.zeros(400, dtype=torch.long))
    assert routing.dropped.item() == pytest.approx(0.75)
    assert (out.abs().sum(-1) > 0).sum() == 100  # the dropped tokens get nothing (their residual carries them)


def test_balance_loss_is_one_when_uniform_and_larger_when_collapsed():
    uniform = torch.full((8, 4), 0.25)
    spread = torch.arange(8).remainder(4).unsqueeze(-1)
    assert balance_loss(uniform, spread, 4).item() == pytest.approx(1.0)
    collapsed = torch.tensor([[0.97, 0.01, 0.01, 0.01]]).expand(8, -1)
    assert balance_loss(collapsed, torch.zeros(8, 1, dtype=torch.long), 4).item() > 3.5


def test_top_k_outside_the_experts_is_refused():
    with pytest.raises(ValueError, match="top_k must be in"):
        SparseMoE(8, n_experts=4, top_k=5)
