"""Per-variable summaries of what a stay observed, for a classifier's head.

For variable ``f`` of sample ``b``, over the valid steps ``t``:

    mean_bf  = sum_t mask_btf * values_btf / max(n_bf, 1)      (0 where never observed)
    count_bf = log(1 + n_bf),   n_bf = sum_t mask_btf

The mean of a variable over the stay is the strongest single summary for in-hospital mortality on
PhysioNet 2012 (benchmarks/p1_features.py); a recurrent state holds it only approximately, so the head
can read it directly. No parameters.
"""

from __future__ import annotations

import torch


def observation_summary(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values, mask (B, T, F)`` (values scaled, 0 where unobserved or padding) -> ``(B, 2F)``:
    ``[mean, log1p(count)]`` of each variable's observed values."""
    count = mask.sum(dim=1)  # (B, F)
    mean = (values * mask).sum(dim=1) / count.clamp(min=1.0)
    return torch.cat([mean, torch.log1p(count)], dim=-1)


def running_observation_summary(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`observation_summary` of every prefix at once (early prediction): ``values, mask (B, T, F)`` ->
    ``(B, T, 2F)``, row ``t`` over steps ``0..t``."""
    count = mask.cumsum(dim=1)
    mean = (values * mask).cumsum(dim=1) / count.clamp(min=1.0)
    return torch.cat([mean, torch.log1p(count)], dim=-1)
