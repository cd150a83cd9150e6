"""MR-MoE: a multi-rate mixture of liquid experts with feature and temporal attention
(Zong, Boker, Eldardiry, arXiv:2606.12240), and the ladder of models it is judged against.

Per step ``t`` of an irregular series (elapsed time ``dt_t`` per sample):

1. feature attention (optional): ``u_t = values_t * alpha_t * n_obs`` (:class:`FeatureAttention`);
2. K liquid experts, expert k on time scale ``tau_k`` (log-spaced from ``tau_min`` to ``tau_max``, or
   all equal for the same-rate MoE), advance together: ``h_k(t) = cell_k([u_t, mask_t], h_k(t-1), dt_t / tau_k)``;
   with ``fast_expert="quasi_steady"`` the fastest expert is not integrated: its state is read off the
   slowest expert's state and the input, ``h_1(t) = tanh(W [u_t, mask_t, h_K(t)] + b)`` (the paper's
   acceleration); with ``expert_stride`` expert k reads only every ``s_k``-th step (and the last),
   integrating the time since its previous read; with ``input_rate="moving_average"`` it sees the
   observations averaged on its own time scale; with ``observation_decay`` each step's input also holds
   every variable's last value decayed towards the mean and how stale it is (GRU-D's input decay);
3. each expert's readout ``y_k(t) = C_k h_k(t) + c_k``, mixed by the gate
   ``pi(t) = softmax(g([u_t, h_1(t), ..., h_K(t)]))``: ``m(t) = sum_k pi_k(t) y_k(t)``, computed as one
   product (:func:`tsmoe.layers.gate.gated_readout`);
4. temporal attention (optional) of the last state over all states gives a context; the head reads
   ``[context, m(T)]`` (or ``m(T)``) with the static descriptors (and, with ``observation_summary``, each
   variable's mean observed value and log count over the stay, :mod:`tsmoe.layers.observation_summary`).

For early prediction (a ``*_per_step`` task) step 4 runs at every step ``t`` on what was seen up to ``t``
(causal attention, running summaries), so output ``t`` is the model's answer for the first ``t + 1`` steps.

The single liquid networks (``cfc``, ``ltc``, ``ctrnn``) are the case K = 1 with no gate or attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from tsmoe.layers.attention import FeatureAttention, TemporalAttention
from tsmoe.layers.gate import StepGate, gated_readout, load_balancing_loss
from tsmoe.layers.input_rate import expert_moving_average
from tsmoe.layers.liquid import CfCCell, CTRNNCell, LiquidExperts, LTCCell
from tsmoe.layers.observation_decay import DecayState, ObservationDecay
from tsmoe.layers.observation_dropout import check_observation_dropout, drop_observations
from tsmoe.layers.observation_summary import observation_summary, running_observation_summary
from tsmoe.layers.state_memory import StateMemory
from tsmoe.models.entry import ModelEntry
from tsmoe.models.heads import RECORD_TASKS, StaticHead, is_per_step, n_outputs, static_per_step
from tsmoe.models.window_forecaster import WindowOptions


@dataclass
class MRMoEParams(WindowOptions):
    cell: Literal["cfc", "ltc", "ctrnn"] = "cfc"
    experts: int = 3
    hidden_size: int = 32  # per expert
    backbone_units: int = 64  # CfC backbone width
    tau_min: float | None = None  # hours: the fastest expert's time constant; None: RECORD_TAU[0] on
    # records, the sampling interval on forecasting windows
    tau_max: float | None = None  # hours: the slowest expert's; None: RECORD_TAU[1] on records, the
    # lookback's span (lookback x sampling interval) on windows
    same_rate: bool = False  # every expert at the geometric mean of tau_min and tau_max
    learnable_tau: bool = False  # each tau learns within [tau / tau_band, tau * tau_band]
    tau_band: float = 2.0
    fast_expert: Literal["integrate", "quasi_steady"] = "integrate"
    input_rate: Literal["shared", "moving_average"] = "shared"  # moving_average: each expert sees the
    # observations averaged on its own time scale (see tsmoe.layers.input_rate)
    observation_decay: bool = False  # GRU-D's input decay: each step also gets every variable's last value,
    # decayed towards the mean at a learned rate, and log(1 + hours since it was last observed)
    # (tsmoe.layers.observation_decay)
    expert_stride: list[int] | None = None  # one per expert: expert k reads every s_k-th step (and the
    # last), integrating the time since its previous read; None: every expert reads every step
    min_dt: float = 1.0 / 60  # hours: gaps are at least one minute (PhysioNet's resolution), so a first
    # observation at time 0 still enters the ODE cells, which see nothing over a zero gap
    cfc_mode: Literal["default", "no_gate", "pure"] = "default"
    ltc_unfolds: int = 6
    ctrnn_integrator: Literal["euler", "exponential"] = "exponential"
    d_model: int = 64  # width of each expert's readout and of the mixture
    gate_hidden: int = 32
    top_k: int | None = None
    balance_weight: float = 0.0  # weight of the load-balancing loss (0: off, as in the paper)
    feature_attention: bool = True
    temporal_attention: bool = True
    attention_hidden: int = 64
    head_hidden: int = 64
    dropout: float = 0.1
    observation_dropout: float = 0.0  # training only: hide each observed value with this probability
    # (tsmoe.layers.observation_dropout)
    observation_summary: bool = False  # the head also reads each variable's mean observed value and
    # log(1 + count) over the stay (tsmoe.layers.observation_summary)

    RECORD_TAU: ClassVar[tuple[float, float]] = (0.5, 24.0)  # hours: the paper's scales for ICU stays


def time_scales(params: MRMoEParams, dims: dict) -> tuple[float, float]:
    """``(tau_min, tau_max)``: as set, or by default the data's own scales: from the sampling interval
    ``dims["step"]`` to the lookback's span on forecasting windows, ``RECORD_TAU`` on records."""
    if "step" in dims:
        defaults = (float(dims["step"]), float(dims["step"]) * int(dims["lookback"]))
    else:
        defaults = params.RECORD_TAU
    return (params.tau_min if params.tau_min is not None else defaults[0],
            params.tau_max if params.tau_max is not None else defaults[1])  # fmt: skip


