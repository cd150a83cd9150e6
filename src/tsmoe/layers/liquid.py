"""Liquid (continuous-time) recurrent cells with an expert axis: K cells advance in one batched op.

Every cell here holds its weights with a leading expert axis ``K`` and steps all K experts together with
``einsum`` (no Python loop over experts); a single network is the case ``K = 1``. Each step takes the
elapsed time *per sample*, ``dt (B,)``, and each expert ``k`` sees it on its own time scale,
``dt / tau_k`` (``tau (K,)``). Shapes: input ``u (B, F)`` (shared by the experts) or ``(B, K, F)``,
state ``h (B, K, H)``.

- :class:`CfCCell` - closed-form continuous-time cell (Hasani et al., Nature MI 2022):
  ``z = act(W_bb [u, h] + b)``, ``s = sigmoid(t_a(z) * dt + t_b(z))``,
  ``h' = tanh(ff1(z)) * (1 - s) + s * tanh(ff2(z))`` (``default``), ``tanh(ff1) + s * tanh(ff2)``
  (``no_gate``), or ``-A * exp(-dt * (|w_tau| + |ff1|)) * ff1 + A`` (``pure``). Same parameters and
  numbers as ``ncps.torch.CfCCell``.
- :class:`LTCCell` - liquid time-constant cell (Hasani et al., AAAI 2021): a conductance-based ODE
  integrated by the fused semi-implicit solver, unrolled ``ode_unfolds`` times per step. Same numbers as
  ``ncps.torch.LTCCell`` with a fully connected wiring.
- :class:`CTRNNCell` - the Euler-discretised continuous-time RNN of the MR-MoE paper,
  ``x <- x + (dt / tau) * f(x, u)`` with ``f = -x + tanh(W x + U u + b)`` (the leak ``-x`` keeps the
  state bounded; the paper leaves ``f`` open). ``integrator="exponential"`` uses the exact solution of
  the leak for a held input, ``x <- x + (1 - exp(-dt / tau)) * (tanh(...) - x)``, which is stable for any
  gap (ICU gaps reach many hours); ``"euler"`` is the paper's plain step.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lecun_tanh(x: torch.Tensor) -> torch.Tensor:
    """LeCun's scaled tanh, ``1.7159 * tanh(0.666 x)`` (the ncps CfC backbone default)."""
    return 1.7159 * torch.tanh(0.666 * x)


def _expert_linear(k: int, fan_in: int, fan_out: int) -> tuple[nn.Parameter, nn.Parameter]:
    """Stacked weights ``(K, fan_in, fan_out)`` (Xavier-uniform, as ncps) and zero-free biases ``(K, fan_out)``."""
    weight = torch.empty(k, fan_in, fan_out)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -bound, bound)
    bias = torch.empty(k, fan_out)
    nn.init.uniform_(bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))  # nn.Linear's bias init
    return nn.Parameter(weight), nn.Parameter(bias)


