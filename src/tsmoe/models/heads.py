"""Output heads shared by the sequence classifiers."""

from __future__ import annotations

import torch
from torch import nn


def n_outputs(task: str, dims: dict[str, int]) -> int:
    """One logit for binary tasks, one per class for multiclass, one value for regression."""
    return int(dims["n_classes"]) if task == "multiclass" else 1


class StaticHead(nn.Module):
    """MLP from a sequence summary and static descriptors to logits.

    ``summary (B, D)``, ``static (B, P)``, ``static_mask (B, P)`` -> ``(B,)`` (binary) or ``(B, K)``.
    """

    def __init__(self, d_summary: int, n_static: int, hidden: int, outputs: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_summary + 2 * n_static, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, outputs),
        )

    def forward(self, summary: torch.Tensor, static: torch.Tensor, static_mask: torch.Tensor) -> torch.Tensor:
        logits = self.net(torch.cat([summary, static, static_mask], dim=-1))
        return logits.squeeze(-1) if logits.shape[-1] == 1 else logits
