"""MiTransformer, MoME's modulated iTransformer (the MoME reference code's ``TS_Encoder/MiTransformer.py``).

iTransformer (:mod:`tsmoe.models.itransformer`) whose feed-forward block is a sparse top-K mixture of
SwiGLU experts steered by text. For a window ``x (B, L, C)``:

1. each variate normalised over time (RevIN without affine terms) and embedded whole as one token,
   ``Linear(L -> d)``, dropout;
2. ``layers`` post-norm blocks over the ``C`` variate tokens:
   ``h = LN(h + Drop(Attn(h)))``, ``h = LN(h + Drop(MoE(h)))``, where ``MoE`` routes each variate token to
   its top-K of E experts ``f_e(h) = W_down (silu(W_gate h) * W_up h)``, EiLM modulates each expert's
   output (``gamma_e f_e(h) + beta_e``, per window) and Router Modulation shifts the router;
3. a final LayerNorm, ``Linear(d -> horizon)`` per variate, and the normalisation undone.

The reference passes the head count where the experts' inner width belongs and gives every sample the
first sample's text; here ``d_inner`` is its own setting (default ``2 d``, the reference's intent) and
every window reads its own text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsmoe.errors import ConfigError
from tsmoe.layers.instance_norm import instance_normalize
from tsmoe.layers.sparse_moe import Routing, SparseMoE
from tsmoe.models.entry import ModelEntry
from tsmoe.models.text_steering import SteeringParams, check_text_setting, steering_modules, window_modulation


@dataclass
class MiTransformerParams(SteeringParams):
    d_model: int = 64
    n_heads: int = 4
    d_inner: int | None = None  # experts' inner width (None: 2 * d_model)
    layers: int = 2
    experts: int = 4
    top_k: int = 2
    renormalize: bool = False
    dropout: float = 0.1


class MoEEncoderLayer(nn.Module):
    """``h = LN(h + Drop(Attn(h)))``, ``h = LN(h + Drop(MoE(h)))`` over ``(B, C, d)`` variate tokens."""

    def __init__(self, params: MiTransformerParams) -> None:
        super().__init__()
        d = params.d_model
        self.attention = nn.MultiheadAttention(d, params.n_heads, dropout=params.dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(d)
        self.moe = SparseMoE(d, params.experts, params.top_k, params.d_inner or 2 * d, params.renormalize)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(params.dropout)

    def forward(self, h: torch.Tensor, modulation: dict) -> tuple[torch.Tensor, Routing, torch.Tensor]:
        """``h (B, C, d)`` -> ``(h (B, C, d), routing, moe_input (B * C, d))``."""
        h = self.attention_norm(h + self.dropout(self.attention(h, h, h, need_weights=False)[0]))
        b, channels, d = h.shape
        window = torch.arange(b, device=h.device).repeat_interleave(channels)
        moe_input = h.reshape(-1, d)
        out, routing = self.moe(moe_input, window, **modulation)
        return self.norm(h + self.dropout(out.view(b, channels, d))), routing, moe_input


class MiTransformer(nn.Module):
    """``batch["x"] (B, L, C)`` (+ text) -> ``output (B, horizon, C)``, ``routing`` (per layer, over the
    ``B * C`` variate tokens), ``expert_inputs``, ``expert_load (layers, E)`` and ``dropped``."""

    def __init__(self, params: MiTransformerParams, dims: dict[str, int], task: str) -> None:
        super().__init__()
        check_text_setting("mitransformer", params.text, dims.get("text_dim", 0), params.text_dropout)
        if params.d_model % params.n_heads:
            raise ConfigError(
                f"model.d_model ({params.d_model}) must be a multiple of model.n_heads ({params.n_heads})"
            )
        self.params = params
        self.embed = nn.Linear(dims["lookback"], params.d_model)
        self.dropout = nn.Dropout(params.dropout)
        self.blocks = nn.ModuleList(MoEEncoderLayer(params) for _ in range(params.layers))
        self.norm = nn.LayerNorm(params.d_model)
        self.project = nn.Linear(params.d_model, dims["horizon"])
        self.query_pool, self.eilm, self.router_modulation = steering_modules(
            params, dims.get("text_dim", 0), params.d_model, params.experts, params.d_model, params.dropout
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, object]:
        x, mean, std = instance_normalize(batch["x"])
        modulation = window_modulation(self, batch)
        h = self.dropout(self.embed(x.transpose(1, 2)))  # (B, C, d): one token per variate
        routings, expert_inputs = [], []
        for block in self.blocks:
            h, routing, moe_input = block(h, modulation)
            routings.append(routing)
            expert_inputs.append(moe_input.detach())
        forecast = self.project(self.norm(h)).transpose(1, 2) * std + mean
        return {
            "output": forecast,
            "routing": routings,
            "expert_inputs": expert_inputs,
            "expert_load": torch.stack(
                [torch.bincount(r.experts.reshape(-1), minlength=self.params.experts) for r in routings]
            ),  # fmt: skip
            "dropped": torch.stack([r.dropped for r in routings]),
        }


ENTRIES = (
    ModelEntry(
        "mitransformer",
        MiTransformer,
        MiTransformerParams,
        "window",
        frozenset({"forecast"}),
        "MiTransformer: iTransformer whose feed-forward is a sparse MoE modulated by text (EiLM, RM)",
    ),
)
