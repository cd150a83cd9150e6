"""Output heads shared by the sequence classifiers."""

from __future__ import annotations

import torch
from torch import nn

# what a classifier of records does: one answer per record, or one at every step (early prediction)
RECORD_TASKS = frozenset(
    {"binary", "multiclass", "regression", "binary_per_step", "multiclass_per_step", "regression_per_step"}
)


def n_outputs(task: str, dims: dict[str, int]) -> int:
    """One logit for binary tasks, one per class for multiclass, one value for regression (per step too)."""
    return int(dims["n_classes"]) if task.removesuffix("_per_step") == "multiclass" else 1


def is_per_step(task: str) -> bool:
    """Whether the task wants an output at every step (early prediction) rather than one per item."""
    return task.endswith("_per_step")


def static_per_step(batch: dict[str, torch.Tensor], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The static descriptors and their mask repeated at every step: ``(B, T, P)`` each."""
    return (batch["static"][:, None].expand(-1, steps, -1), batch["static_mask"][:, None].expand(-1, steps, -1))


class StaticHead(nn.Module):
    """MLP from a sequence summary and static descriptors to logits.

    ``summary (B, D)``, ``static (B, P)``, ``static_mask (B, P)`` -> ``(B,)`` (binary) or ``(B, K)``; with a
    step axis (``(B, T, D)``, ``(B, T, P)``) -> ``(B, T)`` or ``(B, T, K)``.
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
