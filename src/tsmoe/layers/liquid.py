"""Liquid (continuous-time) recurrent cells with an expert axis: K cells advance in one batched op.

Every cell holds its weights with a leading expert axis ``K`` and steps all K experts together with
batched matmuls (no Python loop over experts); a single network is the case ``K = 1``. Each step takes
the elapsed time *per sample*, ``dt (B,)``, and expert ``k`` sees it on its own time scale, ``dt / tau_k``
(``tau (K,)``).

A step is split in two so that the time loop does only what depends on the state:
``project_input(u (B, T, F)) -> (T, K, B, P)`` does the input's share for all steps at once (one large
matmul), and ``step(projected_t (K, B, P), h (K, B, H), dt (B,), tau (K,)) -> (K, B, H)`` does the rest.
Inside the loop the state is kept expert-major, ``(K, B, H)``, so every batched matmul reads contiguous
memory. ``scan(projected (T, K, B, P), h0, dt (T, B), tau, keep) -> (T, K, B, H)`` runs the whole sequence:
a loop of ``step`` that autograd differentiates, except CfC's default and no-gate modes, which run
:class:`tsmoe.layers.cfc_scan.CfCScan`, the same recurrence with a hand-written backward pass (about 1.3x
faster to train on a CPU, see benchmarks/README.md, P5). ``forward(u (B, F), h (B, K, H), dt, tau) ->
(B, K, H)`` is one whole step in batch-major layout.

- :class:`CfCCell` - closed-form continuous-time cell (Hasani et al., Nature MI 2022):
  ``z = act(W_u u + W_h h + b)``, ``s = sigmoid(t_a(z) * dt + t_b(z))``,
  ``h' = tanh(ff1(z)) * (1 - s) + s * tanh(ff2(z))`` (``default``), ``tanh(ff1) + s * tanh(ff2)``
  (``no_gate``), or ``-A * exp(-dt * (|w_tau| + |ff1|)) * ff1 + A`` (``pure``). Same parameters and
  numbers as ``ncps.torch.CfCCell`` (one backbone layer, LeCun tanh).
- :class:`LTCCell` - liquid time-constant cell (Hasani et al., AAAI 2021): a conductance-based ODE
  integrated by the fused semi-implicit solver, unrolled ``ode_unfolds`` times per step. Same numbers as
  ``ncps.torch.LTCCell`` with a fully connected wiring and ``implicit_param_constraints=True``.
- :class:`CTRNNCell` - the Euler-discretised continuous-time RNN of the MR-MoE paper,
  ``x <- x + (dt / tau) * f(x, u)`` with ``f = -x + tanh(W x + U u + b)`` (the leak ``-x`` keeps the
  state bounded; the paper leaves ``f`` open). ``integrator="exponential"`` uses the exact solution of
  the leak for a held input, ``x <- x + (1 - exp(-dt / tau)) * (tanh(...) - x)``, stable for any gap
  (ICU gaps reach many hours); ``"euler"`` is the paper's plain step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tsmoe.layers.cfc_scan import LECUN_IN, LECUN_OUT, CfCScan
from tsmoe.layers.input_rate import expert_stride_schedule


def lecun_tanh(x: torch.Tensor) -> torch.Tensor:
    """LeCun's scaled tanh, ``1.7159 * tanh(0.666 x)`` (the ncps CfC backbone default)."""
    return LECUN_OUT * torch.tanh(LECUN_IN * x)


def _expert_weights(k: int, fan_in: int, fan_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked weights ``(K, fan_in, fan_out)`` (Xavier-uniform, as ncps) and biases ``(K, fan_out)``."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    weight = torch.empty(k, fan_in, fan_out).uniform_(-bound, bound)
    bias = torch.empty(k, fan_out).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))  # nn.Linear's
    return weight, bias


