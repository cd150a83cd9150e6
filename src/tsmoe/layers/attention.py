"""Feature-level and temporal attention for irregular multivariate series (MR-MoE, section on attention)."""

from __future__ import annotations

import math

import torch
from torch import nn


class FeatureAttention(nn.Module):
    """A weight per input variable and step: a 2-layer MLP scores the variables, softmax over the
    *observed* ones.

    ``values, mask (B, T, F)`` -> ``(weighted (B, T, F), alpha (B, T, F))``, where
    ``alpha = softmax_{observed}(W2 tanh(W1 [values, mask]))`` and ``weighted = values * alpha * n_obs``.
    Multiplying by the number of observed variables keeps the input's scale (the weights of the observed
    variables average 1 instead of summing to 1). A step with nothing observed gets ``alpha = 0``.
    """

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(2 * n_features, hidden), nn.Tanh(), nn.Linear(hidden, n_features))

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.cat([values, mask], dim=-1)).masked_fill(mask == 0, float("-inf"))
        observed = mask.sum(-1, keepdim=True)
        alpha = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # all -inf (nothing observed) -> 0
        return values * alpha * observed, alpha


class TemporalAttention(nn.Module):
    """Scaled dot-product attention of the last valid state over all valid states of the sequence.

    ``states (B, T, D)``, ``step_mask (B, T)``, ``last (B, D)`` ->
    ``(context (B, D), weights (B, T))`` with ``weights = softmax((W_q last) . (W_k states_t) / sqrt(D))``
    over valid steps and ``context = sum_t weights_t W_v states_t``. The query is the final state, so
    nothing attends to the future.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.scale = 1.0 / math.sqrt(d_model)

    def forward(
        self, states: torch.Tensor, step_mask: torch.Tensor, last: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.einsum("bd,btd->bt", self.query(last), self.key(states)) * self.scale
        weights = torch.softmax(scores.masked_fill(step_mask == 0, float("-inf")), dim=-1)
        return torch.einsum("bt,btd->bd", weights, self.value(states)), weights
