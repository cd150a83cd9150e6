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
>>> forecasters = Ensemble.load(["runs/dl-s0", "runs/dl-s1"])
>>> forecasters.forecast(frame, intervals=[0.9])   # the mean forecast, conformal intervals from the mean's errors
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
from tsmoe.forecast import key_columns, rolling_interval_widths
from tsmoe.intervals import (
    ROLLING_WITHOUT_VALIDATION,
    check_calibration,
    check_levels,
    conformal_quantiles,
    interval_metrics,
    rolling_widths,
    rolling_windows,
    trained_in_memory,
    with_interval_columns,
)
from tsmoe.predict import mean_prediction, predict_table
from tsmoe.tasks import ClassificationTask, Task, get_task

Part = Literal["test", "validation"]


def _part_of(prepared: Any, part: str) -> Any:
    return prepared.test if part == "test" else prepared.val


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
            if member.meta_.get("class_names") != first.meta_.get("class_names"):
                raise ConfigError(
                    f"ensemble members name their classes differently: {first_name} "
                    f"{first.meta_.get('class_names')}, {name} {member.meta_.get('class_names')} (train them with "
                    "one data.classes)"
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
                lookbacks = [m.meta_["dims"].get("lookback") for m in (self.members[0], member)]
                why = (
                    f"windows of other lookbacks ({lookbacks[0]} and {lookbacks[1]} steps) split at other places"
                    if lookbacks[0] != lookbacks[1]
                    else "a seeded split, not a committed one?"
                )
                raise DataError(
                    f"ensemble members were split differently: {self.names[0]} and {name} have different "
                    f"train/validation/test items ({why}); score them on other data with split 'all', or train "
                    "them on one split (e.g. data.split_file)"
                )

    def member_outputs(
        self,
        data: Any = None,
        split: SplitChoice = "default",
        data_overrides: dict[str, Any] | None = None,
        part: Part = "test",
        original: bool | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each member's outputs on the metrics' scale (see :meth:`Estimator.scored_outputs`; ``original``
        chooses the scale instead) over the same items, and their target; :meth:`scores` turns them into
        metrics."""
        self._check_part(split, part)
        parts, _ = self._parts_outputs(data, split, data_overrides, (part,), original)
        return parts[part]

    def _check_part(self, split: SplitChoice, part: str) -> None:
        if part not in ("test", "validation"):
            raise ConfigError(f"part must be 'test' or 'validation', got {part!r}")
        if split == "all" and part == "validation":
            raise ConfigError("with split 'all' every item is scored as test; there is no validation part")
        for name, member in zip(self.names, self.members, strict=True):
            member.check_part_unseen(part, f"ensemble member '{name}'")

    def _parts_outputs(
        self,
        data: Any,
        split: SplitChoice,
        data_overrides: dict[str, Any] | None,
        parts: tuple[str, ...],
        original: bool | None = None,
    ) -> tuple[dict[str, tuple[list[torch.Tensor], torch.Tensor]], Any]:
        """``{part: (each member's outputs, the target)}`` for ``parts`` of the data each member prepares alike,
        and the first member's prepared data (where its windows lie)."""
        if data is None and not data_overrides and split == "default":
            self._check_same_split()
        found: dict[str, tuple[list[torch.Tensor], torch.Tensor | None]] = {part: ([], None) for part in parts}
        first = None
        for name, member in zip(self.names, self.members, strict=True):
            prepared = member.prepare_data(data, split=split, data_overrides=data_overrides)
            first = prepared if first is None else first
            for part in parts:
                outputs, target = found[part]
                output, member_target = member.scored_outputs(prepared, _part_of(prepared, part), original)
                if target is None:
                    target = member_target
                elif member_target.shape != target.shape or not torch.equal(member_target, target):
                    raise DataError(
                        f"ensemble members see different {part} targets: {self.names[0]} and {name} "
                        f"(shapes {tuple(target.shape)} and {tuple(member_target.shape)}); their data settings "
                        f"differ: {self.members[0].config.data} against {member.config.data}"
                    )
                found[part] = ([*outputs, output.float()], target)
        return found, first  # type: ignore[return-value]

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
        intervals: Sequence[float] | None = None,
        calibration: str = "validation",
        calibration_windows: int | None = None,
    ) -> dict[str, Any]:
        """``{"ensemble": metrics, "members": [metrics, ...]}`` on the ``test`` (or ``validation``) part of
        ``data`` (default: the data set the members were trained on; arguments as :meth:`Estimator.evaluate`).

        ``intervals`` (forecasters; levels such as ``[0.9]``) adds the coverage and width of conformal
        intervals around the ensemble's mean forecast, and CRPS and WQL, to the ensemble's metrics, as
        ``tsmoe evaluate --intervals`` does for one run (:mod:`tsmoe.intervals`): half-widths from the mean
        forecast's errors on the members' shared validation split, or with ``calibration="rolling"`` on the
        latest windows before each scored one; the result also says which (``calibration``,
        ``calibration_windows``)."""
        levels = check_levels(intervals) if intervals else []
        check_calibration(levels, calibration, calibration_windows)
        if not levels:
            return self.scores(*self.member_outputs(data, split, data_overrides, part))
        self._check_part(split, part)
        self.check_interval_members(calibration)
        if calibration == "rolling":
            if split == "all":
                raise ConfigError(ROLLING_WITHOUT_VALIDATION)
            parts, prepared = self._parts_outputs(data, split, data_overrides, ("validation", part))
            scored = _part_of(prepared, part)
            windows = rolling_windows(prepared.val, scored, prepared.dims["horizon"], calibration_windows)
            outputs, target = parts[part]
            val_residuals = self._abs_residuals(*parts["validation"])
            widths = rolling_widths(
                prepared.val, scored, val_residuals, self._abs_residuals(outputs, target), levels, windows
            )
        else:
            val_residuals = self.validation_residuals(self.members[0].original_scale())
            widths, windows = conformal_quantiles(val_residuals, levels)[:, None], len(val_residuals)
            outputs, target = self.member_outputs(data, split, data_overrides, part)
        result = self.scores(outputs, target)
        result["ensemble"] |= interval_metrics(self.combine(outputs), target, levels, widths)
        return {**result, "calibration": calibration, "calibration_windows": windows}

    def validation_residuals(self, original: bool = True) -> np.ndarray:
        """The absolute errors ``(n, H, C)`` of the members' mean forecast on their shared validation split (of
        the data they were trained on), on the original scale or (``original=False``) the scaled one: what the
        ensemble's conformal intervals take their widths from."""
        self.check_interval_members("validation")
        return self._abs_residuals(*self.member_outputs(part="validation", original=original))

    def _abs_residuals(self, outputs: list[torch.Tensor], target: torch.Tensor) -> np.ndarray:
        residuals = (self.combine(outputs).double() - target.double()).abs().numpy()
        return residuals.reshape(len(residuals), residuals.shape[1], -1)

    def check_interval_members(self, calibration: str) -> None:
        """Refuse, before any scoring, conformal intervals for an ensemble that is not of forecasters, or whose
        members have no held-out validation split of their own data to read again (``validation``)."""
        if self.task.name != "forecast":
            raise ConfigError(f"conformal intervals are for forecasters; this ensemble's task is {self.task.name}")
        for name, member in zip(self.names, self.members, strict=True):
            if "refit" in member.meta_:
                raise ConfigError(
                    f"ensemble member '{name}' was refit on its validation items (training.refit): the ensemble "
                    "has no held-out validation split to take conformal residuals from"
                )
            if calibration == "validation" and trained_in_memory(member):
                raise ConfigError(
                    f"ensemble member '{name}' was trained on data in memory: an ensemble's intervals come from its "
                    "mean forecast's errors on the members' validation split, which needs that data again; train "
                    "the members on a file, or use --calibration rolling (calibration='rolling'), widths from the "
                    "input's own errors"
                )

    def forecast(
        self,
        frame: pd.DataFrame | None = None,
        data_overrides: dict[str, Any] | None = None,
        intervals: Sequence[float] | None = None,
        calibration: str = "validation",
        calibration_windows: int | None = None,
    ) -> pd.DataFrame:
        """The members' mean forecast of what comes after ``frame`` (or after their own data set), in the
        form :meth:`Estimator.forecast` gives one run's; with ``intervals``, conformal intervals around the
        mean from its errors on the members' validation split, or (``calibration="rolling"``) each series'
        own from the mean's errors on its ``calibration_windows`` latest windows in ``frame``."""
        levels = check_levels(intervals) if intervals else []
        check_calibration(levels, calibration, calibration_windows)
        if levels:
            self.check_interval_members(calibration)
        if calibration == "rolling" and frame is None:
            raise ConfigError(
                "rolling calibration reads a frame's own recent windows: forecast without a frame has none"
            )
        first = self.members[0]
        tables = [member.forecast(frame, data_overrides) for member in self.members]
        where = "the frame" if frame is not None else "the forecasts after the members' data set"
        table = mean_prediction(tables, first.meta_, where, key_columns(first))
        if not levels:
            return table
        if calibration == "rolling":
            by_series = rolling_interval_widths(self.members, frame, "the frame", levels, calibration_windows)
            return with_interval_columns(table, first, levels, by_series)
        widths = conformal_quantiles(self.validation_residuals(original=True), levels)
        return with_interval_columns(table, first, levels, widths=widths)

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
