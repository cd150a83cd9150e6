"""MoME (Zhang et al., arXiv:2601.21547): a sparse MoE over series patches whose experts and router are
modulated by text, and the two models it is judged against that share its backbone.

Pipeline, for a window ``x (B, L, C)`` (channels handled independently, weights shared):
1. each series is normalised by its own input, ``z = clip((x - mean) / max(std, 1e-3), -10, 10)``;
2. cut into non-overlapping patches of ``patch_len`` (zero-padded at the end), ``Linear -> d``;
3. ``layers`` sparse MoE blocks ``h <- h + MoE(LN(h))`` (self-attention ``h <- h + Attn(LN(h))`` before
   every block after the first, or before every block with ``attention_first``);
4. text (``batch["text_tokens"]``) -> :class:`QueryPool` -> instruction vectors, which drive EiLM and/or
   Router Modulation (``text``: ``both``, ``eilm``, ``rm`` or ``none``); with ``text_dropout = p``, each
   window's instruction vectors are zeroed (the null text) with probability p in training only;
5. head: flatten the patch tokens, ``Linear -> horizon``, and undo step 1 (``y = head * std + mean``; with
   ``anchor="last"``, ``y = head * std + x_L``: the head predicts the change from the last value, so an
   output of zero is the last-value forecast); or, for the trend task (``multiclass``), ``Linear -> 3``
   logits (down / flat / up).

Registered as ``mome`` (text by modulation), ``timemoe`` (no text: attention + sparse MoE with a shared
expert, in the style of Time-MoE) and ``token_fusion`` (text enters as extra tokens beside the patch
tokens, the approach MoME argues against).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from tsmoe.errors import ConfigError
from tsmoe.layers.sparse_moe import Routing, SparseMoE
from tsmoe.models.entry import ModelEntry
from tsmoe.models.text_steering import instructions_of, modulation_of, refuse_unresolved_text, steering_modules

STD_FLOOR, CLIP = 1e-3, 10.0  # the reference code's per-window normalisation


@dataclass
class MomeParams:
    patch_len: int = 4
    d_model: int = 32
    d_inner: int | None = None  # experts' hidden width (None: d_model, as the reference)
    experts: int = 4
    top_k: int = 2
    renormalize: bool = False  # renormalise the top-K weights to sum to 1 (the reference does not)
    capacity_factor: float | None = None  # cap tokens per expert at factor * N * K / E (None: no cap)
    shared_expert: bool = False
    layers: int = 1
    attention_first: bool = False  # self-attention before the first MoE block too
    n_heads: int = 4
    text: Literal["both", "eilm", "rm", "none", "auto"] = "both"  # auto: both or none, on validation
    router_modulation: Literal["additive", "sigmoid"] = "additive"
    rm_strength: float = 0.75  # lambda of the sigmoid form
    eilm_on: Literal["output", "input"] = "output"
    text_as_tokens: bool = False  # token fusion: instruction vectors become tokens beside the patches
    n_queries: int = 3
    text_input: Literal["tokens", "pooled"] = "tokens"  # what QueryPool reads: the text's token states
    # (the reference), or its pooled sentence vector as one token (fewer inputs to fit on small data)
    dropout: float = 0.1
    text_dropout: float = 0.0  # in training, each window's text is replaced by the null text with this
    # probability (modality dropout), so the model also learns to forecast without it
    balance_weight: float = 0.0  # weight of the Switch balance loss (0: off, as the reference)
    anchor: Literal["mean", "last"] = "mean"  # the forecast is relative to the window's mean (the
    # reference) or to its last value (a residual on the last-value forecast)


@dataclass
class TimeMoEParams(MomeParams):
    text: Literal["both", "eilm", "rm", "none"] = "none"
    shared_expert: bool = True
    layers: int = 2
    attention_first: bool = True


@dataclass
class TokenFusionParams(MomeParams):
    text: Literal["both", "eilm", "rm", "none"] = "none"
    text_as_tokens: bool = True
    attention_first: bool = True


class Block(nn.Module):
    """``h <- h + Attn(LN(h))`` (optional), then ``h <- h + MoE(LN(h))``."""

    def __init__(self, params: MomeParams, attention: bool) -> None:
        super().__init__()
        d = params.d_model
        # built in every block and dropped where unused: its random draws come before the MoE's, so the
        # initialisation (and every stored P2/P3 run) stays the same, and no parameter is left unused
        self_attention = nn.MultiheadAttention(d, params.n_heads, dropout=params.dropout, batch_first=True)
        self.attention = self_attention if attention else None
        self.attention_norm = nn.LayerNorm(d) if attention else None
        self.norm = nn.LayerNorm(d)
        self.moe = SparseMoE(
            d, params.experts, params.top_k, params.d_inner, params.renormalize, params.capacity_factor,
            params.shared_expert,
        )  # fmt: skip
        self.dropout = nn.Dropout(params.dropout)

    def forward(
        self, h: torch.Tensor, modulation: dict, modulate_input: bool
    ) -> tuple[torch.Tensor, Routing, torch.Tensor]:
        """``h (S, P, d)`` -> ``(h (S, P, d), routing, moe_input (S * P, d))``: the new states, how the
        layer routed each token, and the (normalised) tokens its experts saw."""
        if self.attention is not None:
            a = self.attention_norm(h)
            h = h + self.dropout(self.attention(a, a, a, need_weights=False)[0])
        series, tokens, d = h.shape
        owner = torch.arange(series, device=h.device).repeat_interleave(tokens)
        moe_input = self.norm(h).reshape(-1, d)
        out, routing = self.moe(moe_input, owner, modulate_input=modulate_input, **modulation)
        return h + self.dropout(out.view(series, tokens, d)), routing, moe_input


class MoME(nn.Module):
    """``batch["x"] (B, L, C)`` (+ ``text_tokens (B, T, D)``, ``text_mask (B, T)``) -> a dict: ``output``,
    the forecast ``(B, horizon, C)`` on the input's scale (or trend logits ``(B, n_classes)``);
    ``routing``, one :class:`Routing` per layer over its ``B * C * P`` tokens; ``expert_inputs``, the
    tokens each layer's experts saw; ``expert_load (layers, E)``; ``dropped``; and ``aux_loss`` (the
    balance loss) when ``balance_weight > 0``. Routing is output, as Hugging Face MoE models return
    ``router_logits``: nothing is left on the module for analysis to read later."""

    def __init__(self, params: MomeParams, dims: dict[str, int], task: str) -> None:
        super().__init__()
        refuse_unresolved_text("mome", params.text)
        uses_text = params.text != "none" or params.text_as_tokens
        if uses_text and not dims.get("text_dim"):
            raise ConfigError(
                f"this model reads text (model.text: {params.text}, text_as_tokens: {params.text_as_tokens}), "
                "but the data has none: use a data set with text (e.g. mome_timemmd with data.text_encoder "
                "minilm or hashing), or set model.text: none"
            )
        if not 0.0 <= params.text_dropout < 1.0:
            raise ValueError(f"text_dropout must be in [0, 1), got {params.text_dropout}")
        self.params = params
        self.horizon, d = dims["horizon"], params.d_model
        self.n_patches = -(-dims["lookback"] // params.patch_len)
        self.embed = nn.Linear(params.patch_len, d)
        self.blocks = nn.ModuleList(Block(params, params.attention_first or i > 0) for i in range(params.layers))
        self.classes = dims.get("n_classes", 0) if task == "multiclass" else 0  # trend classification head
        self.head = nn.Linear(self.n_patches * d, self.classes or self.horizon)
        self.query_pool, self.eilm, self.router_modulation = steering_modules(
            params, dims.get("text_dim", 0), d, params.experts, d, params.dropout, params.text_as_tokens
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        b, length, channels = x.shape
        mean = x.mean(1, keepdim=True)
        std = x.std(1, unbiased=False, keepdim=True).clamp(min=STD_FLOOR)
        z = ((x - mean) / std).clamp(-CLIP, CLIP).permute(0, 2, 1).reshape(b * channels, length)
        z = F.pad(z, (0, self.n_patches * self.params.patch_len - length))
        h = self.embed(z.view(b * channels, self.n_patches, self.params.patch_len))  # (B*C, P, d)

        modulation: dict[str, torch.Tensor] = {}
        if self.query_pool is not None:
            instructions = instructions_of(
                self.query_pool, batch, self.params.text_input, self.params.text_dropout, self.training
            )  # (B, N, d)
            instructions = instructions.repeat_interleave(channels, dim=0)  # one row per series
            modulation = modulation_of(instructions, self.eilm, self.router_modulation)
            if self.params.text_as_tokens:
                h = torch.cat([instructions, h], dim=1)

        routings, expert_inputs = [], []
        for block in self.blocks:
            h, routing, moe_input = block(h, modulation, self.params.eilm_on == "input")
            routings.append(routing)
            expert_inputs.append(moe_input.detach())
        if self.params.text_as_tokens:
            h = h[:, -self.n_patches :]
        if self.classes:  # trend logits (B, n_classes), from the target channel
            result = self.head(h.reshape(b, channels, -1)[:, 0])
        else:
            forecast = self.head(h.reshape(b * channels, -1)).view(b, channels, self.horizon).permute(0, 2, 1)
            result = forecast * std + (x[:, -1:] if self.params.anchor == "last" else mean)
        out = {
            "output": result,
            "expert_load": torch.stack(
                [torch.bincount(r.experts.reshape(-1), minlength=self.params.experts) for r in routings]
            ),  # fmt: skip
            "dropped": torch.stack([r.dropped for r in routings]),
            "routing": routings,  # per layer, per token (tsmoe.analysis.moe_readout reads it)
            "expert_inputs": expert_inputs,  # per layer, (B * C * P, d): what the experts saw
        }
        if self.params.balance_weight > 0:
            out["aux_loss"] = self.params.balance_weight * torch.stack([r.balance_loss for r in routings]).mean()
        return out


_TASKS = frozenset({"forecast", "multiclass"})
ENTRIES = (
    ModelEntry(
        "mome", MoME, MomeParams, "window", _TASKS, "MoME: sparse MoE over patches, modulated by text (EiLM, RM)"
    ),
    ModelEntry("timemoe", MoME, TimeMoEParams, "window", _TASKS, "Time-MoE-style: attention + sparse MoE, no text"),
    ModelEntry("token_fusion", MoME, TokenFusionParams, "window", _TASKS, "text as extra tokens beside the patches"),
)
