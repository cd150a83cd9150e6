"""Each expert's own input rate: an exponential moving average of the observations on its time scale.

For an irregular series a moving average must follow the clock, not the step count. Expert ``k`` sees
variable ``f`` as ``s_kf``, updated only when ``f`` is observed, at time ``t`` after a gap ``g`` since
``f``'s previous observation:

    s_kf <- s_kf + (1 - exp(-g / tau_k)) * (x_f(t) - s_kf)        (the first observation sets s_kf = x_f)

This is the exact average of the piecewise-constant signal under an exponential kernel of time constant
``tau_k``: a fast expert sees nearly the raw values, a slow one their trend. Between observations the
average is held. Never-observed variables stay 0 (the training mean after z-scoring).
"""

from __future__ import annotations

import torch


@torch.no_grad()
def expert_moving_average(
    values: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, tau: torch.Tensor
) -> torch.Tensor:
    """``values, mask (B, T, F)``, ``times (B, T)`` hours, ``tau (K,)`` -> averages ``(B, T, K, F)``.

    Computed without gradient: it smooths data, and has no parameters of its own.
    """
    batch, steps, features = values.shape
    tau = tau.detach().reshape(1, -1, 1)
    average = values.new_zeros(batch, tau.shape[1], features)
    seen = torch.zeros(batch, 1, features, dtype=torch.bool, device=values.device)
    last_time = values.new_zeros(batch, 1, features)
    out = []
    for t in range(steps):
        observed = mask[:, t].unsqueeze(1) > 0  # (B, 1, F)
        now = times[:, t].reshape(-1, 1, 1)
        weight = -torch.expm1(-(now - last_time).clamp(min=0) / tau)  # (B, K, F)
        weight = torch.where(seen, weight, torch.ones_like(weight))  # the first observation sets the average
        updated = average + weight * (values[:, t].unsqueeze(1) - average)
        average = torch.where(observed, updated, average)
        seen = seen | observed
        last_time = torch.where(observed, now, last_time)
        out.append(average)
    return torch.stack(out, dim=1)
