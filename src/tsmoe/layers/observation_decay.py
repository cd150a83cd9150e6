"""How stale each variable is, and its last value decayed towards the mean: GRU-D's input decay
(Che et al., "Recurrent neural networks for multivariate time series with missing values", 2018).

A step of an irregular series observes only a few of its variables; the others are 0 in ``values`` (the
training mean after z-scoring) with ``mask = 0``. Per variable ``f`` and step ``t``:

    delta_tf = s_t - (time of f's last observation before step t)      (s_t itself if there is none)
    gamma_tf = exp(-relu(w_f * delta_tf + b_f))                         (a learned decay rate per variable)
    x_hat_tf = m_tf x_tf + (1 - m_tf) gamma_tf x_last_tf                (x_last: f's last observed value)

so an unobserved variable is its last value, fading towards the mean as it ages. The layer returns
``x_hat`` and ``log(1 + delta)``, the staleness a recurrent cell cannot read off its own ``dt``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def last_observation(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask (B, T, F)`` -> the step index of each variable's last observation at or before ``t``, and
    strictly before ``t``, both ``(B, T, F)`` long, ``-1`` where there is none."""
    steps = torch.arange(mask.shape[1], device=mask.device).reshape(1, -1, 1).expand_as(mask)
    at_or_before = torch.where(mask > 0, steps, torch.full_like(steps, -1)).cummax(dim=1).values
    before = torch.cat([torch.full_like(at_or_before[:, :1], -1), at_or_before[:, :-1]], dim=1)
    return at_or_before, before


class ObservationDecay(nn.Module):
    """``forward(values, mask (B, T, F), times (B, T) hours)`` -> ``x_hat (B, T, F)`` and
    ``log1p(delta) (B, T, F)`` (see the module docstring). Parameters: ``w, b (F,)``."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        # w = 0.1 per hour: a value half-fades in about 7 h at first (ICU variables are re-measured every
        # few hours); b = 0: no decay over a zero gap
        self.w = nn.Parameter(torch.full((n_features,), 0.1))
        self.b = nn.Parameter(torch.zeros(n_features))

    def forward(
        self, values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        at_or_before, before = last_observation(mask)
        clock = times.unsqueeze(-1).expand_as(values)
        previous_time = clock.gather(1, before.clamp(min=0))
        # padded steps have time 0 and may precede the last observation: clamp, they are never read
        delta = torch.where(before >= 0, clock - previous_time, clock).clamp(min=0)
        last_value = values.gather(1, at_or_before.clamp(min=0)) * (at_or_before >= 0)
        gamma = torch.exp(-torch.relu(self.w * delta + self.b))
        x_hat = mask * values + (1 - mask) * gamma * last_value
        return x_hat, torch.log1p(delta)

    def step(
        self, values: torch.Tensor, mask: torch.Tensor, time: torch.Tensor, last: DecayState
    ) -> tuple[torch.Tensor, torch.Tensor, DecayState]:
        """One step of :meth:`forward` for ``B`` sequences, given what each has seen before (``last``):
        ``values, mask (B, F)``, ``time (B,)`` -> ``x_hat, log1p(delta) (B, F)`` and the state after it."""
        clock = time.unsqueeze(-1).expand_as(values)
        delta = torch.where(last.seen, clock - last.time, clock).clamp(min=0)
        gamma = torch.exp(-torch.relu(self.w * delta + self.b))
        x_hat = mask * values + (1 - mask) * gamma * last.value * last.seen
        observed = mask > 0
        after = DecayState(
            value=torch.where(observed, values, last.value),
            time=torch.where(observed, clock, last.time),
            seen=last.seen | observed,
        )
        return x_hat, torch.log1p(delta), after


@dataclass
class DecayState:
    """What :meth:`ObservationDecay.step` carries from step to step: each variable's last observed value,
    its time, and whether it was observed yet, ``(B, F)`` each."""

    value: torch.Tensor
    time: torch.Tensor
    seen: torch.Tensor

    def parts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(value, time, seen)``, in the order the constructor takes them."""
        return self.value, self.time, self.seen

    @classmethod
    def empty(cls, batch: int, n_features: int) -> DecayState:
        zeros = torch.zeros(batch, n_features)
        return cls(zeros, zeros.clone(), torch.zeros(batch, n_features, dtype=torch.bool))
