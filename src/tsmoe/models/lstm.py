"""LSTM and GRU classifiers for irregular multivariate series (the first rung of the MR-MoE ladder, P1).

Each step's input is ``[values, observed mask, log(1 + dt)]`` (``2F + 1`` numbers): unobserved values
are 0 (the training mean after z-scoring) and the mask tells the network which are real. With
``observation_decay`` each step also gets every variable's last value decayed towards the mean and how
stale it is (GRU-D's input decay, :mod:`tsmoe.layers.observation_decay`; ``4F + 1`` numbers). With
``observation_dropout`` a share of the observed values is hidden in training
(:mod:`tsmoe.layers.observation_dropout`). The last valid hidden state, concatenated with the static
descriptors and their mask (and, with ``observation_summary``, each variable's mean observed value and
log count over the stay, :mod:`tsmoe.layers.observation_summary`), goes through an MLP head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tsmoe.layers.observation_decay import ObservationDecay
from tsmoe.layers.observation_dropout import check_observation_dropout, drop_observations
from tsmoe.layers.observation_summary import observation_summary, running_observation_summary
from tsmoe.models.entry import ModelEntry
from tsmoe.models.heads import RECORD_TASKS, StaticHead, is_per_step, n_outputs, static_per_step
from tsmoe.models.window_forecaster import WindowOptions


@dataclass
class LSTMParams(WindowOptions):
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1  # in the head (and between LSTM layers when num_layers > 1)
    head_hidden: int = 64
    observation_decay: bool = False  # also feed decayed last values and their staleness (GRU-D's input decay)
    observation_dropout: float = 0.0  # training only: hide each observed value with this probability
    observation_summary: bool = False  # the head also reads each variable's mean observed value and log count


def irregular_step_inputs(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[values, mask, log1p(dt)]`` per step: ``(B, T, 2F + 1)``."""
    return torch.cat([batch["values"], batch["mask"], torch.log1p(batch["dt"]).unsqueeze(-1)], dim=-1)


class LSTMClassifier(nn.Module):
    """``batch`` (see :func:`tsmoe.data.irregular.collate_irregular`) -> logits ``(B,)`` or ``(B, K)``; for a
    per-step task ``(B, T)`` or ``(B, T, K)``, the head on every step's hidden state. ``outputs`` overrides
    the task's number of outputs (a forecaster of windows asks for ``horizon * F``)."""

    recurrent = nn.LSTM

    def __init__(self, params: LSTMParams, dims: dict[str, int], task: str, outputs: int | None = None) -> None:
        super().__init__()
        check_observation_dropout(params.observation_dropout)
        self.observation_dropout = params.observation_dropout
        self.observation_summary = params.observation_summary
        self.per_step = is_per_step(task)
        n_features = dims["n_features"]
        self.decay = ObservationDecay(n_features) if params.observation_decay else None
        self.rnn = self.recurrent(
            input_size=(4 if params.observation_decay else 2) * n_features + 1,
            hidden_size=params.hidden_size,
            num_layers=params.num_layers,
            batch_first=True,
            dropout=params.dropout if params.num_layers > 1 else 0.0,
        )
        summary = params.hidden_size + (2 * n_features if params.observation_summary else 0)
        outputs = n_outputs(task, dims) if outputs is None else outputs
        self.head = StaticHead(summary, dims["n_static"], params.head_hidden, outputs, params.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.training:
            batch = drop_observations(batch, self.observation_dropout)
        inputs = irregular_step_inputs(batch)
        if self.decay is not None:
            inputs = torch.cat([inputs, *self.decay(batch["values"], batch["mask"], batch["times"])], dim=-1)
        lengths = batch["lengths"].cpu()
        padded = not bool((lengths == inputs.shape[1]).all())
        if padded:
            every, hidden = self.rnn(pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False))
        else:  # forecasting windows: the same function, and PyTorch's CPU GRU runs several times faster unpacked
            every, hidden = self.rnn(inputs)
        if self.per_step:  # early prediction: the head on the hidden state of every step
            states = pad_packed_sequence(every, batch_first=True, total_length=inputs.shape[1])[0] if padded else every
            if self.observation_summary:
                states = torch.cat([states, running_observation_summary(batch["values"], batch["mask"])], dim=-1)
            return self.head(states, *static_per_step(batch, inputs.shape[1]))
        if isinstance(hidden, tuple):  # the LSTM's (h, c)
            hidden = hidden[0]
        summary = hidden[-1]
        if self.observation_summary:
            summary = torch.cat([summary, observation_summary(batch["values"], batch["mask"])], dim=-1)
        return self.head(summary, batch["static"], batch["static_mask"])


class GRUClassifier(LSTMClassifier):
    """As :class:`LSTMClassifier`, with a GRU."""

    recurrent = nn.GRU


_TASKS = RECORD_TASKS | {"forecast"}  # forecasting on windows (tsmoe.models.window_forecaster)
ENTRIES = (
    ModelEntry("lstm", LSTMClassifier, LSTMParams, "irregular", _TASKS, "LSTM over irregular steps (values, mask, dt)",
               forecasts_windows=True),
    ModelEntry("gru", GRUClassifier, LSTMParams, "irregular", _TASKS, "GRU over irregular steps (values, mask, dt)",
               forecasts_windows=True),
)  # fmt: skip
