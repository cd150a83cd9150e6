"""Each expert's own input rate: an exponential moving average of the observations on its time scale
(:func:`expert_moving_average`), or a stride, every ``s_k``-th step (:func:`expert_stride_schedule`).

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


def expert_stride_schedule(
    step_mask: torch.Tensor, dt: torch.Tensor, strides: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """When each expert reads the input, and the time it has to integrate when it does.

    Expert ``k`` with stride ``s_k`` reads steps ``s_k - 1, 2 s_k - 1, ...`` of each sequence, and its
    last valid step (so every expert's final state has seen the final observation); in between, its
    state is held. At a step it reads, its elapsed time is the whole time since the last step it read
    (or since the start), so it integrates over the steps it skipped instead of losing their time.

    ``step_mask (B, T)`` (valid steps first, padding after), ``dt (B, T)`` hours, ``strides (K,)`` ints
    >= 1 -> ``update (T, K, B)`` bool and ``elapsed (T, K, B)`` hours (meaningful where ``update``).
    """
    batch, steps = step_mask.shape
    valid = step_mask > 0
    index = torch.arange(steps, device=dt.device)
    last = (valid.sum(1) - 1).clamp(min=0)  # (B,)
    on_stride = ((index.reshape(steps, 1) + 1) % strides.reshape(1, -1)) == 0  # (T, K)
    is_last = index.reshape(steps, 1) == last.reshape(1, batch)  # (T, B)
    update = (on_stride.unsqueeze(-1) | is_last.unsqueeze(1)) & valid.t().unsqueeze(1)  # (T, K, B)
    clock = torch.cumsum(dt.t(), dim=0)  # (T, B): time since the start at each step
    # index of each expert's latest read at or before t; -1 before its first
    latest = torch.where(update, index.reshape(steps, 1, 1), -1).cummax(dim=0).values
    previous = torch.cat([latest.new_full((1, *latest.shape[1:]), -1), latest[:-1]])  # strictly before t
    since = torch.where(
        previous >= 0, torch.gather(clock.unsqueeze(1).expand_as(previous), 0, previous.clamp(min=0)), 0.0
    )
    return update, clock.unsqueeze(1) - since
