"""The gating network of a mixture of experts over time, the mixture of the experts' readouts it weighs, and
its load-balancing loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


class StepGate(nn.Module):
    """Per-step mixing weights over K experts: ``pi(t) = softmax(g(z(t)))`` with ``g`` a small MLP.

    ``z (B, T, D)`` -> ``pi (B, T, K)``. Dense by default; with ``top_k`` only the k largest weights of
    each step are kept and renormalised to sum to 1 (the experts are fused, so this changes the mixture,
    not the compute).

    ``z`` may be given in parts, ``gate(u, states)``, that together make its ``D`` columns: the first
    layer then sums one product per part, ``z W^T = sum_i z_i W_i^T``, so ``z`` is never concatenated (a
    copy of the whole ``(B, T, D)`` input, and another of its gradient in backward).
    """

    def __init__(self, d_in: int, experts: int, hidden: int, top_k: int | None = None) -> None:
        super().__init__()
        if top_k is not None and not 1 <= top_k <= experts:
            raise ValueError(f"top_k must be in [1, {experts}], got {top_k}")
        self.top_k = top_k
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, experts))

    def forward(self, *parts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``parts``: tensors ``(B, T, D_i)`` with ``sum_i D_i = D``. Returns ``(weights, dense_probabilities)``,
        both ``(B, T, K)``."""
        first = self.net[0]
        widths = [part.shape[-1] for part in parts]
        if sum(widths) != first.in_features:
            raise ValueError(
                f"the gate's input parts have {widths} columns, {sum(widths)} in all; it takes {first.in_features}"
            )
        hidden = F.linear(parts[0], first.weight[:, : widths[0]], first.bias)
        start = widths[0]
        for part, width in zip(parts[1:], widths[1:], strict=True):
            hidden = hidden + F.linear(part, first.weight[:, start : start + width])
            start += width
        probs = torch.softmax(self.net[1:](hidden), dim=-1)
        if self.top_k is None or self.top_k == probs.shape[-1]:
            return probs, probs
        kept, index = probs.topk(self.top_k, dim=-1)
        weights = torch.zeros_like(probs).scatter(-1, index, kept)
        return weights / weights.sum(-1, keepdim=True), probs


class GatedReadout(torch.autograd.Function):
    """``apply(weights (B, T, K), states (B, T, K, H), readout (K, H, D), bias (K, D))`` -> ``(B, T, D)``:
    ``y(t) = sum_k pi_k(t) (h_k(t) C_k + c_k)``, with a hand-written backward.

    Forward: ``y = [pi_1 h_1, ..., pi_K h_K] [C_1; ...; C_K] + pi c``, one ``(B T, K H) x (K H, D)`` product.
    Backward, from ``G = dL/dy`` and ``dL/d(pi h) = G C^T``: ``dL/dh_k = pi_k dL/d(pi_k h_k)`` (in place),
    ``dL/dpi_k = <dL/d(pi_k h_k), h_k> + G c_k^T`` (a batched dot product), ``dL/dC = (pi h)^T G``,
    ``dL/dc = pi^T G``. Autograd would form the ``(B, T, K, H)`` product ``dL/d(pi h) * h`` and a fresh
    tensor for ``dL/dh``; at MR-MoE's sizes each is a pass over memory that costs more than the products.
    """

    @staticmethod
    def forward(ctx, weights, states, readout, bias):
        experts, hidden, width = readout.shape
        flat_weights = weights.reshape(-1, experts)  # (B T, K)
        weighted = (weights.unsqueeze(-1) * states).reshape(-1, experts * hidden)  # (B T, K H)
        ctx.save_for_backward(flat_weights, states, readout, bias, weighted)
        mixed = torch.addmm(flat_weights @ bias, weighted, readout.reshape(experts * hidden, width))  # (B T, D)
        return mixed.view(*weights.shape[:-1], width)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        flat_weights, states, readout, bias, weighted = ctx.saved_tensors
        experts, hidden, width = readout.shape
        flat_grad = grad.reshape(-1, width)  # (B T, D)
        # a tensor of its own, not a view of the product: autograd then adds the gate's share of dL/dh into it
        # in place instead of allocating their sum
        grad_weighted = states.new_empty(states.shape)  # (B, T, K, H)
        torch.mm(flat_grad, readout.reshape(experts * hidden, width).T, out=grad_weighted.view(-1, experts * hidden))
        grad_weights = torch.einsum("btkh,btkh->btk", grad_weighted, states) + grad @ bias.T
        grad_readout = (weighted.T @ flat_grad).view(experts, hidden, width)
        grad_bias = flat_weights.T @ flat_grad
        grad_states = grad_weighted.mul_(flat_weights.view(*states.shape[:-1], 1))  # in place: dL/d(pi h) is spent
        return grad_weights, grad_states, grad_readout, grad_bias


def gated_readout(
    weights: torch.Tensor, states: torch.Tensor, readout: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """The gate's mixture of the experts' readouts, ``y(t) = sum_k pi_k(t) (h_k(t) C_k + c_k)``
    (:class:`GatedReadout`): ``weights (B, T, K)``, ``states (B, T, K, H)``, ``readout C (K, H, D)``,
    ``bias c (K, D)`` -> ``(B, T, D)``. Weighting the states first makes the sum over experts part of one
    product; reading out each expert and then summing needs a ``(B, T, K, D)`` intermediate. Under autocast
    (mixed precision) autograd differentiates the same formula, so that it handles the mixed dtypes."""
    if torch.is_autocast_enabled(states.device.type):
        experts, hidden, width = readout.shape
        weighted = (weights.unsqueeze(-1) * states).flatten(-2)
        return weighted @ readout.reshape(experts * hidden, width) + weights @ bias
    return GatedReadout.apply(weights, states, readout, bias)


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
