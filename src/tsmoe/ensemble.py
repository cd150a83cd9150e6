"""A deep ensemble: several fitted runs on one data set (seeds of one recipe, or different models) used
and scored as one model.

Classifiers average their class probabilities, ``p(x) = (1/M) sum_m p_m(x)`` (deep ensembles,
Lakshminarayanan et al. 2017); regressors and forecasters average their predictions, ``y(x) = (1/M)
sum_m y_m(x)``, on the scale they are scored on. Each member prepares the data with its own fitted
statistics, so members with different scalings mix correctly.

>>> ensemble = Ensemble.load(["runs/mrmoe-s0", "runs/mrmoe-s1", "runs/mrmoe-s2"])
>>> ensemble.evaluate()         # {'ensemble': {'auroc': ...}, 'members': [{'auroc': ...}, ...]}
>>> ensemble.predict_proba()    # (N, 2), the test split's items in order
>>> ensemble.predict_table("new_obs.csv", per_step=True)  # the mean risk after every step of every entity
>>> ensemble.stream().update("pump-7", 0.5, {"vibration": 2.1})   # ... and as observations arrive
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from tsmoe.data.prepared import SplitChoice
from tsmoe.data.splits import same_items
from tsmoe.ensemble_stream import EnsembleStream
from tsmoe.errors import ConfigError, DataError
from tsmoe.estimator import Estimator
from tsmoe.predict import predict_table
from tsmoe.tasks import ClassificationTask, Task, get_task

Part = Literal["test", "validation"]


class Ensemble:
    """``members``: fitted estimators of one task on one data set; ``names`` label them in errors and
    tables (default: ``member 0``, ``member 1``, ... ; :meth:`load` uses the run folders)."""

    def __init__(self, members: Sequence[Estimator], names: Sequence[str] | None = None) -> None:
        self.members = list(members)
        self.names = list(names) if names is not None else [f"member {i}" for i in range(len(self.members))]
        if len(self.names) != len(self.members):
            raise ConfigError(f"{len(self.names)} names for {len(self.members)} ensemble members")
        self._check_members()

    @classmethod
    def load(cls, run_dirs: Sequence[str | Path]) -> Ensemble:
        """The ensemble of the runs saved in ``run_dirs`` (see :meth:`Estimator.load`); a folder named twice
        is refused, since it would silently count that run twice in the mean."""
        seen: dict[Path, str] = {}
        for folder in run_dirs:
            resolved = Path(folder).resolve()
            if resolved in seen:
                raise ConfigError(
                    f"ensemble: the run folder {folder} is given twice (also as {seen[resolved]}); "
                    "name each run once, or the mean would weigh it double"
                )
            seen[resolved] = str(folder)
        return cls([Estimator.load(folder) for folder in run_dirs], names=[str(folder) for folder in run_dirs])

    def _check_members(self) -> None:
        """Refuse, before any tensor work, members that cannot score the same items the same way."""
        if len(self.members) < 2:
            raise ConfigError(f"an ensemble needs at least two fitted runs, got {len(self.members)}")
        for i, member in enumerate(self.members):
            for j in range(i):
                if self.members[j] is member:
                    raise ConfigError(f"ensemble: {self.names[j]} and {self.names[i]} are the same estimator")
        for name, member in zip(self.names, self.members, strict=True):
            if not hasattr(member, "model_"):
                raise ConfigError(f"ensemble {name} is not fitted: call fit() or Estimator.load(run_dir) first")
        first, first_name = self.members[0], self.names[0]
        for name, member in zip(self.names[1:], self.members[1:], strict=True):
            if member.config.data["name"] != first.config.data["name"]:
                raise ConfigError(
                    f"ensemble members use different data sets: {first_name} '{first.config.data['name']}', "
                    f"{name} '{member.config.data['name']}'"
                )
            if member.meta_["task"] != first.meta_["task"]:
                raise ConfigError(
                    f"ensemble members do different tasks: {first_name} {first.meta_['task']}, "
                    f"{name} {member.meta_['task']}"
                )
            for key in ("n_classes", "horizon"):
                if member.meta_["dims"].get(key) != first.meta_["dims"].get(key):
                    raise ConfigError(
                        f"ensemble members differ in {key}: {first_name} {first.meta_['dims'].get(key)}, "
                        f"{name} {member.meta_['dims'].get(key)}"
                    )

    @property
    def task(self) -> Task:
        return get_task(self.members[0].meta_["task"])

    def _check_same_split(self) -> None:
        """On the data the members were trained on, their default split must be one split: members trained
        with different seeds on a data set without a committed split were tested on different items."""
        first = self.members[0].split_
        for name, member in zip(self.names[1:], self.members[1:], strict=True):
            if not same_items(member.split_, first):
                raise DataError(
                    f"ensemble members were split differently: {self.names[0]} and {name} have different "
                    "train/validation/test items (a seeded split, not a committed one?); score them on other "
                    "data with split 'all', or train them on one split (e.g. data.split_file)"
                )

    def member_outputs(
        self,
        data: Any = None,
        split: SplitChoice = "default",
        data_overrides: dict[str, Any] | None = None,
        part: Part = "test",
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each member's outputs on the metrics' scale (see :meth:`Estimator.scored_outputs`) over the
        same items, and their target; :meth:`scores` turns them into metrics."""
        if part not in ("test", "validation"):
            raise ConfigError(f"part must be 'test' or 'validation', got {part!r}")
        if split == "all" and part == "validation":
            raise ConfigError("with split 'all' every item is scored as test; there is no validation part")
        for name, member in zip(self.names, self.members, strict=True):
            member.check_part_unseen(part, f"ensemble member '{name}'")
        if data is None and not data_overrides and split == "default":
            self._check_same_split()
        outputs, target = [], None
        for name, member in zip(self.names, self.members, strict=True):
            prepared = member.prepare_data(data, split=split, data_overrides=data_overrides)
            dataset = prepared.test if part == "test" else prepared.val
            output, member_target = member.scored_outputs(prepared, dataset)
            if target is None:
                target = member_target
            elif member_target.shape != target.shape or not torch.equal(member_target, target):
                raise DataError(
                    f"ensemble members see different {part} targets: {self.names[0]} and {name} "
                    f"(shapes {tuple(target.shape)} and {tuple(member_target.shape)}); their data settings "
                    f"differ: {self.members[0].config.data} against {member.config.data}"
                )
            outputs.append(output.float())
        return outputs, target

    def combine(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Mean class probabilities ``(N,)`` (binary) or ``(N, K)``, or mean predictions, over members."""
        task = self.task
        if isinstance(task, ClassificationTask):
            return torch.stack([task.probabilities(output) for output in outputs]).mean(0)
        return torch.stack(outputs).mean(0)

    def scores(self, outputs: list[torch.Tensor], target: torch.Tensor) -> dict[str, Any]:
        """``{"ensemble": metrics of the combined outputs, "members": [metrics of each output]}``; any
        subset of :meth:`member_outputs`' list may be passed (the ensemble of those members)."""
        task, combined = self.task, self.combine(outputs)
        original = self.members[0].original_scale()
        if isinstance(task, ClassificationTask):
            ensemble = task.score_probabilities(combined, target)
        else:
            ensemble = task.metrics(combined, target, original)
        return {"ensemble": ensemble, "members": [task.metrics(output, target, original) for output in outputs]}

    def evaluate(
        self,
        data: Any = None,
        split: SplitChoice = "default",
        data_overrides: dict[str, Any] | None = None,
        part: Part = "test",
    ) -> dict[str, Any]:
        """``{"ensemble": metrics, "members": [metrics, ...]}`` on the ``test`` (or ``validation``) part of
        ``data`` (default: the data set the members were trained on; arguments as :meth:`Estimator.evaluate`)."""
        return self.scores(*self.member_outputs(data, split, data_overrides, part))

    def predict_proba(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> np.ndarray:
        """The members' mean class probabilities ``(N, n_classes)`` (classifiers only)."""
        if not self.task.is_classifier:
            raise ConfigError(
                f"predict_proba is for classifiers; this ensemble's task is {self.task.name}: use predict"
            )
        return np.mean([member.predict_proba(data, split, data_overrides) for member in self.members], axis=0)

    def predict(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Class labels of the mean probabilities ``(N,)``, or the mean of the members' values ``(N,)`` or
        forecasts ``(N, horizon, n_targets)`` on the original scale."""
        task = self.task
        if isinstance(task, ClassificationTask):  # labels of the members' mean (N, K) table
            return task.table_labels(torch.from_numpy(self.predict_proba(data, split, data_overrides))).numpy()
        return np.mean([member.predict(data, split, data_overrides) for member in self.members], axis=0)

    def predict_table(
        self,
        observations: str | Path | pd.DataFrame,
        per_step: bool = False,
        every: float | None = None,
        align: str = "start",
        data_overrides: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """What ``tsmoe predict RUN RUN ... INPUT`` writes: :meth:`Estimator.predict_table` of every member,
        averaged row by row (classes from the mean probabilities); after every step (``per_step``, ``every``)
        the members must read the same steps and times."""
        return predict_table(self.members, observations, per_step, every, align, data_overrides)

    def stream(self, interval: bool = False) -> EnsembleStream:
        """The members' streams as one (:class:`tsmoe.ensemble_stream.EnsembleStream`): each update answered
        by the members' mean, as :meth:`predict_table` gives it after every step; with ``interval`` (runs
        calibrated with Venn-Abers) each as ``Risk(probability, low, high)``, the ends averaged too."""
        return EnsembleStream([member.stream(interval) for member in self.members], self.names)
