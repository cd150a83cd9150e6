"""The gating network of a mixture of experts over time, and its load-balancing loss."""

from __future__ import annotations

import torch
from torch import nn


class StepGate(nn.Module):
    """Per-step mixing weights over K experts: ``pi(t) = softmax(g(z(t)))`` with ``g`` a small MLP.

    ``z (B, T, D)`` -> ``pi (B, T, K)``. Dense by default; with ``top_k`` only the k largest weights of
    each step are kept and renormalised to sum to 1 (the experts are fused, so this changes the mixture,
    not the compute).
    """

    def __init__(self, d_in: int, experts: int, hidden: int, top_k: int | None = None) -> None:
        super().__init__()
        if top_k is not None and not 1 <= top_k <= experts:
            raise ValueError(f"top_k must be in [1, {experts}], got {top_k}")
        self.top_k = top_k
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, experts))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(weights, dense_probabilities)``, both ``(B, T, K)``."""
        probs = torch.softmax(self.net(z), dim=-1)
        if self.top_k is None or self.top_k == probs.shape[-1]:
            return probs, probs
        kept, index = probs.topk(self.top_k, dim=-1)
        weights = torch.zeros_like(probs).scatter(-1, index, kept)
        return weights / weights.sum(-1, keepdim=True), probs


def load_balancing_loss(probs: torch.Tensor, weights: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Switch-Transformer balance loss over valid steps: ``K * sum_k f_k * P_k``.

    ``f_k`` is the share of steps whose largest weight is expert k, ``P_k`` the mean probability of k
    (``probs, weights (B, T, K)``, ``step_mask (B, T)``). It equals 1 for a perfectly even load.
    """
    experts = probs.shape[-1]
    valid = step_mask.reshape(-1).bool()
    probs, weights = probs.reshape(-1, experts)[valid], weights.reshape(-1, experts)[valid]
    if probs.shape[0] == 0:
        return probs.new_zeros(())
    share = nn.functional.one_hot(weights.argmax(-1), experts).float().mean(0)
    return experts * (share * probs.mean(0)).sum()
