"""Seeding: one call makes a CPU run repeatable bit for bit."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (and dataloader workers); prefer deterministic kernels."""
    pl.seed_everything(seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(True, warn_only=True)
