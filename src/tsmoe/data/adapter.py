"""Data sets as adapters over three generic forms, each with one preparation path.

A data set tsmoe knows by name is a :class:`DataAdapter`: it owns its parameters (a dataclass: the keys
of a config's ``data`` section), how it loads its source object, and where its shipped files are. It
prepares through the generic form it loads into:

- irregular observations (:class:`~tsmoe.data.irregular.IrregularSet`) -> :class:`IrregularAdapter`,
  split by record, for classification and regression (:func:`~tsmoe.data.prepared.prepare_irregular`);
- regular series (:class:`~tsmoe.data.series.SeriesSet`, with dated text where the data has it) ->
  :class:`SeriesAdapter`, split in time order, for forecasting (:func:`~tsmoe.data.prepared.prepare_forecasting`);
- fixed windows with text, split in advance (:class:`~tsmoe.data.fixed_windows.TextWindowSplits`) ->
  :class:`FixedWindowsAdapter` (:func:`~tsmoe.data.prepared.prepare_text_windows`).

A user's own data enters exactly where shipped data does: ``Estimator.fit(data)`` hands a source object
(or a long-format frame, which :meth:`DataAdapter.from_frame` turns into one) to the same ``prepare``.
A new data source is one adapter in :mod:`tsmoe.data.sources`, listed in :mod:`tsmoe.data.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from tsmoe.data.fixed_windows import TextWindowSplits
from tsmoe.data.irregular import IrregularSet, Scaling
from tsmoe.data.long_format import from_long_dataframe
from tsmoe.data.prepared import (
    PreparedData,
    SplitChoice,
    prepare_forecasting,
    prepare_irregular,
    prepare_text_windows,
)
from tsmoe.data.sampling import warn_of_gaps
from tsmoe.data.series import SeriesSet
from tsmoe.data.splits import IdSplit
from tsmoe.errors import ConfigError, DataError
from tsmoe.paths import shipped_data_dir
from tsmoe.text import get_encoder

Source = IrregularSet | SeriesSet | TextWindowSplits
Fitted = dict[str, np.ndarray]


class DataAdapter:
    """One data set: ``name``, ``params`` (its dataclass), a one-line ``description``, the shipped
    ``folder`` under the data directory (``None``: nothing shipped), and the ``source_type`` it loads."""

    name: ClassVar[str]
    params: ClassVar[type]
    description: ClassVar[str]
    folder: ClassVar[str | None] = None
    source_type: ClassVar[type]
    # keys that belong to another: overriding the key (new data) resets these to their defaults unless they
    # are overridden too (a new table of observations does not take the run's labels or descriptors)
    companions: ClassVar[dict[str, tuple[str, ...]]] = {}

    def load(self, params: Any) -> Source:
        """The source object the ``params`` describe (files read as they come, by the source's rules)."""
        raise NotImplementedError

    def prepare(
        self, params: Any, source: Source, seed: int, fitted: Fitted | None = None, which: SplitChoice = "default"
    ) -> PreparedData:
        """Split ``source``, fit the preprocessing on its training part (or apply ``fitted``), and make
        the torch datasets; ``which="all"`` puts every item in the test part."""
        raise NotImplementedError

    def for_run(self, params: Any, meta: dict) -> Any:
        """The ``params`` a trained run (its ``meta.json``) reads new data with; by default as they are
        (a data set whose columns are matched by name sets the run's own here)."""
        return params

    def check_source(self, source: object) -> None:
        if not isinstance(source, self.source_type):
            raise DataError(
                f"data set '{self.name}' prepares a {self.source_type.__name__}, got a {type(source).__name__}"
            )

    def from_frame(self, frame: pd.DataFrame, params: Any) -> Source:
        """A source object from a pandas frame of the user's (data sets of series only)."""
        raise DataError(
            f"data set '{self.name}' does not read a DataFrame: pass a {self.source_type.__name__}, "
            "or use data set 'csv' for a long-format frame (unique_id, ds, y)"
        )

    def files(self) -> list[Path]:
        """The shipped files of this data set (for ``tsmoe datasets``)."""
        if self.folder is None:
            return []
        base = shipped_data_dir() / self.folder
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]


class IrregularAdapter(DataAdapter):
    """Irregular observations, split by record (a committed split file, or stratified by label and seed)."""

    source_type = IrregularSet

    def split(self, params: Any) -> IdSplit | None:
        """The record split the ``params`` name (``None``: draw one from the seed)."""
        return None

    def prepare(self, params, source, seed, fitted=None, which="default") -> PreparedData:
        self.check_source(source)
        source = early_prediction(source, getattr(params, "until", None), getattr(params, "per_step", False))
        split = self.split(params) if which == "default" else None
        fractions = tuple(getattr(params, "split_fractions", (0.8, 0.1, 0.1)))
        scaling: Scaling = getattr(params, "value_scaling", "zscore")
        return prepare_irregular(source, split, seed, fitted, which, fractions, scaling)  # type: ignore[arg-type]


def early_prediction(data: IrregularSet, until: float | None, per_step: bool) -> IrregularSet:
    """``data`` cut to each record's first ``until`` time units, and with ``per_step`` its outcome the target
    of every step (where the data give no per-step labels of their own)."""
    if until is not None:
        data = data.until(until)
    if per_step and data.step_labels is None:
        data = data.with_outcome_at_every_step()
    return data


