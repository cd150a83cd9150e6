"""A sparse top-K mixture of SwiGLU experts over tokens, with gather/scatter dispatch.

Router: ``p = softmax(W_g h)`` (no bias, float32), optionally shifted by text (Router Modulation, see
:mod:`tsmoe.layers.text_modulation`). Each token goes to its top-K experts; expert ``e`` computes
``f_e(h) = W_down (silu(W_gate h) * W_up h)`` only for the tokens routed to it, and the layer returns
``sum_{e in topK(h)} p_e * m_e(f_e(h))``, where ``m_e`` is an optional per-sample modulation of the
expert's output (EiLM). Dispatch sorts the (token, expert) assignments by expert and packs them into an
``(E, C, d)`` buffer, so all experts run in one batched matmul whose size is set by the tokens routed,
not by E times the tokens. With a capacity factor, ``C = ceil(factor * N * K / E)`` and assignments
beyond an expert's capacity are dropped (their tokens keep only the residual path); the share dropped
is reported. The Switch-Transformer balance loss ``E * sum_e f_e P_e`` is returned when weighted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class SwiGLUExperts(nn.Module):
    """E SwiGLU experts with stacked weights: ``(E, C, d) -> (E, C, d)`` in three batched matmuls."""

    def __init__(self, n_experts: int, d_model: int, d_inner: int) -> None:
        super().__init__()
        bound_in, bound_out = 1 / math.sqrt(d_model), 1 / math.sqrt(d_inner)
        self.w_gate = nn.Parameter(torch.empty(n_experts, d_model, d_inner).uniform_(-bound_in, bound_in))
        self.w_up = nn.Parameter(torch.empty(n_experts, d_model, d_inner).uniform_(-bound_in, bound_in))
        self.w_down = nn.Parameter(torch.empty(n_experts, d_inner, d_model).uniform_(-bound_out, bound_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.bmm(F.silu(torch.bmm(h, self.w_gate)) * torch.bmm(h, self.w_up), self.w_down)

    def dense(self, h: torch.Tensor) -> torch.Tensor:
        """Every expert on every token: ``(N, d) -> (E, N, d)`` (for analysis and the dense baseline)."""
        return self(h.unsqueeze(0).expand(self.w_gate.shape[0], -1, -1))


class LinearExperts(nn.Module):
    """E linear experts ``f_e(h) = h W_e + b_e`` with stacked weights: ``(E, C, d_in) -> (E, C, d_out)``
    (MMLinear's experts: each maps a whole input window to the horizon). Initialised as ``nn.Linear``."""

    def __init__(self, n_experts: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n_experts, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_experts, 1, d_out).uniform_(-bound, bound))
        self.d_out = d_out

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, h, self.weight)

    def dense(self, h: torch.Tensor) -> torch.Tensor:
        """Every expert on every token: ``(N, d_in) -> (E, N, d_out)``."""
        return self(h.unsqueeze(0).expand(self.weight.shape[0], -1, -1))


class SwiGLU(nn.Module):
    """One SwiGLU feed-forward ``W_down (silu(W_gate h) * W_up h)`` (the shared expert, dense FFNs)."""

    def __init__(self, d_model: int, d_inner: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d_model, d_inner, bias=False)
        self.up = nn.Linear(d_model, d_inner, bias=False)
        self.down = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(h)) * self.up(h))


@dataclass
class Routing:
    """What one MoE layer did: ``probs (N, E)`` router probabilities (after any modulation), ``experts
    (N, K)`` and ``weights (N, K)`` the selected experts and their weights, ``dropped`` the share of
    assignments over capacity, ``balance_loss`` (0-d) the Switch loss."""

    probs: torch.Tensor
    experts: torch.Tensor
    weights: torch.Tensor
    dropped: torch.Tensor
    balance_loss: torch.Tensor


