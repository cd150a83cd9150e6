"""Observation dropout: a training-time augmentation of irregular series that hides observed values.

Each observed value of a training batch is hidden (value and mask set to 0, as if it had not been
measured) independently with probability ``p``:

    keep_tf ~ Bernoulli(1 - p),   values_tf <- keep_tf * values_tf,   mask_tf <- keep_tf * mask_tf

The series keep their steps and times, so a step whose every value is hidden still advances the
recurrent state by its gap. In an ICU stay, which labs were drawn and when is itself informative; hiding
a share of them makes a model that overfits within a few epochs lean less on any single measurement.
Evaluation never drops anything.
"""

from __future__ import annotations

import torch


def check_observation_dropout(p: float) -> None:
    """Refuse a probability outside ``[0, 1)`` (1 would hide every observation)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"observation_dropout must be in [0, 1), got {p}")


def drop_observations(batch: dict[str, torch.Tensor], p: float) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` (see :func:`tsmoe.data.irregular.collate_irregular`) with each observed
    value of ``values, mask (B, T, F)`` hidden with probability ``p``; the other entries are shared."""
    check_observation_dropout(p)
    if p == 0.0:
        return batch
    keep = (torch.rand_like(batch["mask"]) >= p).to(batch["mask"].dtype)
    return {**batch, "values": batch["values"] * keep, "mask": batch["mask"] * keep}
