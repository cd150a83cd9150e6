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

    def step(self, new: torch.Tensor, caches: list[KeyValueCache], lengths: list[int]) -> torch.Tensor:
        """:meth:`forward` for the newest step of ``B`` sequences, from their caches: ``new (B, D)`` is
        each sequence's newest state (the query), whose key and value are written into its cache at
        ``lengths[b]`` (the steps before it); -> ``context (B, D)``. Each step costs one key and value,
        and a product with the ``lengths[b] + 1`` cached keys: no pass over the history's states."""
        # the rows split once, and the scale folded into the query: per sequence only the cache write and the
        # three ops of attention remain (their dispatch, not their arithmetic, is the cost of a step)
        queries = (self.query(new) * self.scale).unbind(0)
        keys_new, values_new = self.key(new).unbind(0), self.value(new).unbind(0)
        contexts = []
        for cache, n, query, key, value in zip(caches, lengths, queries, keys_new, values_new, strict=True):
            keys, values = cache.put(n, key, value)
            contexts.append(torch.mv(values.T, torch.softmax(torch.mv(keys, query), dim=0)))
        return torch.stack(contexts)


class KeyValueCache:
    """One sequence's keys and values for :meth:`TemporalAttention.step`: ``(capacity, D)`` buffers that
    double when full, so appending costs O(1) on average. :meth:`put` writes step ``n`` (overwriting a
    step being redone) and returns the views of steps ``0..n``."""

    def __init__(self, width: int, capacity: int = 16) -> None:
        self.keys = torch.empty(capacity, width)
        self.values = torch.empty(capacity, width)

    def put(self, n: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if n >= len(self.keys):
            grown = max(2 * len(self.keys), n + 1)
            self.keys = torch.cat([self.keys, torch.empty(grown - len(self.keys), self.keys.shape[1])])
            self.values = torch.cat([self.values, torch.empty(grown - len(self.values), self.values.shape[1])])
        self.keys[n], self.values[n] = key, value
        return self.keys[: n + 1], self.values[: n + 1]
