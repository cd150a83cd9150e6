"""DLinear (Zeng et al., AAAI 2023, "Are Transformers Effective for Time Series Forecasting?").

The input window is split by a moving average into a trend and a remainder (seasonal) part; one linear
map over time forecasts each, and the forecast is their sum:
``x_trend = AvgPool_k(pad(x))``, ``x_season = x - x_trend``, ``y = W_s x_season + W_t x_trend``.
Channels share the maps unless ``individual`` (one pair per channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsmoe.errors import ConfigError
from tsmoe.models.entry import ModelEntry


@dataclass
class DLinearParams:
    moving_avg: int = 25  # kernel of the trend filter, in steps (odd)
    individual: bool = False


class MovingAverage(nn.Module):
    """Moving average over time with the ends padded by repetition: ``(B, L, C) -> (B, L, C)``."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.pool = nn.AvgPool1d(kernel_size=kernel, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        front = x[:, :1].repeat(1, (self.kernel - 1) // 2, 1)
        back = x[:, -1:].repeat(1, self.kernel // 2, 1)
        padded = torch.cat([front, x, back], dim=1)
        return self.pool(padded.transpose(1, 2)).transpose(1, 2)


class DLinear(nn.Module):
    """``batch["x"] (B, lookback, C)`` -> forecast ``(B, horizon, C)``."""

    def __init__(self, params: DLinearParams, dims: dict[str, int], task: str) -> None:
        super().__init__()
        lookback, horizon, channels = dims["lookback"], dims["horizon"], dims["n_channels"]
        if not 1 <= params.moving_avg <= 2 * lookback:  # wider, the padding's repeated ends are all it averages
            raise ConfigError(
                f"model.moving_avg: the trend filter's kernel must be 1 to twice the lookback ({2 * lookback}) "
                f"steps, got {params.moving_avg}"
            )
        self.decompose = MovingAverage(params.moving_avg)
        count = channels if params.individual else 1
        self.seasonal = nn.ModuleList(nn.Linear(lookback, horizon) for _ in range(count))
        self.trend = nn.ModuleList(nn.Linear(lookback, horizon) for _ in range(count))
        for layer in (*self.seasonal, *self.trend):  # start as the mean of the window, as the paper's code does
            nn.init.constant_(layer.weight, 1.0 / lookback)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["x"]
        trend = self.decompose(x)
        season = (x - trend).transpose(1, 2)  # (B, C, L)
        trend = trend.transpose(1, 2)
        if len(self.seasonal) == 1:
            out = self.seasonal[0](season) + self.trend[0](trend)
        else:
            out = torch.stack(
                [
                    s(season[:, c]) + t(trend[:, c])
                    for c, (s, t) in enumerate(zip(self.seasonal, self.trend, strict=True))
                ],
                dim=1,
            )
        return out.transpose(1, 2)  # (B, H, C)


ENTRIES = (
    ModelEntry(
        "dlinear",
        DLinear,
        DLinearParams,
        "window",
        frozenset({"forecast"}),
        "DLinear: trend/seasonal split, one linear map each",
    ),
)
