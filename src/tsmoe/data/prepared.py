"""From a loaded source to train/validation/test torch Datasets, with preprocessing fit on training data.

Two task families share one container, :class:`PreparedData`:
- classification or regression of irregular series (:func:`prepare_irregular`), split by record IDs;
- forecasting over regular series (:func:`prepare_forecasting`), split in time order.

``state`` holds every fitted statistic (normalisers, scalers); passing it back (``fitted=state``) applies
a trained model's preprocessing to new data, as ``tsmoe evaluate`` and ``predict`` do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from torch.utils.data import Dataset

from tsmoe.data.fixed_windows import TextWindows, TextWindowSplits
from tsmoe.data.irregular import (
    IrregularDataset,
    IrregularNormalizer,
    IrregularSet,
    Scaling,
    collate_irregular,
    is_regression,
)
from tsmoe.data.notes import note
from tsmoe.data.sampling import usual_elapsed
from tsmoe.data.series import SeriesSet
from tsmoe.data.splits import IdSplit, borders_from_lengths, chronological_borders, stratified_split
from tsmoe.data.text_windows import (
    TREND_CLASSES,
    AlignedTextWindows,
    TextWindowDataset,
    collate_text_windows,
    encode_texts,
    trend_labels,
)
from tsmoe.data.windows import StandardScaler, WindowDataset, check_window_fits
from tsmoe.errors import DataError

Task = Literal[
    "binary", "multiclass", "regression", "forecast", "binary_per_step", "multiclass_per_step", "regression_per_step"
]
InputKind = Literal["irregular", "window"]
SplitChoice = Literal["default", "all"]
log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Everything the training path needs from the data side.

    ``dims`` holds the sizes models are built from: ``n_features``, ``n_static`` (and ``n_classes`` for
    classification) or ``lookback``, ``horizon``, ``n_channels`` (forecasting).
    """

    task: Task
    input_kind: InputKind
    dims: dict[str, int]
    train: Dataset
    val: Dataset
    test: Dataset
    split: dict
    state: dict[str, np.ndarray]
    collate: Callable | None = None
    target_channels: list[int] = field(default_factory=list)
    scaler: StandardScaler | None = None  # forecasting: maps model outputs back to the original scale
    channel_names: tuple[str, ...] = ()
    static_names: tuple[str, ...] = ()  # irregular data: the static descriptors, in the model's order
    class_names: tuple[str, ...] = ()  # classes given by name, in class order (empty: unnamed)
    notes: dict = field(default_factory=dict)  # what reading the source did (e.g. rows skipped, counted)


FEW_OF_A_CLASS = 10  # fewer validation items of a class: its AUROC or accuracy moves in steps of a tenth or more


def note_a_small_validation(prepared: PreparedData) -> None:
    """Say so where a classifier's validation part holds fewer than :data:`FEW_OF_A_CLASS` records of a
    class: the metric that picks the epoch (and a tuning study's trials) then follows the noise of a few items."""
    data = getattr(prepared.val, "data", None)
    if not prepared.task.startswith(("binary", "multiclass")) or not isinstance(data, IrregularSet):
        return
    counts = np.bincount(data.labels, minlength=prepared.dims["n_classes"])
    if counts.min() >= FEW_OF_A_CLASS:
        return
    names = prepared.class_names or tuple(str(k) for k in range(len(counts)))
    held = ", ".join(f"{count} of class {name!r}" for name, count in zip(names, counts.tolist(), strict=True))
    note(
        log,
        "the validation part holds %d records (%s): the metric that picks the epoch moves in large steps, so the "
        "choice follows the noise of a few records; a larger share for validation (data.split_fractions) steadies it",
        len(data),
        held,
    )


