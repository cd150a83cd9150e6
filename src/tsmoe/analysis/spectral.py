"""Spectral estimates of a layer's weights, the quantities MoME's stability analysis builds on.

For a weight matrix ``W``, the Gram matrix ``W^T W`` has largest eigenvalue ``||W||_2^2``, the squared
Lipschitz bound of the linear map. Two cheap estimates, checked against exact eigenvalues in the tests:
- Rayleigh quotient by power iteration: ``v <- A v / ||A v||``, ``lambda ~ v^T A v`` (a lower bound of
  ``lambda_max`` that converges to it);
- Gershgorin's discs: every eigenvalue lies in a disc centred at ``A_ii`` of radius
  ``sum_{j != i} |A_ij|``, so ``lambda_max <= max_i (A_ii + r_i)`` and ``lambda_min >= min_i (A_ii - r_i)``.
For a continuous-time expert ``x <- x + (dt/tau) (-x + tanh(W x + U u + b))`` the Jacobian of one Euler
step at ``x = 0`` is ``J = I + (dt/tau) (W - I)``; if every Gershgorin disc of ``J`` lies inside the
unit circle, the step is a contraction there (stable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpectrumEstimate:
    """Estimates of the extreme eigenvalues of a symmetric matrix."""

    rayleigh_max: float
    gershgorin_max: float
    gershgorin_min: float


def power_iteration(matrix: np.ndarray, steps: int = 100, seed: int = 0) -> float:
    """Rayleigh-quotient estimate of the largest eigenvalue of a symmetric positive semi-definite matrix."""
    vector = np.random.default_rng(seed).standard_normal(matrix.shape[0])
    for _ in range(steps):
        nxt = matrix @ vector
        norm = np.linalg.norm(nxt)
        if norm == 0:
            return 0.0
        vector = nxt / norm
    return float(vector @ matrix @ vector)


def gershgorin(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(n,)`` and radii ``(n,)`` of the Gershgorin discs of a square matrix (rows)."""
    centres = np.diagonal(matrix).copy()
    radii = np.abs(matrix).sum(1) - np.abs(centres)
    return centres, radii


def gram_spectrum(weight: np.ndarray, steps: int = 100) -> SpectrumEstimate:
    """Estimates for ``W^T W`` of a weight ``W (out, in)``."""
    gram = np.asarray(weight, np.float64).T @ np.asarray(weight, np.float64)
    centres, radii = gershgorin(gram)
    return SpectrumEstimate(
        power_iteration(gram, steps), float((centres + radii).max()), float((centres - radii).min())
    )


@dataclass(frozen=True)
class ExpertStepDiscs:
    """Gershgorin discs of one liquid expert's state Jacobian ``d h_{t+1} / d h_t`` at a step of ``dt``:
    ``centres (H,)``, ``radii (H,)``; ``spectral_radius`` (exact, for comparison); ``stable``: every disc
    inside the unit circle, which proves the step contracts there."""

    tau: float
    dt: float
    centres: np.ndarray
    radii: np.ndarray
    spectral_radius: float

    @property
    def stable(self) -> bool:
        return bool(np.all(np.abs(self.centres) + self.radii < 1))


def liquid_step_discs(cell, tau, dt: float) -> list[ExpertStepDiscs]:
    """For each expert of a liquid cell (:mod:`tsmoe.layers.liquid`: CfC, LTC or CT-RNN), the Jacobian of
    one step of length ``dt`` with respect to the state, at the zero state and a zero input, by autograd.
    For the Euler CT-RNN this is ``I + (dt/tau)(W - I)``; the same read-out works for every cell."""
    import torch

    tau = torch.as_tensor(tau, dtype=torch.float32).detach()
    experts, hidden = cell.experts, cell.hidden_size
    inputs = torch.zeros(1, 1, cell.input_size)
    projected = cell.project_input(inputs)[0]  # (K, 1, P)
    step = torch.full((1,), float(dt))

    def advance(h: torch.Tensor) -> torch.Tensor:
        return cell.step(projected, h, step, tau)

    jacobian = torch.autograd.functional.jacobian(advance, torch.zeros(experts, 1, hidden))  # (K,1,H,K,1,H)
    out = []
    for k in range(experts):
        block = jacobian[k, 0, :, k, 0, :].double().cpu().numpy()
        centres, radii = gershgorin(block)
        radius = float(np.abs(np.linalg.eigvals(block)).max())
        out.append(ExpertStepDiscs(float(tau[k]), float(dt), centres, radii, radius))
    return out
