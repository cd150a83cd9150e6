"""Feature-level and temporal attention for irregular multivariate series (MR-MoE, section on attention)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tsmoe.layers.state_memory import StateMemory


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

    def causal(self, states: torch.Tensor, step_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same attention from every step at once (early prediction): step ``t`` queries with its own
        state over the valid states ``s <= t``. ``states (B, T, D)``, ``step_mask (B, T)`` ->
        ``(context (B, T, D), weights (B, T, T))``; row ``t`` equals :meth:`forward` on the first ``t + 1``
        steps."""
        steps = states.shape[1]
        scores = torch.einsum("btd,bsd->bts", self.query(states), self.key(states)) * self.scale
        past = torch.ones(steps, steps, dtype=torch.bool, device=states.device).tril()
        allowed = past[None] & step_mask.bool()[:, None, :]
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)
        return torch.einsum("bts,bsd->btd", weights, self.value(states)), weights

    def step(self, new: torch.Tensor, memory: StateMemory, slots: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for the newest step of ``B`` sequences: ``new (B, D)`` is each sequence's newest
        state (the query), written into ``memory`` at row ``slots[b]``, place ``lengths[b]`` (the steps
        before it) -> ``context (B, D)``. Each step costs a pass over the stored states, not the model
        over the history.

        Only the states are stored, not their keys and values: with ``k_t = W_k m_t + b_k`` the score
        ``q . k_t = (W_k^T q) . m_t + q . b_k``, whose last term is the same for every ``t`` and cancels in
        the softmax; and as the weights sum to 1, ``sum_t w_t (W_v m_t + b_v) = W_v (sum_t w_t m_t) + b_v``."""
        memory.write(slots, lengths, new)
        queries = (self.query(new) * self.scale) @ self.key.weight  # (B, D): W_k^T q
        pooled = torch.empty_like(new)
        for members, states in memory.read(slots, lengths + 1):  # (b, n, D) per bucket of the memory
            counts = lengths[members] + 1
            allowed = None  # every place up to each sequence's newest step; None where all reach n
            if int(counts.min()) < states.shape[1]:
                allowed = (torch.arange(states.shape[1]) < counts.unsqueeze(-1))[:, None, None, :]
            # one fused pass over each sequence's states (online softmax), the query a single row
            pooled[members] = F.scaled_dot_product_attention(
                queries[members, None, None, :], states[:, None], states[:, None], attn_mask=allowed, scale=1.0
            )[:, 0, 0]
        return self.value(pooled)