def balance_loss(probs: torch.Tensor, experts: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Switch Transformer's ``E * sum_e f_e * P_e``: ``f_e`` the share of assignments routed to ``e``,
    ``P_e`` the mean router probability of ``e``. Equals 1 when routing is uniform."""
    counts = torch.bincount(experts.reshape(-1), minlength=n_experts).to(probs.dtype)
    return n_experts * torch.sum(counts / counts.sum() * probs.mean(0))


class SparseMoE(nn.Module):
    """Top-K routed SwiGLU experts (or any stacked ``experts`` module, e.g. :class:`LinearExperts`), an
    optional shared expert, and the hooks text modulation uses.

    ``forward(h (N, d), sample (N,), ...) -> (out (N, d_out), Routing)`` (``d_out = d`` for SwiGLU experts);
    ``sample[i]`` is the sample token
    ``i`` belongs to, so per-sample text signals reach its tokens:
    ``logit_shift`` / ``prob_shift`` ``(S, E)`` shift the router (Router Modulation), and ``gamma (S, E)``,
    ``beta (S, E, d)`` modulate each expert (EiLM): its output ``gamma_e f_e(h) + beta_e`` by default,
    or its input ``f_e(gamma_e h + beta_e)`` with ``modulate_input``.
    """

    def __init__(
        self,
        d_model: int,
        n_experts: int = 4,
        top_k: int = 2,
        d_inner: int | None = None,
        renormalize: bool = False,
        capacity_factor: float | None = None,
        shared_expert: bool = False,
        experts: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must be in [1, {n_experts}], got {top_k}")
        self.n_experts, self.top_k = n_experts, top_k
        self.renormalize, self.capacity_factor = renormalize, capacity_factor
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = experts if experts is not None else SwiGLUExperts(n_experts, d_model, d_inner or d_model)
        self.d_out = getattr(self.experts, "d_out", d_model)
        self.shared = SwiGLU(d_model, d_inner or d_model) if shared_expert else None
        self.shared_gate = nn.Linear(d_model, 1, bias=False) if shared_expert else None

    def route(
        self,
        h: torch.Tensor,
        sample: torch.Tensor,
        logit_shift: torch.Tensor | None = None,
        prob_shift: torch.Tensor | None = None,
    ) -> Routing:
        logits = self.router(h.float())  # float32 routing, whatever the activations' precision
        if logit_shift is not None:  # Router Modulation, additive form: softmax(W_g h + r)
            logits = logits + logit_shift.float()[sample]
        softmax = logits.softmax(-1)
        probs = softmax
        if prob_shift is not None:  # Router Modulation, sigmoid form: softmax(W_g h) + lambda * sigmoid(r)
            probs = softmax + prob_shift.float()[sample]
        weights, experts = probs.topk(self.top_k, dim=-1)
        if self.renormalize:
            weights = weights / weights.sum(-1, keepdim=True)
        loss = balance_loss(softmax, experts, self.n_experts)
        return Routing(probs, experts, weights, torch.zeros(()), loss)

    def capacity(self, counts: torch.Tensor, n_tokens: int) -> int:
        """Rows per expert in the dispatch buffer: the largest load, capped by the capacity factor."""
        rows = int(counts.max()) if n_tokens else 0
        if self.capacity_factor is not None:
            rows = min(rows, math.ceil(self.capacity_factor * n_tokens * self.top_k / self.n_experts))
        return rows

    def forward(
        self,
        h: torch.Tensor,
        sample: torch.Tensor,
        logit_shift: torch.Tensor | None = None,
        prob_shift: torch.Tensor | None = None,
        gamma: torch.Tensor | None = None,
        beta: torch.Tensor | None = None,
        modulate_input: bool = False,
    ) -> tuple[torch.Tensor, Routing]:
        n_tokens, d_model = h.shape
        routing = self.route(h, sample, logit_shift, prob_shift)
        # dispatch: sort the N*K (token, expert) assignments by expert; slot = rank within its expert
        flat_expert = routing.experts.reshape(-1)
        flat_token = torch.arange(n_tokens, device=h.device).repeat_interleave(self.top_k)
        order = torch.argsort(flat_expert, stable=True)
        expert_of, token_of = flat_expert[order], flat_token[order]
        counts = torch.bincount(flat_expert, minlength=self.n_experts)
        slot = torch.arange(len(order), device=h.device) - (torch.cumsum(counts, 0) - counts)[expert_of]
        capacity = self.capacity(counts, n_tokens)
        keep = slot < capacity  # over capacity: dropped, the residual carries the token
        expert_of, token_of, slot = expert_of[keep], token_of[keep], slot[keep]
        owner = sample[token_of]
        expert_in = h[token_of]
        if gamma is not None and modulate_input:  # EiLM on the input: f_e(gamma_e h + beta_e)
            expert_in = gamma[owner, expert_of].unsqueeze(-1) * expert_in + beta[owner, expert_of]
        buffer = h.new_zeros(self.n_experts, capacity, d_model)
        buffer[expert_of, slot] = expert_in
        expert_out = self.experts(buffer)[expert_of, slot]  # (M, d): the kept assignments only
        if gamma is not None and not modulate_input:  # EiLM on the output: gamma_e f_e(h) + beta_e
            expert_out = gamma[owner, expert_of].unsqueeze(-1) * expert_out + beta[owner, expert_of]
        # combine: scatter-add each assignment's weighted output back to its token
        weight = routing.weights.reshape(-1)[order][keep].to(h.dtype)
        out = h.new_zeros(n_tokens, self.d_out).index_add_(0, token_of, expert_out * weight.unsqueeze(-1))
        if self.shared is not None:  # Time-MoE's shared expert, gated per token
            out = out + torch.sigmoid(self.shared_gate(h)) * self.shared(h)
        routing.dropped = (~keep).float().mean() if len(keep) else torch.zeros(())
        return out, routing

    def dense_forward(self, h: torch.Tensor, routing: Routing) -> torch.Tensor:
        """The same output computed by running every expert on every token (a reference for tests and
        the dense baseline of P5): ``sum_{e in topK} w_e f_e(h)``, no capacity, no modulation."""
        every = self.experts.dense(h)  # (E, N, d)
        chosen = every.permute(1, 0, 2).gather(1, routing.experts.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        out = (chosen * routing.weights.unsqueeze(-1).to(h.dtype)).sum(1)
        if self.shared is not None:
            out = out + torch.sigmoid(self.shared_gate(h)) * self.shared(h)
        return out
