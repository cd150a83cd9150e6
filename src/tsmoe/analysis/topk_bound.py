"""MoME's top-K truncation bound (Theorem 4.2 of arXiv:2601.21547), checked token by token.

An MoE output is ``sum_i g_i f_i``; keeping only the top-K set ``A`` drops
``err = || sum_{i not in A} g_i f_i ||^2``. With ``G`` the Gram matrix ``G_ij = <f_i, f_j>`` of the dropped
experts' outputs and ``g`` their gate values, ``err = g^T G g <= lambda_max(G) ||g||^2`` (Rayleigh quotient),
and Gershgorin's discs give ``lambda_max(G) <= max_i (G_ii + sum_{j != i} |G_ij|) <= B^2 + (E - K - 1) mu``
with ``B = max_i ||f_i||`` and ``mu = max_{i != j} |<f_i, f_j>|`` over the dropped experts. So
``err <= [B^2 + (E - K - 1) mu] * sum_{i not in A} g_i^2``: the theorem's bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TruncationBound:
    """Per token ``(N,)``: ``actual`` error of dropping the non-selected experts, the exact Rayleigh bound
    ``lambda_max(G) ||g||^2``, the Gershgorin bound ``max_i(G_ii + sum_j |G_ij|) ||g||^2`` and the
    theorem's ``[B^2 + (E-K-1) mu] ||g||^2``. Each is at least the one before it."""

    actual: np.ndarray
    rayleigh: np.ndarray
    gershgorin: np.ndarray
    theorem: np.ndarray

    def holds(self, tolerance: float = 1e-6) -> bool:
        slack = tolerance * (1 + self.theorem)
        return bool(
            np.all(self.actual <= self.rayleigh + slack)
            and np.all(self.rayleigh <= self.gershgorin + slack)
            and np.all(self.gershgorin <= self.theorem + slack)
        )


def truncation_bound(outputs: np.ndarray, gates: np.ndarray, top_k: int) -> TruncationBound:
    """``outputs (N, E, d)``: every expert's output for each token; ``gates (N, E)``: router probabilities.
    The top-``top_k`` experts by gate are kept; the bound is over the others."""
    outputs, gates = np.asarray(outputs, np.float64), np.asarray(gates, np.float64)
    n, n_experts, _ = outputs.shape
    order = np.argsort(-gates, axis=1)
    dropped = order[:, top_k:]  # (N, E - K)
    f = np.take_along_axis(outputs, dropped[..., None], axis=1)  # (N, E-K, d)
    g = np.take_along_axis(gates, dropped, axis=1)  # (N, E-K)
    gram = np.einsum("nid,njd->nij", f, f)
    actual = np.einsum("ni,nij,nj->n", g, gram, g)
    g2 = (g**2).sum(1)
    rayleigh = np.linalg.eigvalsh(gram)[:, -1] * g2 if n_experts > top_k else np.zeros(n)
    off = np.abs(gram) * (1 - np.eye(n_experts - top_k))
    gershgorin = (np.diagonal(gram, axis1=1, axis2=2) + off.sum(2)).max(1) * g2 if n_experts > top_k else np.zeros(n)
    b2 = np.diagonal(gram, axis1=1, axis2=2).max(1) if n_experts > top_k else np.zeros(n)
    mu = off.max((1, 2)) if n_experts - top_k > 1 else np.zeros(n)
    theorem = (b2 + (n_experts - top_k - 1) * mu) * g2
    return TruncationBound(actual, rayleigh, gershgorin, theorem)
