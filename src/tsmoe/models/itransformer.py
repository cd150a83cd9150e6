"""iTransformer (Liu et al., ICLR 2024, "iTransformer: Inverted Transformers Are Effective for Time
Series Forecasting").

Each variate's whole lookback window becomes one token (``Linear(L -> d)``), a Transformer encoder
attends across variates, and ``Linear(d -> horizon)`` maps each token to its forecast. Windows are
normalised over time per variate (``use_norm``), never over the variate axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsmoe.layers.instance_norm import instance_normalize
from tsmoe.models.entry import ModelEntry


@dataclass
class ITransformerParams:
    d_model: int = 256
    n_heads: int = 8
    d_ff: int = 256
    layers: int = 2
    dropout: float = 0.1


class ITransformer(nn.Module):
    """``batch["x"] (B, L, C)`` -> forecast ``(B, horizon, C)``."""

    def __init__(self, params: ITransformerParams, dims: dict[str, int], task: str) -> None:
        super().__init__()
        self.embed = nn.Linear(dims["lookback"], params.d_model)
        self.dropout = nn.Dropout(params.dropout)
        layer = nn.TransformerEncoderLayer(
            params.d_model, params.n_heads, params.d_ff, params.dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, params.layers, norm=nn.LayerNorm(params.d_model), enable_nested_tensor=False
        )
        self.project = nn.Linear(params.d_model, dims["horizon"])

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, mean, std = instance_normalize(batch["x"])
        tokens = self.encoder(self.dropout(self.embed(x.transpose(1, 2))))  # (B, C, d): one token per variate
        return self.project(tokens).transpose(1, 2) * std + mean


ENTRIES = (
    ModelEntry(
        "itransformer",
        ITransformer,
        ITransformerParams,
        "window",
        frozenset({"forecast"}),
        "iTransformer: attention across variates",
    ),
)
