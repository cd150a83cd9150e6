"""How text steers a mixture of experts without becoming tokens: QueryPool, EiLM, Router Modulation.

- :class:`QueryPool`: N learned queries cross-attend to a text's token states and give N instruction
  vectors ``d_i`` of width ``d``. A text with no tokens (empty or missing) gives ``d_i = 0``: the null
  signal, under which EiLM is the identity and Router Modulation shifts nothing (additive form).
- :class:`EiLM` (expert-wise instruction-based linear modulation): per expert ``e``,
  ``gamma_e = 1 + mean_i(w_e . d_i)`` (a scalar per sample) and ``beta_e = mean_i(W_e d_i)`` (a vector),
  applied as ``gamma_e * f_e(h) + beta_e``. ``w_e`` and ``W_e`` start at zero, so a model with text
  starts exactly where the same model without text starts (the reference code starts at gamma near 0).
- :class:`RouterModulation`: ``r = mean_i(W_r d_i)`` shifts the router, additively on the logits
  (``softmax(W_g h + r)``), or after the softmax (``softmax(W_g h) + lambda * sigmoid(r)``); the reference
  code has used both. ``W_r`` starts at zero: the additive form starts as the identity; the sigmoid
  form starts as a uniform shift of ``lambda / 2``, which leaves the top-K choice unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class QueryPool(nn.Module):
    """``tokens (B, T, D_text)``, ``mask (B, T)`` (True = a token) -> instruction vectors ``(B, N, d)``.

    ``d_i = LayerNorm(softmax(q_i K^T / sqrt(d)) V)`` with ``K = V = Linear(tokens)`` (one head, padding
    masked); rows of texts without tokens are zero.
    """

    def __init__(self, text_dim: int, d_model: int, n_queries: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(text_dim, d_model)
        self.queries = nn.Parameter(torch.empty(n_queries, d_model))
        nn.init.orthogonal_(self.queries)
        self.attention = nn.MultiheadAttention(d_model, num_heads=1, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        has_text = mask.any(dim=1)  # (B,)
        keys = self.project(tokens)
        safe_mask = mask.clone()
        safe_mask[~has_text, 0] = True  # attend to a zero pad instead of nothing; zeroed below
        queries = self.queries.unsqueeze(0).expand(len(tokens), -1, -1)
        pooled, _ = self.attention(queries, keys, keys, key_padding_mask=~safe_mask, need_weights=False)
        return self.norm(pooled) * has_text[:, None, None].to(pooled.dtype)


class EiLM(nn.Module):
    """Instruction vectors ``(B, N, d)`` -> ``gamma (B, E)``, ``beta (B, E, d_out)`` (identity at init);
    ``d_out`` is the width of an expert's output (default ``d``)."""

    def __init__(self, d_model: int, n_experts: int, d_out: int | None = None) -> None:
        super().__init__()
        self.n_experts, self.d_out = n_experts, d_out or d_model
        self.scale = nn.Linear(d_model, n_experts, bias=False)  # rows are w_e
        self.shift = nn.Linear(d_model, n_experts * self.d_out, bias=False)  # blocks are W_e
        nn.init.zeros_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, instructions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gamma = 1.0 + self.scale(instructions).mean(1)
        beta = self.shift(instructions).mean(1).view(-1, self.n_experts, self.d_out)
        return gamma, beta


class RouterModulation(nn.Module):
    """Instruction vectors ``(B, N, d)`` -> a router shift ``(B, E)``: ``r`` (additive form, on the logits)
    or ``lambda * sigmoid(r)`` (sigmoid form, on the probabilities)."""

    def __init__(self, d_model: int, n_experts: int, form: str = "additive", strength: float = 0.75) -> None:
        super().__init__()
        if form not in ("additive", "sigmoid"):
            raise ValueError(f"router modulation form must be 'additive' or 'sigmoid', got '{form}'")
        self.form, self.strength = form, strength
        self.project = nn.Linear(d_model, n_experts, bias=False)
        nn.init.zeros_(self.project.weight)

    def forward(self, instructions: torch.Tensor) -> torch.Tensor:
        shift = self.project(instructions).mean(1)
        return shift if self.form == "additive" else self.strength * torch.sigmoid(shift)