def _per_expert_input(u: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, F)`` -> ``(B, K, F)`` (shared input), or check a ``(B, K, F)`` input."""
    return u.unsqueeze(1).expand(-1, k, -1) if u.dim() == 2 else u


def _scaled_time(dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """``dt (B,)`` and ``tau (K,)`` -> ``dt / tau`` of shape ``(B, K, 1)``."""
    return (dt.reshape(-1, 1) / tau.reshape(1, -1)).unsqueeze(-1)


class CfCCell(nn.Module):
    """K closed-form continuous-time cells; ``forward(u, h, dt, tau) -> h'`` with ``h (B, K, H)``."""

    def __init__(
        self, input_size: int, hidden_size: int, experts: int = 1, mode: str = "default", backbone_units: int = 128
    ) -> None:
        super().__init__()
        if mode not in ("default", "no_gate", "pure"):
            raise ValueError(f"CfC mode must be default, no_gate or pure, got {mode!r}")
        self.input_size, self.hidden_size, self.experts, self.mode = input_size, hidden_size, experts, mode
        self.backbone_weight, self.backbone_bias = _expert_linear(experts, input_size + hidden_size, backbone_units)
        heads = 1 if mode == "pure" else 4  # ff1 | ff2, time_a, time_b
        self.head_weight, self.head_bias = _expert_linear(experts, backbone_units, heads * hidden_size)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(experts, hidden_size))
            self.A = nn.Parameter(torch.ones(experts, hidden_size))

    def forward(self, u: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        x = torch.cat([_per_expert_input(u, self.experts), h], dim=-1)  # (B, K, F + H)
        z = lecun_tanh(torch.einsum("bki,kio->bko", x, self.backbone_weight) + self.backbone_bias)
        heads = torch.einsum("bku,kuo->bko", z, self.head_weight) + self.head_bias
        t = _scaled_time(dt, tau)
        if self.mode == "pure":
            return -self.A * torch.exp(-t * (self.w_tau.abs() + heads.abs())) * heads + self.A
        ff1, ff2, t_a, t_b = heads.chunk(4, dim=-1)
        gate = torch.sigmoid(t_a * t + t_b)
        if self.mode == "no_gate":
            return torch.tanh(ff1) + gate * torch.tanh(ff2)
        return torch.tanh(ff1) * (1.0 - gate) + gate * torch.tanh(ff2)


class LTCCell(nn.Module):
    """K liquid time-constant cells, fully connected; ``forward(u, h, dt, tau) -> h'``.

    Positivity of ``w, sensory_w, cm, gleak`` is kept by softplus (ncps's
    ``implicit_param_constraints=True``), the same in the cell and in every wrapper.
    """

    def __init__(
        self, input_size: int, hidden_size: int, experts: int = 1, ode_unfolds: int = 6, epsilon: float = 1e-8
    ):
        super().__init__()
        self.input_size, self.hidden_size, self.experts = input_size, hidden_size, experts
        self.ode_unfolds, self.epsilon = ode_unfolds, epsilon
        k, f, h = experts, input_size, hidden_size

        def uniform(shape: tuple[int, ...], low: float, high: float) -> nn.Parameter:
            return nn.Parameter(torch.rand(*shape) * (high - low) + low)

        self.gleak, self.vleak, self.cm = (
            uniform((k, h), 0.001, 1.0),
            uniform((k, h), -0.2, 0.2),
            uniform((k, h), 0.4, 0.6),
        )
        self.sigma, self.mu, self.w = (
            uniform((k, h, h), 3, 8),
            uniform((k, h, h), 0.3, 0.8),
            uniform((k, h, h), 0.001, 1.0),
        )
        self.erev = nn.Parameter(torch.randint(0, 2, (k, h, h)).float() * 2 - 1)  # excitatory or inhibitory
        self.sensory_sigma, self.sensory_mu = uniform((k, f, h), 3, 8), uniform((k, f, h), 0.3, 0.8)
        self.sensory_w = uniform((k, f, h), 0.001, 1.0)
        self.sensory_erev = nn.Parameter(torch.randint(0, 2, (k, f, h)).float() * 2 - 1)
        self.input_w, self.input_b = nn.Parameter(torch.ones(k, f)), nn.Parameter(torch.zeros(k, f))
        self.output_w, self.output_b = nn.Parameter(torch.ones(k, h)), nn.Parameter(torch.zeros(k, h))

    def forward(self, u: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        softplus = nn.functional.softplus
        u = _per_expert_input(u, self.experts) * self.input_w + self.input_b  # (B, K, F)
        # synaptic activations: sigmoid(sigma * (v_pre - mu)) over (pre, post) pairs
        sensory = softplus(self.sensory_w) * torch.sigmoid(self.sensory_sigma * (u.unsqueeze(-1) - self.sensory_mu))
        numerator_sensory = (sensory * self.sensory_erev).sum(dim=-2)  # (B, K, H)
        denominator_sensory = sensory.sum(dim=-2)
        cm_t = softplus(self.cm) / (_scaled_time(dt, tau) / self.ode_unfolds)
        w, gleak = softplus(self.w), softplus(self.gleak)
        v = h
        for _ in range(self.ode_unfolds):  # fused semi-implicit Euler steps
            activation = w * torch.sigmoid(self.sigma * (v.unsqueeze(-1) - self.mu))  # (B, K, H, H)
            numerator = cm_t * v + gleak * self.vleak + (activation * self.erev).sum(-2) + numerator_sensory
            denominator = cm_t + gleak + activation.sum(-2) + denominator_sensory
            v = numerator / (denominator + self.epsilon)
        return v

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """The affine output map of ncps (``output_w * h + output_b``)."""
        return h * self.output_w + self.output_b


class CTRNNCell(nn.Module):
    """K continuous-time RNNs, ``x <- x + (dt / tau) * (-x + tanh(x W + u U + b))``; ``forward(u, h, dt, tau)``."""

    def __init__(self, input_size: int, hidden_size: int, experts: int = 1, integrator: str = "exponential"):
        super().__init__()
        if integrator not in ("euler", "exponential"):
            raise ValueError(f"integrator must be euler or exponential, got {integrator!r}")
        self.input_size, self.hidden_size, self.experts, self.integrator = input_size, hidden_size, experts, integrator
        self.weight, self.bias = _expert_linear(experts, input_size + hidden_size, hidden_size)

    def forward(self, u: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        x = torch.cat([_per_expert_input(u, self.experts), h], dim=-1)
        target = torch.tanh(torch.einsum("bki,kio->bko", x, self.weight) + self.bias)
        ratio = _scaled_time(dt, tau)
        step = ratio if self.integrator == "euler" else -torch.expm1(-ratio)
        return h + step * (target - h)


CELLS: dict[str, type[nn.Module]] = {"cfc": CfCCell, "ltc": LTCCell, "ctrnn": CTRNNCell}


class LiquidExperts(nn.Module):
    """K liquid experts unrolled over an irregular sequence, all experts in one op per step.

    ``forward(u (B, T, F), dt (B, T), step_mask (B, T), h0 (B, K, H) | None)`` ->
    ``(states (B, T, K, H), last (B, K, H))``. On padded steps (``step_mask = 0``) the state is held, so
    a sequence's last state is the same alone or in a padded batch.
    """

    def __init__(self, cell: nn.Module, tau: torch.Tensor, learnable_tau: bool = False, band: float = 2.0):
        super().__init__()
        self.cell = cell
        tau = torch.as_tensor(tau, dtype=torch.float32).reshape(-1)
        if tau.numel() != cell.experts or torch.any(tau <= 0):
            raise ValueError(f"tau must hold {cell.experts} positive time constants, got {tau.tolist()}")
        self.register_buffer("tau_init", tau)
        self.learnable_tau = learnable_tau
        self.band = band  # a learnable tau stays within [tau / band, tau * band]
        self.tau_logit = nn.Parameter(torch.zeros_like(tau), requires_grad=learnable_tau)

    @property
    def tau(self) -> torch.Tensor:
        """Current time constants ``(K,)``: fixed, or ``tau_init * band ** tanh(theta)`` when learnable."""
        if not self.learnable_tau:
            return self.tau_init
        return self.tau_init * self.band ** torch.tanh(self.tau_logit)

    def forward(
        self, u: torch.Tensor, dt: torch.Tensor, step_mask: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps = u.shape[:2]
        h = h0 if h0 is not None else u.new_zeros(batch, self.cell.experts, self.cell.hidden_size)
        tau = self.tau
        states = []
        for t in range(steps):
            new = self.cell(u[:, t], h, dt[:, t], tau)
            keep = step_mask[:, t].reshape(-1, 1, 1) > 0
            h = torch.where(keep, new, h)  # where, not a blend: a padded step's values never leak in
            states.append(h)
        return torch.stack(states, dim=1), h
