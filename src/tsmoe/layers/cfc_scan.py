"""The CfC recurrence over a whole sequence, with a hand-written backward pass (backpropagation through time).

Autograd records about fifteen small ops per time step and replays twice as many in backward, each with
its own bookkeeping; on a CPU, at the sizes of MR-MoE's experts, that overhead costs more than the
arithmetic. This function runs the same recurrence with fewer, cheaper ops and keeps in the backward time
loop only what depends on the carried gradient. The numbers are those of
:meth:`tsmoe.layers.liquid.CfCCell.step` (``default`` and ``no_gate`` modes) to float rounding;
``tests/layers/test_liquid.py`` checks values and gradients against the autograd loop.

Forward, per step ``t`` and for all K experts at once (``(K, B, .)`` tensors):

    z_t     = 1.7159 tanh(0.666 (P_t + h_{t-1} W_h))        P_t: the input's share (``project_input``)
    heads_t = b + z_t W = [f1, f2, t_a, t_b]
    g_t     = sigmoid(t_a * s_t + t_b)                       s_t = dt_t / tau_k
    h'_t    = tanh(f1) + g_t (tanh(f2) - tanh(f1))  (default),   tanh(f1) + g_t tanh(f2)  (no_gate)
    h_t     = keep_t ? h'_t : h_{t-1}                        (padding holds the state)

Every tanh is computed as ``tanh(x) = 2 sigmoid(2x) - 1`` (sigmoid's CPU kernel was several times faster
than tanh's in earlier PyTorch; with 2.13 a plain tanh times the same over the whole scan, side by side, and
the form stays so that stored runs reproduce exactly), with the constants folded into the weights once per
sequence:
``z = 3.4318 sigmoid(1.332 pre) - 1.7159``, so ``heads = (b - 1.7159 * 1^T W) + sigmoid(1.332 pre) (3.4318 W)``.

Saved for backward: ``s`` and ``[tanh f1, tanh f2, t_a, g]`` of every step (the gate overwrites ``t_b``,
which backward never needs), in whole-sequence buffers.

Backward, per step, from ``G_t = dL/dh_t`` (incoming plus carried): ``dL/dheads_t`` from ``G_t * keep_t``
and the saved ``tanh f, g``; ``dL/dpre_t = (dL/dheads_t W^T) * 1.7159 * 0.666 * (1 - tanh^2)``; and the
carry ``G_{t-1} = dL/dh_{t-1} (incoming) + G_t (1 - keep_t) + dL/dpre_t W_h^T``, one ``baddbmm``. The
weight gradients accumulate in place.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

LECUN_IN, LECUN_OUT = 0.666, 1.7159  # LeCun's scaled tanh, 1.7159 * tanh(0.666 x), the ncps CfC backbone's


class CfCScan(torch.autograd.Function):
    """``apply(projected (T, K, B, U), h0 (K, B, H), scaled_time (T, K, B, 1), keep (T, 1, B, 1) float,
    state_weight (K, H, U), head_weight (K, U, 4H), head_bias (K, 4H), no_gate: bool)`` -> states
    ``(T, K, B, H)``. Differentiable in every tensor argument but ``keep``."""

    @staticmethod
    def forward(ctx, projected, h0, scaled_time, keep, state_weight, head_weight, head_bias, no_gate):
        steps, hidden = projected.shape[0], h0.shape[-1]
        column_scale = torch.ones_like(head_bias)  # the f1, f2 columns doubled for their tanh-by-sigmoid
        column_scale[:, : 2 * hidden] = 2
        head_w = head_weight * (2 * LECUN_OUT) * column_scale.unsqueeze(1)
        bias = ((head_bias - LECUN_OUT * head_weight.sum(1)) * column_scale).unsqueeze(1)
        padded = not bool(keep.all())
        experts, batch = h0.shape[:2]
        # Whole-sequence buffers, written step by step in place: each step's state goes into a buffer laid out
        # (B, T, K, H), so the caller's batch-first view of the states is this buffer itself (no copy either
        # way). Per-step views are made once by unbind: slicing inside the loop cost more than some of its ops.
        out = h0.new_empty(batch, steps, experts, hidden).permute(1, 2, 0, 3)  # (T, K, B, H) view
        squashed = h0.new_empty(steps, experts, batch, projected.shape[-1])  # s, saved for backward
        heads_all = h0.new_empty(steps, experts, batch, 4 * hidden)  # [tanh f1, tanh f2, t_a, gate], saved
        s_at, heads_at, out_at = squashed.unbind(0), heads_all.unbind(0), out.unbind(0)
        ff_at, ff1_at, ff2_at, t_a_at, gate_at = _head_views(heads_all, hidden)
        projected_at, time_at, keep_at = projected.unbind(0), scaled_time.unbind(0), (keep > 0).unbind(0)
        h, minus_one = h0, h0.new_full((), -1.0)
        for t in range(steps):
            # (K, B, U): s = sigmoid(1.332 (P_t + h W_h)), z = 3.4318 s - 1.7159; baddbmm scales both terms, so
            # the whole (T, K, B, U) input share is never rescaled in a pass of its own
            s = torch.baddbmm(projected_at[t], h, state_weight, beta=2 * LECUN_IN, alpha=2 * LECUN_IN, out=s_at[t])
            s.sigmoid_()
            torch.baddbmm(bias, s, head_w, out=heads_at[t])  # (K, B, 4H): [2 f1, 2 f2, t_a, t_b]
            # in place: [tanh f1, tanh f2] = -1 + 2 sigmoid, one pass for the affine part (2 sigmoid is exact,
            # so the single rounding of the sum gives the same floats as doubling and then subtracting 1)
            torch.add(minus_one, ff_at[t].sigmoid_(), alpha=2, out=ff_at[t])
            # the gate overwrites t_b, which backward does not need: g = sigmoid(t_a s_t + t_b)
            gate = torch.addcmul(gate_at[t], t_a_at[t], time_at[t], out=gate_at[t]).sigmoid_()
            ff1, ff2 = ff1_at[t], ff2_at[t]
            if padded:
                new = torch.addcmul(ff1, gate, ff2) if no_gate else torch.lerp(ff1, ff2, gate)
                h = torch.where(keep_at[t], new, h, out=out_at[t])
            elif no_gate:
                h = torch.addcmul(ff1, gate, ff2, out=out_at[t])
            else:
                h = torch.lerp(ff1, ff2, gate, out=out_at[t])  # ff1 + g (ff2 - ff1), one pass
        ctx.save_for_backward(h0, out, scaled_time, keep, state_weight, head_weight, squashed, heads_all)
        ctx.no_gate, ctx.padded = no_gate, padded
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states):
        h0, states, scaled_time, keep, state_weight, head_weight, squashed, heads_all = ctx.saved_tensors
        steps, experts, batch, hidden = states.shape
        # d z / d pre = 1.7159 * 0.666 * 4 s (1 - s): the constant is folded into the weight that makes d_pre
        head_w_t = (head_weight * (4 * LECUN_OUT * LECUN_IN)).transpose(1, 2).contiguous()  # (K, 4H, U)
        state_w_t = state_weight.transpose(1, 2).contiguous()  # (K, U, H)
        one = h0.new_ones(())
        sum_s_heads = torch.zeros_like(head_weight)  # sum over steps and samples of s^T dL/dheads
        sum_prev_pre = torch.zeros_like(state_weight)  # ... of h_{t-1}^T dL/dpre
        sum_heads = h0.new_zeros(experts, batch, 4 * hidden)
        grad_pre = h0.new_empty(steps, experts, batch, state_weight.shape[-1])
        grad_time = h0.new_empty(steps, experts, batch, 1)
        d_heads = h0.new_empty(experts, batch, 4 * hidden)  # reused every step: written piece by piece
        # the step's temporaries, reused every step (fresh ones cost an allocation each and a cold cache), and
        # two buffers for the carry, which one step reads while the next is written
        g_gate, part, held = (h0.new_empty(h0.shape) for _ in range(3))
        d_squash = h0.new_empty(experts, batch, state_weight.shape[-1])
        carries = (h0.new_empty(h0.shape), h0.new_empty(h0.shape))
        d_ff, d_gate = d_heads[..., : 2 * hidden], d_heads[..., 3 * hidden :]
        ff_at, ff1_at, ff2_at, t_a_at, gate_at = _head_views(heads_all, hidden)
        s_at, states_at, grad_states_at = squashed.unbind(0), states.unbind(0), grad_states.unbind(0)
        grad_pre_at, grad_time_at, time_at, keep_at = (
            grad_pre.unbind(0),
            grad_time.unbind(0),
            scaled_time.unbind(0),
            keep.unbind(0),
        )
        g = grad_states_at[steps - 1]  # dL/dh_t, incoming plus carried from step t + 1
        for t in range(steps - 1, -1, -1):
            s, ff, ff1, ff2, gate = s_at[t], ff_at[t], ff1_at[t], ff2_at[t], gate_at[t]
            g_kept = torch.mul(g, keep_at[t], out=held) if ctx.padded else g
            torch.addcmul(one, ff, ff, value=-1, out=d_ff)  # d tanh = 1 - tanh^2
            torch.mul(g_kept, gate, out=g_gate)
            d_ff[..., :hidden].mul_(g_kept if ctx.no_gate else torch.sub(g_kept, g_gate, out=part))  # 1 or 1 - g
            d_ff[..., hidden:].mul_(g_gate)  # d h'/d tanh f2 = g
            through_gate = torch.mul(g_gate, ff2 if ctx.no_gate else torch.sub(ff2, ff1, out=part), out=part)
            torch.addcmul(through_gate, through_gate, gate, value=-1, out=d_gate)  # times sigmoid' = g (1 - g)
            torch.mul(d_gate, time_at[t], out=d_heads[..., 2 * hidden : 3 * hidden])  # d t_a
            sum_s_heads.baddbmm_(s.transpose(1, 2), d_heads)
            sum_heads += d_heads
            # dL/dpre_t (K, B, U)
            d_pre = torch.bmm(d_heads, head_w_t, out=grad_pre_at[t])
            d_pre.mul_(torch.addcmul(s, s, s, value=-1, out=d_squash))
            torch.sum(torch.mul(d_gate, t_a_at[t], out=part), -1, keepdim=True, out=grad_time_at[t])  # d s_t
            sum_prev_pre.baddbmm_((states_at[t - 1] if t > 0 else h0).transpose(1, 2), d_pre)
            # the carry G_{t-1} = dL/dh_{t-1}: the incoming gradient, held steps' share, and d_pre W_h^T in one op
            incoming = grad_states_at[t - 1] if t > 0 else torch.zeros_like(h0)
            if ctx.padded:  # (g - g_kept) + incoming: the same sum as incoming + (g - g_kept)
                incoming = torch.sub(g, g_kept, out=part).add_(incoming)
            g = torch.baddbmm(incoming, d_pre, state_w_t, out=carries[t % 2])
        grad_head_bias = sum_heads.sum(1)
        # heads = b + z W with z = 3.4318 s - 1.7159, so dL/dW = 3.4318 s^T dL/dheads - 1.7159 * dL/db per row
        grad_head_weight = sum_s_heads.mul_(2 * LECUN_OUT).sub_(LECUN_OUT * grad_head_bias.unsqueeze(1))
        return (grad_pre, g, grad_time, None, sum_prev_pre,
                grad_head_weight, grad_head_bias, None)  # fmt: skip


def _head_views(heads: torch.Tensor, hidden: int) -> tuple[tuple[torch.Tensor, ...], ...]:
    """Per-step views of the saved heads ``(T, K, B, 4H)`` = ``[tanh f1, tanh f2, t_a, gate]``: the columns of
    ``[tanh f1, tanh f2]``, ``tanh f1``, ``tanh f2``, ``t_a`` and the gate (``t_b`` before the gate overwrites it)."""
    columns = (slice(0, 2 * hidden), slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden))
    return tuple(heads[..., c].unbind(0) for c in (*columns, slice(3 * hidden, 4 * hidden)))
