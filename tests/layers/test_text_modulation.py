"""QueryPool, EiLM and Router Modulation: identity at initialisation, the null text, masking."""

from __future__ import annotations

import torch

from tsmoe.layers.sparse_moe import SparseMoE
from tsmoe.layers.text_modulation import EiLM, QueryPool, RouterModulation


def test_query_pool_ignores_padding_and_gives_zero_for_no_text():
    torch.manual_seed(0)
    pool = QueryPool(text_dim=10, d_model=8, n_queries=3, dropout=0.0).eval()
    tokens = torch.randn(3, 6, 10)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [0] * 6], dtype=torch.bool)
    out = pool(tokens, mask)
    assert out.shape == (3, 3, 8)
    assert not out[2].any()  # no text: the null signal
    alone = pool(tokens[:1, :3], mask[:1, :3])
    torch.testing.assert_close(out[:1], alone)  # padding changes nothing


def test_eilm_starts_as_the_identity():
    gamma, beta = EiLM(d_model=8, n_experts=4)(torch.randn(5, 3, 8))
    assert torch.equal(gamma, torch.ones(5, 4)) and torch.equal(beta, torch.zeros(5, 4, 8))


def test_eilm_on_output_and_on_input_both_change_the_experts_once_trained():
    torch.manual_seed(0)
    layer, eilm = SparseMoE(8, 4, 2), EiLM(8, 4)
    with torch.no_grad():
        for p in eilm.parameters():
            p.normal_(0, 0.5)
    h, owner = torch.randn(20, 8), torch.arange(20) // 10
    gamma, beta = eilm(torch.randn(2, 3, 8))
    plain, _ = layer(h, owner)
    on_output, _ = layer(h, owner, gamma=gamma, beta=beta)
    on_input, _ = layer(h, owner, gamma=gamma, beta=beta, modulate_input=True)
    assert not torch.allclose(plain, on_output) and not torch.allclose(plain, on_input)
    assert not torch.allclose(on_output, on_input)


def test_router_modulation_forms_at_initialisation():
    instructions = torch.randn(2, 3, 8)
    assert torch.equal(RouterModulation(8, 4, "additive")(instructions), torch.zeros(2, 4))
    shift = RouterModulation(8, 4, "sigmoid", strength=0.75)(instructions)
    torch.testing.assert_close(shift, torch.full((2, 4), 0.375))  # a uniform shift: top-K unchanged
    layer, h, owner = SparseMoE(8, 4, 2), torch.randn(30, 8), torch.zeros(30, dtype=torch.long)
    assert torch.equal(layer.route(h, owner).experts, layer.route(h, owner, prob_shift=shift[:1]).experts)
