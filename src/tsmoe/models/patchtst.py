"""PatchTST (Nie et al., ICLR 2023, "A Time Series is Worth 64 Words").

Each channel is handled alone (channel independence, shared weights): instance-normalised (RevIN without
affine terms), cut into patches of ``patch_len`` every ``stride`` steps (the end padded by repeating the
last value, one extra patch), embedded ``Linear(patch_len -> d) + learned position`` (uniform in +-0.02),
passed through the official encoder (:mod:`tsmoe.layers.patch_encoder`: residual attention, BatchNorm,
post-norm), flattened and mapped to the horizon by one linear layer shared by all channels (the "flatten
head", its dropout after the linear map as in the official code). ``norm: layer`` and
``residual_attention: false`` give PyTorch's standard encoder layer instead, for ablation
(``benchmarks/results/p9-neuralforecast.json`` measures both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tsmoe.errors import ConfigError
from tsmoe.layers.instance_norm import instance_normalize
from tsmoe.layers.patch_encoder import FastDropout, PatchEncoder
from tsmoe.models.entry import ModelEntry


@dataclass
class PatchTSTParams:
    patch_len: int = 16
    stride: int = 8
    d_model: int = 16
    n_heads: int = 4
    d_ff: int = 128
    layers: int = 3
    dropout: float = 0.3
    head_dropout: float = 0.0
    attn_dropout: float = 0.0
    norm: Literal["batch", "layer"] = "batch"
    residual_attention: bool = True


class PatchTST(nn.Module):
    """``batch["x"] (B, L, C)`` -> forecast ``(B, horizon, C)``."""

    def __init__(self, params: PatchTSTParams, dims: dict[str, int], task: str) -> None:
        super().__init__()
        lookback, self.horizon = dims["lookback"], dims["horizon"]
        if params.d_model % params.n_heads:
            raise ConfigError(
                f"model.d_model ({params.d_model}) must be a multiple of model.n_heads ({params.n_heads})"
            )
        self.params = params
        self.n_patches = (max(lookback, params.patch_len) - params.patch_len) // params.stride + 2
        self.embed = nn.Linear(params.patch_len, params.d_model)
        self.position = nn.Parameter(torch.empty(self.n_patches, params.d_model).uniform_(-0.02, 0.02))
        self.encoder = PatchEncoder(
            params.d_model,
            params.n_heads,
            params.d_ff,
            params.layers,
            params.dropout,
            params.attn_dropout,
            params.norm,
            params.residual_attention,
        )
        self.dropout = FastDropout(params.dropout)
        self.head = nn.Sequential(
            nn.Flatten(1), nn.Linear(self.n_patches * params.d_model, self.horizon), FastDropout(params.head_dropout)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, mean, std = instance_normalize(batch["x"])
        b, length, channels = x.shape
        series = x.permute(0, 2, 1).reshape(b * channels, length)
        pad = self.params.stride + max(self.params.patch_len - length, 0)
        series = torch.cat([series, series[:, -1:].expand(-1, pad)], dim=1)  # ReplicationPad1d((0, stride))
        patches = series.unfold(1, self.params.patch_len, self.params.stride)[:, : self.n_patches]
        h = self.encoder(self.dropout(self.embed(patches) + self.position))
        forecast = self.head(h).view(b, channels, self.horizon).permute(0, 2, 1)
        return forecast * std + mean


ENTRIES = (
    ModelEntry(
        "patchtst",
        PatchTST,
        PatchTSTParams,
        "window",
        frozenset({"forecast"}),
        "PatchTST: channel-independent patch Transformer",
    ),
)
