"""A model of irregular records as a forecaster of windows: the liquid networks, MR-MoE and the LSTM/GRU
read forecasting windows through this wrapper (the same data sets and splits as DLinear or PatchTST).

A window ``x (B, L, C)`` with the time from each row to the previous one, ``dt (B, L)`` (hours for dated
rows, :func:`tsmoe.data.sampling.elapsed_before`), becomes a batch of fully observed irregular records:

- ``channels: independent`` (default): each channel is its own record of one variable, ``B * C`` records
  of ``(L, 1)``, one set of weights for every channel (as PatchTST and DLinear share theirs);
- ``channels: joint``: one record of ``C`` variables per window, ``(L, C)``.

The record's model (built for regression with ``horizon * F`` outputs, ``F`` its variables) reads the
steps with their gaps, so a hole in a series is a longer step of the ODE, not two rows glued together;
its outputs are the forecast ``(B, horizon, C)``. With ``instance_norm`` each window is normalised by its
own mean and std over time and the forecast mapped back (RevIN without affine terms, as PatchTST's). With
``highway`` a linear map over each channel's lookback is added to the forecast, LSTNet's autoregressive
highway (Lai et al., SIGIR 2018): ``y_c = f(x)_c + W x_c + b``, one ``W (horizon, lookback)`` shared by the
channels, so the recurrent model learns what a linear forecast misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tsmoe.layers.instance_norm import instance_normalize
from tsmoe.models.output import unpack


@dataclass
class WindowOptions:
    """Model keys that only forecasting windows read (records of irregular data ignore their defaults and
    refuse other values)."""

    channels: Literal["independent", "joint"] = "independent"  # one record per channel, or per window
    instance_norm: bool = True  # normalise each window by its own mean and std (RevIN without affine terms)
    highway: bool = False  # add LSTNet's linear highway over each channel's lookback to the forecast


def check_record_input(params: WindowOptions) -> None:
    """Refuse window-only settings on a model built for irregular records, where they would do nothing."""
    if params.channels != "independent" or not params.instance_norm or params.highway:
        raise ValueError("channels, instance_norm and highway are for forecasting windows; this data holds records")


def window_records(x: torch.Tensor, dt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Windows as fully observed irregular records (the batch :func:`tsmoe.data.irregular.collate_irregular`
    makes): ``x (N, L, F)``, ``dt (N, L)`` -> values, mask, times, dt, step_mask, lengths and empty static
    descriptors."""
    n, steps, _ = x.shape
    ones = torch.ones(n, steps, device=x.device)
    return {
        "values": x,
        "mask": torch.ones_like(x),
        "dt": dt,
        "times": dt.cumsum(dim=1) - dt[:, :1],  # time since the window's first row
        "step_mask": ones,
        "lengths": torch.full((n,), steps, dtype=torch.long, device=x.device),
        "static": x.new_zeros(n, 0),
        "static_mask": x.new_zeros(n, 0),
    }


class WindowForecaster(nn.Module):
    """``batch["x"] (B, L, C)`` (and ``batch["dt"] (B, L)``; without it every gap is ``dims["step"]``) ->
    ``{"output": (B, horizon, C)}`` (with the record model's ``aux_loss`` when it has one)."""

    def __init__(
        self, record_model: type[nn.Module], params: WindowOptions, dims: dict[str, int | float], task: str = "forecast"
    ) -> None:
        super().__init__()
        self.horizon, self.n_channels = int(dims["horizon"]), int(dims["n_channels"])
        self.joint = params.channels == "joint"
        self.instance_norm = params.instance_norm
        self.step = float(dims.get("step", 1.0))
        variables = self.n_channels if self.joint else 1
        record_dims = {
            "n_features": variables,
            "n_static": 0,
            "lookback": int(dims["lookback"]),
            "step": self.step,  # the liquid models take their default time scales from these two
        }
        self.body = record_model(params, record_dims, "regression", outputs=self.horizon * variables)
        self.highway = nn.Linear(int(dims["lookback"]), self.horizon) if params.highway else None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        b, steps, c = x.shape
        dt = batch.get("dt")
        dt = torch.full((b, steps), self.step, device=x.device) if dt is None else dt.to(x.dtype)
        if self.instance_norm:
            x, mean, std = instance_normalize(x)
        linear = self.highway(x.transpose(1, 2)).transpose(1, 2) if self.highway is not None else 0.0  # (B, H, C)
        if not self.joint:  # (B, L, C) -> (B * C, L, 1): each channel its own record
            x = x.transpose(1, 2).reshape(b * c, steps, 1)
            dt = dt.repeat_interleave(c, dim=0)
        output, aux_loss = unpack(self.body(window_records(x, dt)))
        if self.joint:
            forecast = output.reshape(b, self.horizon, c)
        else:
            forecast = output.reshape(b, c, self.horizon).transpose(1, 2)
        forecast = forecast + linear
        if self.instance_norm:
            forecast = forecast * std + mean
        return {"output": forecast} if aux_loss is None else {"output": forecast, "aux_loss": aux_loss}