def prepare_irregular(
    data: IrregularSet,
    split: IdSplit | None,
    seed: int,
    fitted: dict[str, np.ndarray] | None = None,
    which: SplitChoice = "default",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    scaling: Scaling = "zscore",
) -> PreparedData:
    """Split records (by ``split``, or stratified with ``seed``), scale with training statistics
    (``scaling``: z-scores or quantile maps, :class:`IrregularNormalizer`; ``fitted`` statistics carry
    their own).

    Integer labels make a classification task (binary or multiclass); float labels a regression task,
    whose records without a target (NaN) are left out of every part, with a logged count. Data with a
    label per step (``step_labels``) make the task's per-step form (``binary_per_step``, ...).
    ``which="all"`` puts every record in the test part (evaluating a trained model on other data);
    it needs ``fitted`` statistics.
    """
    regression = is_regression(data.labels)
    if which == "all":
        if fitted is None:
            raise DataError("split 'all' evaluates a trained model: it needs the model's fitted statistics")
        empty = np.zeros(0, dtype=np.int64)
        parts = [empty, empty, np.arange(len(data))]
        split_record = {"kind": "all", "test": data.record_ids.tolist()}
    else:
        if split is None:  # stratify classes, or quartiles of a regression target
            strata = data.labels
            if regression:
                strata = np.digitize(data.labels, np.nanquantile(data.labels, [0.25, 0.5, 0.75]))
                strata[np.isnan(data.labels)] = -1
            split = stratified_split(data.record_ids, strata, fractions, seed)
        parts = list(split.indices_in(data.record_ids, "the data"))
        split_record = {"kind": "ids", **split.to_json()}
    if regression:
        missing = [int(np.isnan(data.labels[p]).sum()) for p in parts]
        if sum(missing):
            note(
                log,
                "%d record(s) have no target (train %d, validation %d, test %d); they are left out",
                sum(missing),
                *missing,
            )
            parts = [p[~np.isnan(data.labels[p])] for p in parts]
    train_idx, val_idx, test_idx = parts
    normalizer = (
        IrregularNormalizer.from_state(fitted)
        if fitted is not None
        else IrregularNormalizer.fit(data.subset(train_idx), scaling)
    )
    if regression:
        task, dims_extra = "regression", {}
    else:
        n_classes = len(data.class_names) or (int(max(2, data.labels.max() + 1)) if len(data) else 2)
        task, dims_extra = ("binary" if n_classes == 2 else "multiclass"), {"n_classes": n_classes}
    if data.step_labels is not None:  # early prediction: an output, a target and a loss at every step
        task = f"{task}_per_step"
    return PreparedData(
        task=task,
        input_kind="irregular",
        dims={"n_features": len(data.variables), "n_static": len(data.static_names), **dims_extra},
        train=IrregularDataset(data.subset(train_idx), normalizer),
        val=IrregularDataset(data.subset(val_idx), normalizer),
        test=IrregularDataset(data.subset(test_idx), normalizer),
        split=split_record,
        state=normalizer.state(),
        collate=collate_irregular,
        channel_names=data.variables,
        static_names=data.static_names,
        class_names=data.class_names,
        notes=data.notes,
    )


