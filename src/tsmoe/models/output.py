"""What a model's ``forward`` may return: a tensor, or a dict with the tensor under ``"output"``.

The dict form carries extras: ``"aux_loss"`` (added to the task loss, e.g. a load-balancing loss) and
tensors for analysis (``"gate"``, ``"feature_attention"``, ``"temporal_attention"``).
"""

from __future__ import annotations

import torch


def unpack(result: torch.Tensor | dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(output, aux_loss or None)`` of a model's result."""
    if isinstance(result, torch.Tensor):
        return result, None
    return result["output"], result.get("aux_loss")
