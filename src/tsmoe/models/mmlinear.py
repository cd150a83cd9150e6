"""MMLinear, MoME's modulated mixture of linear experts (the MoME reference code's ``TS_Encoder/mmlinear.py``).

For a window ``x (B, L, C)``, each channel's whole input window is one token (channels independent, weights
shared):

1. normalised by its own input as in ``mome``: ``z = clip((x - mean) / max(std, 1e-3), -10, 10)``;
2. a router ``p = softmax(W_g z)`` (no bias, ``L -> E``) picks the top-K of E experts; expert ``e`` is a
   linear map of the whole window to the horizon, ``f_e(z) = z W_e + b_e`` (``L -> H``);
3. text steers the mixture (``text``: ``both``, ``eilm``, ``rm``, ``none``): EiLM modulates each expert's
   output, ``gamma_e f_e(z) + beta_e`` (``gamma_e`` a scalar, ``beta_e`` a horizon-wide vector, per window),
   and Router Modulation shifts the router's logits (``additive``) or probabilities (``sigmoid``);
4. ``y = (sum_{e in topK} p_e m_e(f_e(z))) * std + mean``.

Unlike the reference, every window of a batch gets its own text's modulation (the reference takes the
first sample's, as its batch size is 1) and the experts run in one batched matmul, not a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsmoe.layers.sparse_moe import LinearExperts, SparseMoE
from tsmoe.models.entry import ModelEntry
from tsmoe.models.mome import CLIP, STD_FLOOR
from tsmoe.models.text_steering import SteeringParams, check_text_setting, steering_modules, window_modulation


@dataclass
class MMLinearParams(SteeringParams):
    experts: int = 4
    top_k: int = 2
    d_model: int = 32  # width of the instruction vectors (QueryPool's output)
    renormalize: bool = False  # renormalise the top-K weights to sum to 1 (the reference does not)
    dropout: float = 0.1  # QueryPool's attention dropout


class _Block(nn.Module):
    """The one MoE layer, as ``blocks[0].moe`` (the layout :mod:`tsmoe.analysis.moe_readout` reads)."""

    def __init__(self, moe: SparseMoE) -> None:
        super().__init__()
        self.moe = moe


class MMLinear(nn.Module):
    """``batch["x"] (B, L, C)`` (+ text) -> ``output (B, horizon, C)``, ``routing`` (one ``Routing`` over
    the ``B * C`` windows), ``expert_inputs``, ``expert_load (1, E)`` and ``dropped``."""

    def __init__(self, params: MMLinearParams, dims: dict[str, int], task: str) -> None:
        super().__init__()
        check_text_setting("mmlinear", params.text, dims.get("text_dim", 0), params.text_dropout)
        self.params = params
        lookback, self.horizon = dims["lookback"], dims["horizon"]
        experts = LinearExperts(params.experts, lookback, self.horizon)
        moe = SparseMoE(lookback, params.experts, params.top_k, renormalize=params.renormalize, experts=experts)
        self.blocks = nn.ModuleList([_Block(moe)])
        self.query_pool, self.eilm, self.router_modulation = steering_modules(
            params, dims.get("text_dim", 0), params.d_model, params.experts, self.horizon, params.dropout
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, object]:
        x = batch["x"]
        b, length, channels = x.shape
        mean = x.mean(1, keepdim=True)
        std = x.std(1, unbiased=False, keepdim=True).clamp(min=STD_FLOOR)
        z = ((x - mean) / std).clamp(-CLIP, CLIP).permute(0, 2, 1).reshape(b * channels, length)
        window = torch.arange(b, device=x.device).repeat_interleave(channels)  # the window of each token
        modulation = window_modulation(self, batch)
        out, routing = self.blocks[0].moe(z, window, **modulation)  # (B * C, H)
        forecast = out.view(b, channels, self.horizon).permute(0, 2, 1) * std + mean
        return {
            "output": forecast,
            "routing": [routing],
            "expert_inputs": [z.detach()],
            "expert_load": torch.bincount(routing.experts.reshape(-1), minlength=self.params.experts)[None],
            "dropped": routing.dropped[None],
        }


ENTRIES = (
    ModelEntry(
        "mmlinear",
        MMLinear,
        MMLinearParams,
        "window",
        frozenset({"forecast"}),
        "MMLinear: sparse mixture of linear experts (window -> horizon), modulated by text (EiLM, RM)",
    ),
)
