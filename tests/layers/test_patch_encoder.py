"""PatchTST's official encoder: residual attention, BatchNorm over the width, and its switches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsmoe.errors import ConfigError
from tsmoe.layers.patch_encoder import PatchEncoder, PatchEncoderLayer, ResidualMultiheadAttention
from tsmoe.models.patchtst import PatchTST, PatchTSTParams


def test_without_its_two_parts_a_layer_is_pytorchs_standard_encoder_layer():
    torch.manual_seed(0)
    ours = PatchEncoderLayer(16, 4, 32, dropout=0.0, attn_dropout=0.0, norm="layer").eval()
    theirs = nn.TransformerEncoderLayer(16, 4, 32, 0.0, activation="gelu", batch_first=True).eval()
    ours.attention.qkv.weight.data.copy_(theirs.self_attn.in_proj_weight)
    ours.attention.qkv.bias.data.copy_(theirs.self_attn.in_proj_bias)
    ours.attention.out[0].load_state_dict(theirs.self_attn.out_proj.state_dict())
    ours.feed_forward[0].load_state_dict(theirs.linear1.state_dict())
    ours.feed_forward[3].load_state_dict(theirs.linear2.state_dict())
    ours.norm_attention.load_state_dict(theirs.norm1.state_dict())
    ours.norm_feed_forward.load_state_dict(theirs.norm2.state_dict())
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, None)[0], theirs(x), atol=1e-5, rtol=1e-5)


def test_residual_attention_adds_the_previous_layers_scores():
    torch.manual_seed(0)
    attention = ResidualMultiheadAttention(8, 2, attn_dropout=0.0, dropout=0.0)
    x, previous = torch.randn(2, 6, 8), torch.randn(2, 2, 6, 6)
    _, own = attention(x, None)
    out, scores = attention(x, previous)
    torch.testing.assert_close(scores, own + previous)
    _, value = attention.qkv(x).view(2, 6, 3, 2, 4).permute(2, 0, 3, 1, 4)[1:]
    heads = (torch.softmax(own + previous, -1) @ value).transpose(1, 2).reshape(2, 6, 8)
    torch.testing.assert_close(out, attention.out(heads))


def test_the_encoder_carries_scores_only_with_residual_attention():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 8)
    carried = PatchEncoder(8, 2, 16, 2, 0.0, residual_attention=True).eval()
    alone = PatchEncoder(8, 2, 16, 2, 0.0, residual_attention=False).eval()
    alone.load_state_dict(carried.state_dict())
    seen: list = []
    carried.layers[1].attention.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    alone.layers[1].attention.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    with torch.no_grad():
        assert not torch.allclose(carried(x), alone(x))
    assert seen[0] is not None and seen[0].shape == (4, 2, 6, 6) and seen[1] is None


def test_batch_norm_standardises_each_width_over_every_patch_of_the_batch():
    layer = PatchEncoderLayer(8, 2, 16, dropout=0.0, attn_dropout=0.0, norm="batch").train()
    out = layer(torch.randn(5, 7, 8) * 3 + 2, None)[0]
    torch.testing.assert_close(out.mean(dim=(0, 1)), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=(0, 1), unbiased=False), torch.ones(8), atol=1e-3, rtol=0)


def test_patchtst_defaults_to_the_official_encoder_and_refuses_heads_that_do_not_divide_the_width():
    dims = {"lookback": 32, "horizon": 8, "channels": 2}
    model = PatchTST(PatchTSTParams(), dims, "forecast")
    assert isinstance(model.encoder.layers[0].norm_attention.norm, nn.BatchNorm1d)
    assert model.encoder.residual_attention
    assert model({"x": torch.randn(3, 32, 2)}).shape == (3, 8, 2)
    with pytest.raises(ConfigError, match="multiple of model.n_heads"):
        PatchTST(PatchTSTParams(d_model=10, n_heads=4), dims, "forecast")


def test_the_faster_softmax_and_dropout_compute_pytorchs_functions():
    from tsmoe.layers.patch_encoder import FastDropout, row_softmax

    scores = torch.randn(50, 4, 13, 13) * 10
    torch.testing.assert_close(row_softmax(scores), torch.softmax(scores, -1), atol=1e-6, rtol=1e-5)
    dropout = FastDropout(0.3).train()
    x = torch.ones(200_000)
    kept = dropout(x)
    assert kept.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert (kept == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    assert kept.mean().item() == pytest.approx(1.0, abs=0.01)  # the expectation is kept
    assert torch.equal(dropout.eval()(x), x)