def time_constants(params: MRMoEParams, scales: tuple[float, float]) -> torch.Tensor:
    """``(K,)`` time constants: log-spaced over ``scales = (tau_min, tau_max)``, or all at their geometric
    mean (same rate); one expert takes ``tau_min``."""
    k, (low, high) = params.experts, scales
    if params.same_rate or k == 1:
        return torch.full((k,), (low * high) ** 0.5 if k > 1 else low)
    return torch.logspace(torch.log10(torch.tensor(low)), torch.log10(torch.tensor(high)), k)


def build_cell(params: MRMoEParams, input_size: int, experts: int) -> nn.Module:
    if params.cell == "cfc":
        return CfCCell(input_size, params.hidden_size, experts, params.cfc_mode, params.backbone_units)
    if params.cell == "ltc":
        return LTCCell(input_size, params.hidden_size, experts, params.ltc_unfolds)
    return CTRNNCell(input_size, params.hidden_size, experts, params.ctrnn_integrator)


class MRMoE(nn.Module):
    """``batch`` (see :func:`tsmoe.data.irregular.collate_irregular`) -> dict with ``output`` (logits),
    ``aux_loss``, ``gate (B, T, K)``, ``feature_attention (B, T, F)``, ``temporal_attention (B, T)``.
    ``outputs`` overrides the task's number of outputs (a forecaster of windows asks for ``horizon * F``)."""

    def __init__(self, params: MRMoEParams, dims: dict[str, int], task: str, outputs: int | None = None) -> None:
        super().__init__()
        if params.experts < 1:
            raise ValueError("experts must be >= 1")
        check_observation_dropout(params.observation_dropout)
        if params.fast_expert == "quasi_steady" and params.experts < 2:
            raise ValueError("fast_expert=quasi_steady needs at least 2 experts")
        self.params = params
        self.per_step = is_per_step(task)
        if self.per_step and params.expert_stride is not None:
            raise ValueError(
                "expert_stride reads each sequence's last step whatever its stride: not for per-step tasks"
            )
        n_features = dims["n_features"]
        self.n_features = n_features
        step_input = 2 * n_features  # [weighted values, mask]
        self.decay = ObservationDecay(n_features) if params.observation_decay else None
        if self.decay is not None:
            step_input += 2 * n_features  # [..., decayed last values, log1p(staleness)]
        tau = time_constants(params, time_scales(params, dims))
        self.quasi_steady = params.fast_expert == "quasi_steady"
        integrated = params.experts - 1 if self.quasi_steady else params.experts
        strides = params.expert_stride
        if strides is not None and len(strides) != params.experts:
            raise ValueError(f"expert_stride must hold one stride per expert ({params.experts}), got {strides}")
        if strides is not None and self.quasi_steady and strides[0] != 1:
            raise ValueError(
                "with fast_expert=quasi_steady the fast expert reads every step: expert_stride[0] must be 1"
            )
        self.experts = LiquidExperts(
            build_cell(params, step_input, integrated),
            tau[1:] if self.quasi_steady else tau,
            params.learnable_tau,
            params.tau_band,
            strides[1:] if strides is not None and self.quasi_steady else strides,
        )
        if self.quasi_steady:
            self.fast_map = nn.Linear(step_input + params.hidden_size, params.hidden_size)
        self.features = FeatureAttention(n_features, params.attention_hidden) if params.feature_attention else None
        self.readout = nn.Parameter(
            torch.randn(params.experts, params.hidden_size, params.d_model) / params.hidden_size**0.5
        )
        self.readout_bias = nn.Parameter(torch.zeros(params.experts, params.d_model))
        self.gate = (
            StepGate(step_input + params.experts * params.hidden_size, params.experts, params.gate_hidden, params.top_k)
            if params.experts > 1
            else None
        )
        self.temporal = TemporalAttention(params.d_model) if params.temporal_attention else None
        summary = 2 * params.d_model if params.temporal_attention else params.d_model
        summary += 2 * n_features if params.observation_summary else 0
        outputs = n_outputs(task, dims) if outputs is None else outputs
        self.head = StaticHead(summary, dims["n_static"], params.head_hidden, outputs, params.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.training:
            batch = drop_observations(batch, self.params.observation_dropout)
        values, mask, step_mask = batch["values"], batch["mask"], batch["step_mask"]
        alpha = None
        if self.features is not None:
            values, alpha = self.features(values, mask)
        history = self.decay(batch["values"], mask, batch["times"]) if self.decay is not None else ()
        u = torch.cat([values, mask, *history], dim=-1)  # (B, T, 2F), or (B, T, 4F) with observation decay
        expert_input = u
        if self.params.input_rate == "moving_average":  # (B, T, K', 2F): each expert's own view of the data
            averaged = expert_moving_average(batch["values"], mask, batch["times"], self.experts.tau)
            if alpha is not None:  # the attention weights apply to every expert's view alike
                averaged = averaged * (alpha * mask.sum(-1, keepdim=True)).unsqueeze(2)
            expert_mask = mask.unsqueeze(2).expand(-1, -1, averaged.shape[2], -1)
            expert_history = [part.unsqueeze(2).expand_as(averaged) for part in history]
            expert_input = torch.cat([averaged, expert_mask, *expert_history], dim=-1)
        states, _ = self.experts(expert_input, batch["dt"].clamp(min=self.params.min_dt), step_mask)  # (B, T, K', H)
        if self.quasi_steady:  # the fast expert's state, read off the slowest state and the input
            fast = torch.tanh(self.fast_map(torch.cat([u, states[:, :, -1]], dim=-1)))
            states = torch.cat([fast.unsqueeze(2), states], dim=2)
        extras: dict[str, torch.Tensor] = {}
        if self.gate is not None:
            weights, probs = self.gate(u, states.flatten(2))
            mixed = gated_readout(weights, states, self.readout, self.readout_bias)  # (B, T, D)
            extras["gate"] = weights
            if self.params.balance_weight > 0:
                extras["aux_loss"] = self.params.balance_weight * load_balancing_loss(probs, weights, step_mask)
        else:
            mixed = states[:, :, 0] @ self.readout[0] + self.readout_bias[0]
        if self.per_step:  # early prediction: the head at every step, from the steps seen so far
            return {"output": self._every_step(mixed, batch, mask, step_mask), **extras}
        last_index = (batch["lengths"] - 1).clamp(min=0).to(mixed.device)
        last = mixed[torch.arange(mixed.shape[0], device=mixed.device), last_index]  # (B, D)
        summary = last
        if self.temporal is not None:
            context, time_weights = self.temporal(mixed, step_mask, last)
            summary = torch.cat([context, last], dim=-1)
            extras["temporal_attention"] = time_weights
        if self.params.observation_summary:
            summary = torch.cat([summary, observation_summary(batch["values"], mask)], dim=-1)
        if alpha is not None:
            extras["feature_attention"] = alpha
        return {"output": self.head(summary, batch["static"], batch["static_mask"]), **extras}

    def _every_step(
        self, mixed: torch.Tensor, batch: dict[str, torch.Tensor], mask: torch.Tensor, step_mask: torch.Tensor
    ) -> torch.Tensor:
        """``mixed (B, T, D)`` -> outputs ``(B, T)`` or ``(B, T, K)``: at step ``t`` what :meth:`forward`
        gives for the sequence's first ``t + 1`` steps (causal attention, running summaries)."""
        summary = mixed
        if self.temporal is not None:
            context, _ = self.temporal.causal(mixed, step_mask)
            summary = torch.cat([context, mixed], dim=-1)
        if self.params.observation_summary:
            summary = torch.cat([summary, running_observation_summary(batch["values"], mask)], dim=-1)
        return self.head(summary, *static_per_step(batch, mixed.shape[1]))

    # ---- one step at a time (streaming) -------------------------------------------------------------

    def start_state(self, batch: int) -> StepState:
        """What :meth:`step` carries for ``batch`` sequences that have seen nothing yet (rows
        ``0..batch-1`` of a new :class:`StateMemory`)."""
        if self.params.input_rate != "shared" or self.experts.strides is not None:
            raise ValueError("input_rate moving_average and expert_stride read ahead of a step: no streaming")
        n_features, hidden = self.n_features, self.params.hidden_size
        return StepState(
            h=torch.zeros(batch, self.experts.cell.experts, hidden),
            decay=DecayState.empty(batch, n_features) if self.decay is not None else None,
            sums=torch.zeros(batch, n_features),
            counts=torch.zeros(batch, n_features),
            lengths=torch.zeros(batch, dtype=torch.long),
            memory=StateMemory(batch, self.params.d_model) if self.temporal is not None else None,
            slots=torch.arange(batch),
        )

    def step(self, step: dict[str, torch.Tensor], state: StepState) -> tuple[torch.Tensor, StepState]:
        """One new step of ``B`` sequences: ``values, mask (B, F)`` (scaled as in training, 0 where
        unobserved), ``times, dt (B,)`` (time since the start, and since the previous step), ``static,
        static_mask (B, P)``, and the ``state`` after their previous steps -> the outputs ``(B,)`` or
        ``(B, K)`` and the state after this step. The output equals :meth:`forward` on the whole sequence
        so far (every part of the model is causal); the state holds the liquid states, each variable's last
        observation (observation decay), running sums (observation summary) and, for temporal attention,
        where its memory holds each sequence's mixed states (this step's are written there)."""
        values, mask = step["values"].unsqueeze(1), step["mask"].unsqueeze(1)  # (B, 1, F)
        weighted = values
        if self.features is not None:
            weighted, _ = self.features(values, mask)
        history: tuple[torch.Tensor, ...] = ()
        decay = state.decay
        if self.decay is not None:
            x_hat, staleness, decay = self.decay.step(step["values"], step["mask"], step["times"], state.decay)
            history = (x_hat.unsqueeze(1), staleness.unsqueeze(1))
        u = torch.cat([weighted, mask, *history], dim=-1)
        dt = step["dt"].clamp(min=self.params.min_dt)
        h = self.experts.cell(u[:, 0], state.h, dt, self.experts.tau)  # one step of the cell: (B, K', H)
        states = h.unsqueeze(1)  # (B, 1, K', H)
        if self.quasi_steady:
            fast = torch.tanh(self.fast_map(torch.cat([u, states[:, :, -1]], dim=-1)))
            states = torch.cat([fast.unsqueeze(2), states], dim=2)
        if self.gate is not None:
            weights, _ = self.gate(u, states.flatten(2))
            mixed = gated_readout(weights, states, self.readout, self.readout_bias)
        else:
            mixed = states[:, :, 0] @ self.readout[0] + self.readout_bias[0]
        summary = mixed[:, 0]
        if self.temporal is not None:  # the new mixed state joins each sequence's stored ones
            context = self.temporal.step(summary, state.memory, state.slots, state.lengths)
            summary = torch.cat([context, summary], dim=-1)
        sums, counts = state.sums + step["values"] * step["mask"], state.counts + step["mask"]
        if self.params.observation_summary:
            summary = torch.cat([summary, sums / counts.clamp(min=1.0), torch.log1p(counts)], dim=-1)
        output = self.head(summary, step["static"], step["static_mask"])
        return output, StepState(h, decay, sums, counts, state.lengths + 1, state.memory, state.slots)


@dataclass
class StepState:
    """What :meth:`MRMoE.step` carries for ``B`` sequences: ``h (B, K', H)`` the integrated experts'
    states, ``decay`` (observation decay's last values), ``sums, counts (B, F)`` of the observed values,
    ``lengths (B,)`` the steps each has seen, and for temporal attention the :class:`StateMemory` that
    holds their mixed states, sequence ``b`` in row ``slots[b]`` (shared, not copied, by every state that
    refers to it; a step redone from an earlier state overwrites its place)."""

    h: torch.Tensor
    decay: DecayState | None
    sums: torch.Tensor
    counts: torch.Tensor
    lengths: torch.Tensor
    memory: StateMemory | None
    slots: torch.Tensor

    def rows(self) -> list[torch.Tensor]:
        """The per-sequence state, ``(B, ...)`` each, in the order :meth:`with_rows` takes it (not the
        slots: they say where a sequence is, not what it has seen)."""
        decay = list(self.decay.parts()) if self.decay is not None else []
        return [self.h, *decay, self.sums, self.counts, self.lengths]

    def with_rows(self, rows: list[torch.Tensor], slots: torch.Tensor) -> StepState:
        """A state of other per-sequence tensors (in :meth:`rows`' order) in rows ``slots`` of the same
        memory."""
        h, *rest = rows
        decay = DecayState(*rest[:3]) if self.decay is not None else None
        sums, counts, lengths = rest[-3:]
        return StepState(h, decay, sums, counts, lengths, self.memory, slots)

    def select(self, index: torch.Tensor | slice) -> StepState:
        """Sequences ``index`` of this state: ``(B',)`` numbers (copies) or a range (views)."""
        return self.with_rows([row[index] for row in self.rows()], self.slots[index])

    def put(self, index: torch.Tensor | slice, other: StepState) -> None:
        """Overwrite what sequences ``index`` (numbers or a range) have seen with ``other``'s (in place;
        their slots stay)."""
        for row, new in zip(self.rows(), other.rows(), strict=True):
            row[index] = new


# ---- the ladder: the same module under each rung's defaults ----------------------------------------


@dataclass
class MRMoENoAttentionParams(MRMoEParams):
    feature_attention: bool = False
    temporal_attention: bool = False


@dataclass
class SameRateMoEParams(MRMoENoAttentionParams):
    same_rate: bool = True


@dataclass
class CfCParams(MRMoENoAttentionParams):
    """One liquid network: a single expert (no gate), on the data's own clock (tau = 1 hour on records,
    the sampling interval on windows)."""

    experts: int = 1
    hidden_size: int = 64
    RECORD_TAU: ClassVar[tuple[float, float]] = (1.0, 1.0)


@dataclass
class LTCParams(CfCParams):
    cell: Literal["cfc", "ltc", "ctrnn"] = "ltc"


@dataclass
class CTRNNParams(CfCParams):
    cell: Literal["cfc", "ltc", "ctrnn"] = "ctrnn"


_TASKS = RECORD_TASKS | {"forecast"}  # forecasting on windows (tsmoe.models.window_forecaster)
ENTRIES = tuple(
    ModelEntry(name, MRMoE, params, "irregular", _TASKS, description, forecasts_windows=True)
    for name, params, description in (
        ("mrmoe", MRMoEParams, "MR-MoE: multi-rate liquid experts, step gate, feature + temporal attention"),
        ("mrmoe_no_attention", MRMoENoAttentionParams, "MR-MoE without attention"),
        ("moe_same_rate", SameRateMoEParams, "K liquid experts at one time scale, step gate, no attention"),
        ("cfc", CfCParams, "one CfC network (closed-form continuous time)"),
        ("ltc", LTCParams, "one LTC network (liquid time constant, fused semi-implicit solver)"),
        ("ctrnn", CTRNNParams, "one continuous-time RNN (exponential or Euler steps)"),
    )
)
