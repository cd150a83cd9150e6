"""How healthy a mixture's routing is: load per expert, its coefficient of variation, routing entropy and
dead experts, from the top-K choices and the router probabilities of a batch or a whole data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ExpertUsage:
    """``load (E,)``: share of the top-K assignments each expert took (sums to 1); ``load_cv``: coefficient
    of variation of the load (0 = perfectly even); ``entropy``: mean per-token entropy of the router
    probabilities, in nats (``log E`` = undecided, 0 = one expert); ``dead``: experts that took nothing."""

    load: np.ndarray
    load_cv: float
    entropy: float
    dead: tuple[int, ...]

    @property
    def n_experts(self) -> int:
        return len(self.load)


def expert_usage(experts: np.ndarray, probs: np.ndarray) -> ExpertUsage:
    """``experts (N, K)`` chosen expert ids, ``probs (N, E)`` router probabilities -> :class:`ExpertUsage`.

    For a dense gate (MR-MoE), pass the arg-max as ``experts (N, 1)`` and the gate weights as ``probs``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n_experts = probs.shape[1]
    counts = np.bincount(np.asarray(experts).reshape(-1), minlength=n_experts).astype(np.float64)
    load = counts / max(counts.sum(), 1.0)
    cv = float(load.std() / load.mean()) if load.mean() > 0 else 0.0
    p = probs / np.maximum(probs.sum(1, keepdims=True), 1e-12)
    entropy = float(-(p * np.log(np.clip(p, 1e-12, None))).sum(1).mean())
    return ExpertUsage(load, cv, entropy, tuple(int(e) for e in np.flatnonzero(counts == 0)))
