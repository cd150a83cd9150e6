"""Distillation: a classifier trained towards the mean probability of fitted runs (its teachers).

With teachers' mean class probability ``p_T`` of a training item and its label ``y``, the training target
becomes the soft target ``t = (1 - w) y + w p_T`` (``y`` one-hot for multiclass; ``w`` is
``training.distill_weight``). Cross-entropy is linear in its target, so the loss is
``(1 - w) CE(y) + w CE(p_T)``: knowledge distillation at temperature 1 (Hinton et al. 2015), from one run
("born-again networks") or from a seed ensemble. Validation and test keep the hard labels. With teacher
weights ``a_j`` (``training.distill_teacher_weights``, default equal) ``p_T = sum_j a_j p_j / sum_j a_j``.

A teacher is a tsmoe run folder, or a CSV file of probabilities for the training items made by any model
(:mod:`tsmoe.training.teacher_file`). A run folder must have been trained on this run's split: a teacher
whose training items differ from this run's has seen this run's validation or test items, and would leak
them into model selection. A file may name the training items only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from tsmoe.data.prepared import PreparedData
from tsmoe.data.splits import same_items
from tsmoe.errors import ConfigError, DataError
from tsmoe.tasks import classification_task
from tsmoe.training.teacher_file import is_teacher_file, read_teacher_file


def teacher_probabilities(
    sources: Sequence[str | Path],
    prepared: PreparedData,
    data_name: str,
    weights: Sequence[float] | None = None,
    *,
    load_run: Callable[[str | Path], Any],
) -> torch.Tensor:
    """The teachers' weighted mean class probabilities over ``prepared.train``, item by item: ``(N,)``
    P(positive) for binary, ``(N, K)`` for multiclass. ``sources`` are run folders (each prepares the
    data with its own fitted statistics) or probability files; ``weights`` default to equal.
    ``load_run(folder)`` loads a run folder as a fitted estimator (``Estimator.load``: the estimator sits
    above the training package, so it hands its loader down)."""
    task = classification_task(prepared.task, "training.distill_from")
    weights = list(weights) if weights else [1.0] * len(sources)
    if len(weights) != len(sources) or min(weights) <= 0:
        raise ConfigError(
            f"training.distill_teacher_weights needs one positive weight per teacher ({len(sources)}), got {weights}"
        )
    files = [str(source) for source in sources if is_teacher_file(source)]
    train_ids = record_ids(prepared.train) if files else None
    n_classes = prepared.dims.get("n_classes", 2)
    from_files = {name: read_teacher_file(name, train_ids, n_classes) for name in files}  # checked first
    teachers = [(str(folder), load_run(folder)) for folder in sources if not is_teacher_file(folder)]
    for name, teacher in teachers:  # every check before any teacher runs
        if teacher.config.data["name"] != data_name or teacher.meta_["task"] != prepared.task:
            raise ConfigError(
                f"teacher {name} is a {teacher.meta_['task']} model of '{teacher.config.data['name']}', "
                f"this run is a {prepared.task} model of '{data_name}'"
            )
        if not same_items(teacher.split_, prepared.split):
            raise DataError(
                f"teacher {name} was trained on another split than this run: it has seen items this run "
                "keeps for validation or test (train the teachers with this run's data.split_file)"
            )
    mine = item_labels(prepared.train)
    each = dict(from_files)
    for name, teacher in teachers:
        data = teacher.prepare_data()
        output, target = teacher.scored_outputs(data, data.train)
        if len(target) != len(mine) or not torch.equal(target.long(), mine):
            raise DataError(f"teacher {name} sees other training items or labels than this run (data settings differ?)")
        each[name] = task.probabilities(output.float())
    stacked = torch.stack([each[str(source)] for source in sources])  # (J, N) or (J, N, K), in the config's order
    share = torch.tensor(weights, dtype=torch.float32) / sum(weights)
    return torch.einsum("j,j...->...", share, stacked)


def record_ids(dataset: Dataset) -> np.ndarray:
    """The ids of a data set's items, which a teacher file names them by: ``(N,)``."""
    data = getattr(dataset, "data", None)
    if not hasattr(data, "record_ids"):
        raise ConfigError(
            "a teacher file names training items by record id, and this run's items (windows) have none: "
            "give run folders in training.distill_from"
        )
    return np.asarray(data.record_ids)


def item_labels(dataset: Dataset) -> torch.Tensor:
    """Every item's class label ``(N,)``, read from its ``target`` as the training loader reads it (a
    data set's own arrays may hold something else there: a trend classifier's windows keep their
    forecast targets)."""
    return torch.stack([torch.as_tensor(dataset[index]["target"]).long() for index in range(len(dataset))])  # type: ignore[arg-type]


class SoftTargets(Dataset):
    """``dataset`` with each item's soft target ``t = (1 - weight) y + weight p_T`` under ``soft_target``
    (a scalar for binary, ``(K,)`` for multiclass); :func:`with_soft_targets` collates it."""

    def __init__(self, dataset: Dataset, teacher: torch.Tensor, weight: float) -> None:
        if not 0.0 < weight <= 1.0:
            raise ConfigError(f"training.distill_weight must lie in (0, 1], got {weight!r}")
        self.dataset = dataset
        self.teacher = teacher.float()
        self.weight = weight

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = dict(self.dataset[index])
        label = item["target"].long()
        hard = label.float() if self.teacher.ndim == 1 else torch.nn.functional.one_hot(label, self.teacher.shape[1])
        item["soft_target"] = (1 - self.weight) * hard.float() + self.weight * self.teacher[index]
        return item


def with_soft_targets(collate: Callable[[list[dict]], dict[str, Any]]) -> Callable[[list[dict]], dict[str, Any]]:
    """``collate`` that also stacks the items' ``soft_target`` into ``(B,)`` or ``(B, K)``."""

    def collate_soft(items: list[dict]) -> dict[str, Any]:
        return {**collate(items), "soft_target": torch.stack([item["soft_target"] for item in items])}

    return collate_soft
