"""Instance normalisation of forecast windows (RevIN without its affine terms; Kim et al., ICLR 2022)."""

from __future__ import annotations

import torch


def instance_normalize(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise each window by its own mean and std over time (RevIN without affine terms).

    ``x (B, L, C)`` -> ``(x_norm (B, L, C), mean (B, 1, C), std (B, 1, C))``; undo with ``y * std + mean``.
    """
    mean = x.mean(dim=1, keepdim=True)
    std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + eps)
    return (x - mean) / std, mean, std
