"""Quantile forecasts from any forecaster: the model is built for ``Q x horizon`` output steps, and the
block ``q`` of ``horizon`` steps is the forecast of quantile level ``quantiles[q]``.

Every tsmoe forecaster maps a flat representation to its horizon with a final linear layer (DLinear,
PatchTST, iTransformer, MoME and its baselines), so asking it for ``Q`` horizons gives each quantile its
own output weights on a shared body, the usual multi-quantile head. Trained with the pinball loss
(:meth:`tsmoe.tasks.ForecastTask.quantile_loss`); the median block is the point forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tsmoe.errors import ConfigError


def check_quantiles(quantiles: Sequence[float]) -> list[float]:
    """Quantile levels in (0, 1), strictly increasing (so no repeats), with the median 0.5 among them."""
    levels = [float(q) for q in quantiles]
    if not levels:
        raise ConfigError("model.quantiles: give the levels to forecast, e.g. [0.1, 0.5, 0.9], or null for none")
    if any(not 0.0 < q < 1.0 for q in levels):
        raise ConfigError(f"model.quantiles: every level must lie in (0, 1), got {levels}")
    if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
        raise ConfigError(f"model.quantiles: levels must increase without repeats, got {levels}")
    if 0.5 not in levels:
        raise ConfigError(f"model.quantiles: the median 0.5 must be among the levels (it is the point forecast); "
                          f"got {levels}")  # fmt: skip
    return levels


class QuantileForecaster(nn.Module):
    """``base(batch) (B, Q * horizon, C)`` -> ``{"output": median (B, horizon, C), "quantiles": (B, horizon, C,
    Q)}``, with the base model's extras (a balance loss, routing read-outs) passed on."""

    def __init__(self, base: nn.Module, quantiles: Sequence[float], horizon: int) -> None:
        super().__init__()
        self.base = base
        self.levels = list(quantiles)
        self.horizon = horizon
        self.median = self.levels.index(0.5)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        result = self.base(batch)
        extras = dict(result) if isinstance(result, dict) else {}
        flat = extras.pop("output", result)
        b, _, channels = flat.shape
        blocks = flat.view(b, len(self.levels), self.horizon, channels)
        # sorted along the level axis, so the forecast quantiles never cross (Chernozhukov et al. 2010)
        quantiles = blocks.permute(0, 2, 3, 1).sort(dim=-1).values
        return {**extras, "output": quantiles[..., self.median], "quantiles": quantiles}