def prepare_forecasting(
    data: SeriesSet,
    lookback: int,
    horizon: int,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    lengths: tuple[int, int, int] | None = None,
    scale: bool = True,
    fitted: dict[str, np.ndarray] | None = None,
    which: SplitChoice = "default",
    text_encoder: str = "none",
    text_k: int = 4,
    encoder_options: dict | None = None,
    text_newest_first: bool = False,
    text_each_fact: bool = False,
) -> PreparedData:
    """Chronological split of every series (by ``fractions`` or fixed row ``lengths``), z-scored with
    training rows only; windows of ``lookback`` -> ``horizon``. ``which="all"`` makes every window of
    every series a test window (with ``fitted`` statistics). With a ``text_encoder``, each window also
    carries the ``text_k`` most recent texts of its series dated before its forecast starts (P3), oldest
    first (``text_newest_first``: newest first), joined one per line or, with ``text_each_fact``, each
    encoded on its own (:class:`~tsmoe.data.text_windows.WindowFacts`)."""
    check_window_fits(data, lookback, horizon)
    if text_encoder != "none" and not data.texts:
        raise DataError(
            f"{data.source}: data.text_encoder is '{text_encoder}' but the data has no text; "
            "set data.text_encoder: none, or give a text column"
        )
    if which == "all":
        if fitted is None:
            raise DataError("split 'all' evaluates a trained model: it needs the model's fitted statistics")
        ranges = [[(0, 0), (0, 0), (0, len(s.values))] for s in data.series]
    else:
        ranges = []
        for series in data.series:
            n = len(series.values)
            borders = (
                borders_from_lengths(n, lengths, lookback) if lengths else chronological_borders(n, fractions, lookback)
            )
            for part, (start, end) in zip(("validation", "test"), borders[1:], strict=True):
                if end - start < lookback + horizon:
                    raise DataError(
                        f"{data.source}, series '{series.name}': the {part} part ({end - start} rows with the "
                        f"lookback) is shorter than lookback + horizon = {lookback + horizon}"
                    )
            ranges.append(borders)
    if fitted is not None:
        scaler = StandardScaler.from_state(fitted)
    elif scale:
        scaler = StandardScaler.fit([s.values[r[0][0] : r[0][1]] for s, r in zip(data.series, ranges, strict=True)])
    else:
        scaler = StandardScaler.identity(len(data.columns))
    parts = [WindowDataset(data, [r[i] for r in ranges], lookback, horizon, scaler) for i in range(3)]
    text_dim = 0
    if text_encoder != "none":
        parts = [
            AlignedTextWindows(
                part,
                data,
                [r[i] for r in ranges],
                text_k,
                text_encoder,
                newest_first=text_newest_first,
                each_fact=text_each_fact,
                **(encoder_options or {}),
            )
            for i, part in enumerate(parts)
        ]
        text_dim = parts[0].encoded.dim
    split_record = {
        "kind": "chronological",
        "rows": {s.name: [list(map(int, b)) for b in r] for s, r in zip(data.series, ranges, strict=True)},
        "lookback": lookback,
        "horizon": horizon,
    }
    return PreparedData(
        task="forecast",
        input_kind="window",
        dims={
            "lookback": lookback,
            "horizon": horizon,
            "n_channels": len(data.columns),
            "text_dim": text_dim,
            "step": usual_elapsed(data),  # the sampling interval (hours for dated rows), for the liquid models
        },
        train=parts[0],
        val=parts[1],
        test=parts[2],
        split=split_record,
        state=scaler.state(),
        collate=collate_text_windows if text_encoder != "none" else None,
        target_channels=data.target_indices,
        scaler=scaler,
        channel_names=data.columns,
    )


def prepare_text_windows(
    data: TextWindowSplits,
    encoder: str,
    encoder_options: dict | None = None,
    which: SplitChoice = "default",
    trend_threshold: float | None = None,
) -> PreparedData:
    """Fixed windows with text (protocol P2). No global scaling: each model normalises a window by its own
    input, and metrics are on the original scale. ``encoder="none"`` gives windows without text.
    ``which="all"`` scores every window of the three parts. With a ``trend_threshold`` the task is the
    trend class of each window (down / flat / up, :func:`trend_labels`), scored by accuracy."""
    parts = [data.train, data.val, data.test]
    if which == "all":
        every = TextWindows(
            np.concatenate([p.inputs for p in parts]),
            np.concatenate([p.targets for p in parts]),
            tuple(t for p in parts for t in p.texts),
        )
        empty = every.take(0, 0)
        parts = [empty, empty, every]
    sets, text_dim = [], 0
    for part in parts:
        labels = None if trend_threshold is None else trend_labels(part.inputs, part.targets, trend_threshold)
        table, index = None, None
        if encoder != "none":
            table, index = encode_texts(list(part.texts), encoder, **(encoder_options or {}))
            text_dim = len(table[0].pooled) if table else text_dim
        sets.append(TextWindowDataset(part.inputs, part.targets, table, index, labels))
    lookback, horizon = data.train.inputs.shape[1], data.train.targets.shape[1]
    scaler = StandardScaler.identity(1)
    trend = {"n_classes": len(TREND_CLASSES)} if trend_threshold is not None else {}
    return PreparedData(
        task="multiclass" if trend_threshold is not None else "forecast",
        input_kind="window",
        dims={"lookback": lookback, "horizon": horizon, "n_channels": 1, "text_dim": text_dim, **trend},
        train=sets[0],
        val=sets[1],
        test=sets[2],
        split={"kind": "files", "source": data.source, "sizes": [len(p) for p in parts]},
        state=scaler.state(),
        collate=collate_text_windows,
        target_channels=[0],
        scaler=scaler,
        channel_names=("value",),
    )
