"""Collecting a model's interpretable outputs (gate weights, feature and temporal attention) over a dataset.

Models that return a dict (see :mod:`tsmoe.models.output`) expose ``gate (B, T, K)``,
``feature_attention (B, T, F)`` and ``temporal_attention (B, T)``; this module runs a model over a
dataset and keeps them per sequence, cut to each sequence's true length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

EXTRAS = ("gate", "feature_attention", "temporal_attention")


@dataclass
class SequenceExtras:
    """Per-sequence arrays: ``times[i] (T_i,)`` hours and each extra ``[i] (T_i, ...)``."""

    times: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    extras: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def feature_importance(self) -> np.ndarray:
        """Each variable's attention relative to uniform, averaged where it was observed, ``(F,)``.

        At a step with ``n`` observed variables the weights sum to 1, so ``alpha * n`` is 1 for a variable
        weighted like the average one (and is the factor the model multiplies the value by). Averaging
        ``alpha`` itself would favour variables that are usually measured alone (a lab value drawn on its
        own gets a large share of a small sum); averaging only where observed keeps rare variables fair.
        """
        weights = np.concatenate(self.extras["feature_attention"])  # (S, F)
        mask = np.concatenate(self.masks)
        relative = weights * mask.sum(1, keepdims=True)
        return (relative * mask).sum(0) / np.maximum(mask.sum(0), 1)


@torch.no_grad()
def collect_extras(model: torch.nn.Module, dataset: Dataset, collate, batch_size: int = 128) -> SequenceExtras:
    """Run ``model`` over ``dataset`` and keep every interpretable output it returns."""
    model.eval()
    collected = SequenceExtras()
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        result = model(batch)
        if not isinstance(result, dict):
            return collected
        lengths = batch["lengths"].tolist()
        for i, n in enumerate(lengths):
            collected.times.append(batch["times"][i, :n].cpu().numpy())
            collected.masks.append(batch["mask"][i, :n].cpu().numpy())
            for name in EXTRAS:
                if name in result:
                    collected.extras.setdefault(name, []).append(result[name][i, :n].cpu().numpy())
    return collected
