"""PatchTST's Transformer encoder as the official code defines it (Nie et al., ICLR 2023;
``PatchTST_backbone.TSTEncoder`` in yuqinie98/PatchTST, ported unchanged to neuralforecast).

Two things set it apart from PyTorch's ``nn.TransformerEncoderLayer``:

- **residual attention**: each layer adds the previous layer's pre-softmax scores to its own,
  ``S_l = Q_l K_l^T / sqrt(d_k) + S_{l-1}`` with ``S_0 = 0``, ``A_l = softmax(S_l)`` (RealFormer, He et
  al. 2021);
- **BatchNorm** over the model width (statistics over all patches of all series in the batch) after each
  residual sum, post-norm: ``h = BN(h + Attn(h)); h = BN(h + FFN(h))``.

Both can be switched off (``residual_attention=False``, ``norm="layer"``) to measure what they buy.

Two CPU kernels are replaced by what they compute, for speed (PatchTST's tensors are many and small, and
a profile of a training step put most of its time in ``softmax`` over rows of P = 13 and in dropout's
``bernoulli_``): the softmax over the ``P`` patches is ``exp(s - max s) / sum exp(s - max s)``, and dropout
draws its mask with ``torch.rand``. Both give PyTorch's functions (to float rounding; the dropout mask
follows the same distribution from other random numbers). The ETTh1 recipe's model step went from 38 to
26 ms (``benchmarks/p9_neuralforecast.py --model-share``, before and after).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose mask is ``rand >= p`` (the same Bernoulli(1 - p) mask, drawn with ``torch.rand``,
    which a CPU draws faster than ``bernoulli_``); the kept values are scaled by ``1 / (1 - p)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1 / (1 - p), in x's dtype
        return x * keep


def row_softmax(scores: torch.Tensor) -> torch.Tensor:
    """``softmax`` over the last axis as ``exp(s - max s) / sum exp(s - max s)`` (faster than
    ``torch.softmax`` on a CPU for short rows)."""
    shifted = (scores - scores.amax(dim=-1, keepdim=True)).exp()
    return shifted / shifted.sum(dim=-1, keepdim=True)


class ResidualMultiheadAttention(nn.Module):
    """Multi-head self-attention that returns its pre-softmax scores for the next layer.

    ``x (N, P, d)``, ``previous (N, heads, P, P) | None`` -> ``(out (N, P, d), scores (N, heads, P, P))``,
    ``scores = (x W_q)(x W_k)^T / sqrt(d / heads) + previous``, ``out = W_o softmax(scores) (x W_v)``.
    """

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * self.head_dim * n_heads)
        self.attn_dropout = FastDropout(attn_dropout)
        self.out = nn.Sequential(nn.Linear(self.head_dim * n_heads, d_model), FastDropout(dropout))

    def forward(self, x: torch.Tensor, previous: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        n, p, _ = x.shape
        q, k, v = self.qkv(x).view(n, p, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) * self.head_dim**-0.5
        if previous is not None:
            scores = scores + previous
        weights = self.attn_dropout(row_softmax(scores))
        heads = (weights @ v).transpose(1, 2).reshape(n, p, self.n_heads * self.head_dim)
        return self.out(heads), scores


class _BatchNormOverWidth(nn.Module):
    """``BatchNorm1d`` on ``(N, P, d)``: one mean and variance per model dimension over all ``N * P`` rows
    (computed on the ``(N * P, d)`` rows, which needs no transposed copies)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.reshape(-1, x.shape[-1])).view(x.shape)


def _norm(kind: str, d_model: int) -> nn.Module:
    return _BatchNormOverWidth(d_model) if kind == "batch" else nn.LayerNorm(d_model)


class PatchEncoderLayer(nn.Module):
    """One post-norm layer: ``h = N(h + Drop(Attn(h))); h = N(h + Drop(W_2 Drop(GELU(W_1 h))))``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attn_dropout: float, norm: str) -> None:
        super().__init__()
        self.attention = ResidualMultiheadAttention(d_model, n_heads, attn_dropout, dropout)
        self.drop_attention = FastDropout(dropout)
        self.norm_attention = _norm(norm, d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), FastDropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.drop_feed_forward = FastDropout(dropout)
        self.norm_feed_forward = _norm(norm, d_model)

    def forward(self, h: torch.Tensor, previous: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        update, scores = self.attention(h, previous)
        h = self.norm_attention(h + self.drop_attention(update))
        h = self.norm_feed_forward(h + self.drop_feed_forward(self.feed_forward(h)))
        return h, scores


class PatchEncoder(nn.Module):
    """A stack of :class:`PatchEncoderLayer`; ``(N, P, d)`` -> ``(N, P, d)``."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        layers: int,
        dropout: float,
        attn_dropout: float = 0.0,
        norm: Literal["batch", "layer"] = "batch",
        residual_attention: bool = True,
    ) -> None:
        super().__init__()
        self.residual_attention = residual_attention
        self.layers = nn.ModuleList(
            PatchEncoderLayer(d_model, n_heads, d_ff, dropout, attn_dropout, norm) for _ in range(layers)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = None
        for layer in self.layers:
            h, layer_scores = layer(h, scores)
            scores = layer_scores if self.residual_attention else None
        return h
