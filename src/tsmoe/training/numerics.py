"""Subnormal floats, flushed to zero while tsmoe trains and predicts.

A liquid network's backward pass carries a gradient back through every step, and the CfC's gates shrink
it at each one: after some 50 to 100 steps it falls below float32's smallest normal number (1.2e-38) into
the subnormal range, which many x86 CPUs compute tens of times more slowly. P5 measured forward and
backward of MR-MoE (4 experts of 32 units, 100 steps) at 334 ms with subnormals and 49 ms flushed to zero
on one such CPU; the forward pass, whose states stay normal, took 20 ms either way. Flushing changes a
result only where a number below 1.2e-38 would have mattered, which is below float32 rounding of anything
a model outputs (``tests/test_numerics.py`` checks outputs and gradients on real data).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def flushed_subnormals(enabled: bool = True) -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU inside the block (``enabled``), and keep them after it."""
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