def _scaled_time(dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """``dt (B,)`` (shared by the experts) or ``(K, B)`` (one per expert), and ``tau (K,)`` -> ``dt / tau``
    of shape ``(K, B, 1)``."""
    return ((dt if dt.dim() == 2 else dt.reshape(1, -1)) / tau.reshape(-1, 1)).unsqueeze(-1)


class LiquidCell(nn.Module):
    """Base of the cells: one step is ``step(project_input(u))``; subclasses define both halves."""

    experts: int
    hidden_size: int

    def project_input(self, u: torch.Tensor) -> torch.Tensor:
        """``u (B, T, F)`` (shared by the experts) or ``(B, T, K, F)`` (one input per expert) -> the input's
        share of every step, ``(T, K, B, P)``."""
        raise NotImplementedError

    def step(self, projected: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """``projected (K, B, P)``, ``h (K, B, H)``, ``dt (B,)``, ``tau (K,)`` -> ``h' (K, B, H)``."""
        raise NotImplementedError

    def scan(
        self, projected: torch.Tensor, h0: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """The whole sequence: ``projected (T, K, B, P)``, ``h0 (K, B, H)``, ``dt (T, B)`` or ``(T, K, B)``
        (per expert), ``tau (K,)``, ``keep (T, 1, B, 1)`` or ``(T, K, B, 1)`` (0 where the state is held:
        padding, or steps an expert skips) -> states ``(T, K, B, H)``.

        Here a loop of :meth:`step` that autograd differentiates; a cell may override it with a faster scan.
        """
        # unbind (not indexing) so backward stacks the per-step gradients once instead of zero-filling a
        # full-size tensor per step
        steps, dts, keeps = projected.unbind(0), dt.unbind(0), (keep > 0).unbind(0)
        h, states = h0, []
        for t in range(len(steps)):
            h = torch.where(keeps[t], self.step(steps[t], h, dts[t], tau), h)
            states.append(h)
        return torch.stack(states)

    def forward(self, u: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """One step in batch-major layout: ``u (B, F)``, ``h (B, K, H)`` -> ``h' (B, K, H)``."""
        projected = self.project_input(u.unsqueeze(1))[0]
        return self.step(projected, h.transpose(0, 1), dt, tau).transpose(0, 1)


class CfCCell(LiquidCell):
    """K closed-form continuous-time cells."""

    def __init__(
        self, input_size: int, hidden_size: int, experts: int = 1, mode: str = "default", backbone_units: int = 128
    ) -> None:
        super().__init__()
        if mode not in ("default", "no_gate", "pure"):
            raise ValueError(f"CfC mode must be default, no_gate or pure, got {mode!r}")
        self.input_size, self.hidden_size, self.experts, self.mode = input_size, hidden_size, experts, mode
        # the backbone acts on [u, h]; its halves are separate parameters (W_u for the input, applied to all
        # steps at once; W_h for the state), so no parameter is sliced inside the time loop
        weight, bias = _expert_weights(experts, input_size + hidden_size, backbone_units)
        self.backbone_input_weight = nn.Parameter(weight[:, :input_size].clone())
        self.backbone_state_weight = nn.Parameter(weight[:, input_size:].clone())
        self.backbone_bias = nn.Parameter(bias)
        heads = 1 if mode == "pure" else 4  # ff1 | ff2, time_a, time_b
        head_weight, head_bias = _expert_weights(experts, backbone_units, heads * hidden_size)
        self.head_weight = nn.Parameter(head_weight)
        self.head_bias = nn.Parameter(head_bias)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(experts, hidden_size))
            self.A = nn.Parameter(torch.ones(experts, hidden_size))

    def project_input(self, u: torch.Tensor) -> torch.Tensor:
        if u.dim() == 4:  # one input per expert
            return torch.einsum("btkf,kfu->tkbu", u, self.backbone_input_weight) + self.backbone_bias.unsqueeze(1)
        # a shared input: one (B*T, F) x (F, K*U) product with the bias fused in, viewed as (T, K, B, U); its
        # backward sums the bias gradient over contiguous rows (a separate broadcast add reduced over T and B
        # in a strided pass and cost as much as the product)
        batch, steps, features = u.shape
        weight = self.backbone_input_weight.permute(1, 0, 2).reshape(features, -1)  # (F, K*U)
        projected = torch.addmm(self.backbone_bias.reshape(-1), u.reshape(batch * steps, features), weight)
        return projected.view(batch, steps, self.experts, -1).permute(1, 2, 0, 3)

    def step(self, projected: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        z = lecun_tanh(torch.baddbmm(projected, h, self.backbone_state_weight))  # (K, B, U)
        heads = torch.baddbmm(self.head_bias.unsqueeze(1), z, self.head_weight)  # (K, B, heads * H)
        t = _scaled_time(dt, tau)
        if self.mode == "pure":
            a, w_tau = self.A.unsqueeze(1), self.w_tau.unsqueeze(1)
            return -a * torch.exp(-t * (w_tau.abs() + heads.abs())) * heads + a
        h = self.hidden_size
        ff1, ff2 = torch.tanh(heads[..., : 2 * h]).chunk(2, dim=-1)  # one tanh for both heads
        gate = torch.sigmoid(heads[..., 2 * h : 3 * h] * t + heads[..., 3 * h :])
        if self.mode == "no_gate":
            return ff1 + gate * ff2
        return ff1 + gate * (ff2 - ff1)  # = ff1 * (1 - gate) + gate * ff2, one op fewer

    def scan(
        self, projected: torch.Tensor, h0: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """The default and no-gate modes run :class:`tsmoe.layers.cfc_scan.CfCScan` (hand-written backward);
        ``pure``, and anything under autocast, the autograd loop."""
        if self.mode == "pure" or torch.is_autocast_enabled(projected.device.type):
            return super().scan(projected, h0, dt, tau, keep)
        per_step = dt.unsqueeze(1) if dt.dim() == 2 else dt  # (T, 1 or K, B)
        scaled_time = (per_step / tau.reshape(1, -1, 1)).unsqueeze(-1)  # (T, K, B, 1)
        return CfCScan.apply(
            projected, h0, scaled_time, keep.to(projected.dtype), self.backbone_state_weight, self.head_weight,
            self.head_bias, self.mode == "no_gate",
        )  # fmt: skip


class LTCCell(LiquidCell):
    """K liquid time-constant cells, fully connected.

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

    def project_input(self, u: torch.Tensor) -> torch.Tensor:
        """The affine input map of ncps, per expert: ``(B, T, F)`` or ``(B, T, K, F)`` -> ``(T, K, B, F)``."""
        u = u.transpose(0, 1).unsqueeze(1) if u.dim() == 3 else u.permute(1, 2, 0, 3)
        return u * self.input_w.unsqueeze(1) + self.input_b.unsqueeze(1)

    def step(self, u: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        softplus = nn.functional.softplus

        def per_expert(p: torch.Tensor) -> torch.Tensor:  # (K, ...) -> (K, 1, ...) to broadcast over B
            return p.unsqueeze(1)

        # synaptic activations sigmoid(sigma * (v_pre - mu)) over (pre, post) pairs: (K, B, pre, post)
        sensory = per_expert(softplus(self.sensory_w)) * torch.sigmoid(
            per_expert(self.sensory_sigma) * (u.unsqueeze(-1) - per_expert(self.sensory_mu))
        )
        numerator_sensory = (sensory * per_expert(self.sensory_erev)).sum(dim=-2)  # (K, B, H)
        denominator_sensory = sensory.sum(dim=-2)
        cm_t = per_expert(softplus(self.cm)) / (_scaled_time(dt, tau) / self.ode_unfolds)
        w, gleak, vleak = per_expert(softplus(self.w)), per_expert(softplus(self.gleak)), per_expert(self.vleak)
        sigma, mu, erev = per_expert(self.sigma), per_expert(self.mu), per_expert(self.erev)
        v = h
        for _ in range(self.ode_unfolds):  # fused semi-implicit Euler steps
            activation = w * torch.sigmoid(sigma * (v.unsqueeze(-1) - mu))
            numerator = cm_t * v + gleak * vleak + (activation * erev).sum(-2) + numerator_sensory
            denominator = cm_t + gleak + activation.sum(-2) + denominator_sensory
            v = numerator / (denominator + self.epsilon)
        return v


class CTRNNCell(LiquidCell):
    """K continuous-time RNNs, ``x <- x + (dt / tau) * (-x + tanh(W x + U u + b))``."""

    def __init__(self, input_size: int, hidden_size: int, experts: int = 1, integrator: str = "exponential"):
        super().__init__()
        if integrator not in ("euler", "exponential"):
            raise ValueError(f"integrator must be euler or exponential, got {integrator!r}")
        self.input_size, self.hidden_size, self.experts, self.integrator = input_size, hidden_size, experts, integrator
        weight, bias = _expert_weights(experts, input_size + hidden_size, hidden_size)
        self.input_weight = nn.Parameter(weight[:, :input_size].clone())  # U
        self.state_weight = nn.Parameter(weight[:, input_size:].clone())  # W
        self.bias = nn.Parameter(bias)

    def project_input(self, u: torch.Tensor) -> torch.Tensor:
        pattern = "btf,kfh->tkbh" if u.dim() == 3 else "btkf,kfh->tkbh"
        return torch.einsum(pattern, u, self.input_weight) + self.bias.unsqueeze(1)

    def step(self, projected: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        target = torch.tanh(torch.baddbmm(projected, h, self.state_weight))
        ratio = _scaled_time(dt, tau)
        step = ratio if self.integrator == "euler" else -torch.expm1(-ratio)
        return h + step * (target - h)


class LiquidExperts(nn.Module):
    """K liquid experts unrolled over an irregular sequence, all experts in one op per step.

    ``forward(u (B, T, F) or (B, T, K, F), dt (B, T), step_mask (B, T), h0 (B, K, H) | None)`` ->
    ``(states (B, T, K, H), last (B, K, H))``. On padded steps (``step_mask = 0``) the state is held, so
    a sequence's last state is the same alone or in a padded batch. With ``strides``, expert k reads only
    every ``strides[k]``-th step and the last valid one, holds its state in between, and integrates the
    whole time since its previous read when it reads (:func:`tsmoe.layers.input_rate.expert_stride_schedule`).
    """

    def __init__(
        self,
        cell: LiquidCell,
        tau: torch.Tensor,
        learnable_tau: bool = False,
        band: float = 2.0,
        strides: list[int] | None = None,
    ):
        super().__init__()
        self.cell = cell
        tau = torch.as_tensor(tau, dtype=torch.float32).reshape(-1)
        if tau.numel() != cell.experts or torch.any(tau <= 0):
            raise ValueError(f"tau must hold {cell.experts} positive time constants, got {tau.tolist()}")
        if strides is not None and (len(strides) != cell.experts or any(int(s) != s or s < 1 for s in strides)):
            raise ValueError(f"strides must hold {cell.experts} integers >= 1, got {list(strides)}")
        self.register_buffer("tau_init", tau)
        self.learnable_tau = learnable_tau
        self.band = band  # a learnable tau stays within [tau / band, tau * band]
        self.tau_logit = nn.Parameter(torch.zeros_like(tau), requires_grad=learnable_tau)
        # expert k reads every strides[k]-th step (see tsmoe.layers.input_rate.expert_stride_schedule)
        self.strides = None if strides is None or all(s == 1 for s in strides) else [int(s) for s in strides]

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
        experts, hidden = self.cell.experts, self.cell.hidden_size
        h = h0.transpose(0, 1).contiguous() if h0 is not None else u.new_zeros(experts, batch, hidden)
        projected = self.cell.project_input(u)  # the input's share of every step, in one matmul
        if self.strides is None:
            keep = (step_mask > 0).t().reshape(steps, 1, batch, 1)  # hold the state on padding
            dt = dt.t()
        else:  # each expert reads its own steps, and integrates the time since its previous read
            update, dt = expert_stride_schedule(step_mask, dt, torch.tensor(self.strides, device=dt.device))
            keep = update.unsqueeze(-1)
        stacked = self.cell.scan(projected, h, dt, self.tau, keep.to(projected.dtype))  # (T, K, B, H)
        return stacked.permute(2, 0, 1, 3), stacked[-1].transpose(0, 1)