@dataclass
class TextParams:
    """``data`` keys that choose the text encoder of a data set with text (:mod:`tsmoe.text`)."""

    text_encoder: Literal["none", "minilm", "hashing", "hf"] = "none"
    hashing_dim: int = 64  # width of the hashing encoder (text_encoder: hashing)
    text_model: str | None = None  # hf: a local folder, or a model id already in the local Hugging Face cache
    text_layer: int = -1  # hf: the hidden layer read (-1: the last; 0: the embeddings)
    text_pooling: Literal["mean", "last"] = "mean"  # hf: the pooled vector (last: a decoder's final token)
    text_dtype: Literal["float32", "bfloat16"] = "float32"  # hf: the model's compute type
    text_device: Literal["cpu", "cuda"] = "cpu"  # hf: where the model runs
    text_max_tokens: int = 512  # hf: longer texts are cut, with a warning

    def __post_init__(self) -> None:
        if self.text_encoder == "hf" and not self.text_model:
            raise ValueError(
                "text_encoder 'hf' needs text_model: a local model folder or a model id in the local Hugging Face cache"
            )
        if self.text_max_tokens < 1:
            raise ValueError(f"text_max_tokens must be at least 1, got {self.text_max_tokens}")


@dataclass
class ForecastParams(TextParams):
    """``data`` keys shared by the data sets of series."""

    lookback: int = 96
    horizon: int = 96
    root: str | None = None  # folder (benchmark sets) or file (csv); None: shipped copy
    split_fractions: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])
    split_lengths: list[int] | None = None  # rows per part; overrides fractions (ETT: 12/4/4 months)
    scale: bool = True  # z-score with training statistics
    metrics_scale: Literal["scaled", "original"] = "original"
    text_k: int = 4  # a window sees the k most recent texts dated before its forecast starts
    text_newest_first: bool = False  # join them newest first, so the encoder's length limit cuts the oldest
    text_each_fact: bool = False  # encode each text alone and read them in turn: the length limit cuts none

    def __post_init__(self) -> None:
        super().__post_init__()
        check_split_fractions(self.split_fractions)
        if self.split_lengths is not None and (len(self.split_lengths) != 3 or min(self.split_lengths) < 1):
            raise ValueError(f"split_lengths must be three row counts of at least 1, got {self.split_lengths}")


def check_split_fractions(fractions: list[float] | None) -> None:
    """Three parts (train, validation, test), each a share > 0, adding up to 1."""
    if fractions is None:
        return
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"split_fractions must be three shares (train, validation, test), each above 0, that add up to 1; "
            f"got {list(fractions)} (sum {sum(fractions):g})"
        )


def text_encoder_options(params: Any) -> dict:
    """The encoder settings a data config implies (the hashing encoder's width, a Hugging Face model's
    settings; MiniLM has none)."""
    if params.text_encoder == "hashing":
        return {"dim": params.hashing_dim}
    if params.text_encoder == "hf":
        return {
            "model": params.text_model,
            "layer": params.text_layer,
            "pooling": params.text_pooling,
            "dtype": params.text_dtype,
            "device": params.text_device,
            "max_tokens": params.text_max_tokens,
        }
    return {}


def text_encoder_name(params: Any) -> str | None:
    """The name of the encoder a data config implies (for a Hugging Face model, with the fingerprint of its
    weights), or ``None`` without text. A run records it, so that it never reads text with another model."""
    kind = getattr(params, "text_encoder", "none")
    return None if kind == "none" else get_encoder(kind, **text_encoder_options(params)).name


def check_text_encoder(params: Any, trained: str | None) -> None:
    """Refuse data settings whose text encoder differs from the one a run was ``trained`` with."""
    if trained is None:
        return  # a run without text, or from before runs recorded their encoder
    now = text_encoder_name(params)
    if now != trained:
        where = f" (data.text_model '{params.text_model}')" if getattr(params, "text_model", None) else ""
        raise ConfigError(
            f"the text encoder{where} is '{now}', but the run was trained with '{trained}': a model's text "
            "features mean nothing under another encoder; give the encoder (and weights) the run was trained with"
        )


class SeriesAdapter(DataAdapter):
    """Regular series, split in time order into windows of ``lookback -> horizon``."""

    params = ForecastParams
    source_type = SeriesSet

    def prepare(self, params, source, seed, fitted=None, which="default") -> PreparedData:
        self.check_source(source)
        lengths = tuple(params.split_lengths) if params.split_lengths else None
        return prepare_forecasting(
            source,
            params.lookback,
            params.horizon,
            tuple(params.split_fractions),
            lengths,  # type: ignore[arg-type]
            params.scale,
            fitted,
            which,
            text_encoder=params.text_encoder,
            text_k=params.text_k,
            encoder_options=text_encoder_options(params),
            text_newest_first=params.text_newest_first,
            text_each_fact=params.text_each_fact,
        )

    def from_frame(self, frame: pd.DataFrame, params: Any) -> SeriesSet:
        """A long-format frame: ``unique_id, ds, y`` (or the column names the params set) and covariates; each
        series' first hole is reported (:func:`tsmoe.data.sampling.warn_of_gaps`)."""
        data = from_long_dataframe(
            frame,
            id_col=getattr(params, "id_col", "unique_id"),
            time_col=getattr(params, "time_col", "ds"),
            target_col=getattr(params, "target_col", "y"),
            covariates=tuple(getattr(params, "covariates", ())),
            text_col=getattr(params, "text_col", None),
        )
        warn_of_gaps(data, "the frame")
        return data


class FixedWindowsAdapter(DataAdapter):
    """Fixed windows with text, already split into train, validation and test."""

    source_type = TextWindowSplits

    def prepare(self, params, source, seed, fitted=None, which="default") -> PreparedData:
        self.check_source(source)
        threshold = params.trend_threshold if params.task == "trend" else None
        return prepare_text_windows(source, params.text_encoder, text_encoder_options(params), which, threshold)
