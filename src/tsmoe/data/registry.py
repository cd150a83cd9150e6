"""The data sets tsmoe knows by name: their parameters, how to load them, and how to prepare them.

Each entry has a ``Params`` dataclass (the keys of a config's ``data`` section), a ``load`` function
from params to a source object (:class:`IrregularSet` or :class:`SeriesSet`), and a ``prepare`` function
from a source to :class:`PreparedData`. Users' own data goes through ``prepare`` too
(:meth:`tsmoe.Estimator.fit` with a data object).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tsmoe.data.ett import ETT_HOURLY_SPLIT, load_ett
from tsmoe.data.exchange_rate import load_exchange_rate
from tsmoe.data.irregular import IrregularSet, Scaling
from tsmoe.data.long_format import read_long_csv
from tsmoe.data.mome_windows import TextWindowSplits
from tsmoe.data.physionet2012 import load_physionet2012
from tsmoe.data.prepared import (
    PreparedData,
    SplitChoice,
    prepare_forecasting,
    prepare_irregular,
    prepare_text_windows,
)
from tsmoe.data.series import SeriesSet
from tsmoe.data.splits import IdSplit
from tsmoe.data.time_mmd import load_time_mmd
from tsmoe.errors import ConfigError, DataError
from tsmoe.paths import shipped_data_dir


@dataclass
class PhysioNetParams:
    """``data`` keys for PhysioNet 2012 (protocol P1)."""

    root: str | None = None  # folder with set-<x>/ or set-<x>.tar.gz and Outcomes-<x>.txt; None: shipped
    sets: list[str] | None = None  # e.g. [a, b]; None: every set in root
    label: str = "In-hospital_death"  # or Length_of_stay, SAPS-I, SOFA, Survival (regression)
    split_file: str | None = "shipped"  # JSON of record IDs; "shipped": the committed P1 split; None: make one
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    value_scaling: Scaling = "zscore"  # quantile: each variable through its training
    # CDF and the normal quantile function (robust to heavy-tailed labs; tsmoe.data.irregular)


@dataclass
class ForecastParams:
    """``data`` keys shared by the forecasting data sets."""

    lookback: int = 96
    horizon: int = 96
    root: str | None = None  # folder (benchmark sets) or file (csv); None: shipped copy
    split_fractions: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])
    split_lengths: list[int] | None = None  # rows per part; overrides fractions (ETT: 12/4/4 months)
    scale: bool = True  # z-score with training statistics
    metrics_scale: Literal["scaled", "original"] = "original"
    text_encoder: Literal["none", "minilm", "hashing"] = "none"  # windows carry text when the data has it
    text_k: int = 4  # a window sees the k most recent texts dated before its forecast starts
    text_newest_first: bool = False  # join them newest first, so the encoder's length limit cuts the oldest
    text_each_fact: bool = False  # encode each text alone and read them in turn: the length limit cuts none
    hashing_dim: int = 64  # width of the hashing encoder (text_encoder: hashing)


@dataclass
class ETTParams(ForecastParams):
    file: str = "ETTh1"  # file stem inside root (ETTh1, ETTh2, ETTm1, ...)
    split_lengths: list[int] | None = field(default_factory=lambda: list(ETT_HOURLY_SPLIT))
    metrics_scale: Literal["scaled", "original"] = "scaled"  # as the P4 literature reports


@dataclass
class TimeMMDParams(ForecastParams):
    domain: str = "Energy"
    covariates: list[str] = field(default_factory=list)
    lookback: int = 24
    horizon: int = 12
    metrics_scale: Literal["scaled", "original"] = "scaled"


@dataclass
class MomeWindowsParams:
    """``data`` keys for the MoME paper's Time-MMD windows (protocol P2): windows and splits are fixed."""

    domain: str = "HealthUS"  # Energy, Environment, HealthAFR, HealthUS, SocialGood
    root: str | None = None  # folder with <Domain>/{train,test}/<Domain>_{train,test}.csv; None: shipped
    text_encoder: Literal["minilm", "hashing", "none"] = "minilm"
    hashing_dim: int = 64  # width of the hashing encoder (text_encoder: hashing)
    metrics_scale: Literal["original"] = "original"
    task: Literal["forecast", "trend"] = "forecast"  # trend: classify each window down / flat / up
    trend_threshold: float = 0.5  # |change| below this many input-window stds is "flat"


@dataclass
class CsvParams(ForecastParams):
    """A long-format CSV of the user's (``root`` is the file)."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    covariates: list[str] = field(default_factory=list)
    text_col: str | None = None  # a text column: text at time t is visible to forecasts starting after t


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    params: type
    description: str
    load: Callable[[Any], IrregularSet | SeriesSet]
    files: Callable[[], list[Path]]  # the shipped files (for `tsmoe datasets`)


def _shipped(*parts: str) -> Callable[[], list[Path]]:
    def files() -> list[Path]:
        base = shipped_data_dir().joinpath(*parts)
        return sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]

    return files


def _load_csv(params: CsvParams) -> SeriesSet:
    if params.root is None:
        raise ConfigError("data set 'csv' needs data.root: the path of a long-format CSV (unique_id, ds, y)")
    return read_long_csv(
        params.root,
        id_col=params.id_col,
        time_col=params.time_col,
        target_col=params.target_col,
        covariates=tuple(params.covariates),
        text_col=params.text_col,
    )


DATASETS: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (
        DatasetEntry(
            "physionet2012",
            PhysioNetParams,
            "PhysioNet/CinC 2012 ICU stays, sets A and B: 37 irregular variables, 5 static, in-hospital death",
            lambda p: load_physionet2012(p.root, p.sets, p.label),
            _shipped("physionet2012"),
        ),
        DatasetEntry(
            "etth1",
            ETTParams,
            "ETTh1: hourly transformer load and oil temperature, 7 variables",
            lambda p: load_ett(p.root, p.file),
            _shipped("ett"),
        ),
        DatasetEntry(
            "exchange_rate",
            ForecastParams,
            "daily exchange rates of 8 countries, 7,588 days",
            lambda p: load_exchange_rate(p.root),
            _shipped("exchange_rate"),
        ),
        DatasetEntry(
            "time_mmd",
            TimeMMDParams,
            "Time-MMD: 7 domains of numbers with dated text (target OT)",
            lambda p: load_time_mmd(p.domain, p.root).series(tuple(p.covariates)),
            _shipped("time_mmd"),
        ),
        DatasetEntry(
            "mome_timemmd",
            MomeWindowsParams,
            "the MoME paper's Time-MMD windows with text, 5 domains (protocol P2)",
            lambda p: TextWindowSplits.load(p.domain, p.root),
            _shipped("mome_timemmd"),
        ),
        DatasetEntry(
            "csv",
            CsvParams,
            "a long-format CSV of yours (unique_id, ds, y, covariates): set data.root",
            _load_csv,
            lambda: [],
        ),
    )
}

_EXTRA_SHIPPED: dict[str, str] = {}


def get_dataset(name: str) -> DatasetEntry:
    if name not in DATASETS:
        raise ConfigError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def shipped_summary() -> list[tuple[str, str, int]]:
    """(name, description, bytes on disk) of every shipped data set."""
    rows = [
        (e.name, e.description, sum(f.stat().st_size for f in e.files())) for e in DATASETS.values() if e.name != "csv"
    ]
    for name, description in _EXTRA_SHIPPED.items():
        rows.append((name, description, sum(f.stat().st_size for f in _shipped(name)())))
    return rows


def shipped_split_file() -> Path:
    return shipped_data_dir() / "physionet2012" / "split-p1-seed0.json"


def text_encoder_options(params: Any) -> dict:
    """The encoder settings a data config implies (the hashing encoder's width; MiniLM has none)."""
    return {"dim": params.hashing_dim} if params.text_encoder == "hashing" else {}


def prepare(
    params: Any,
    source: IrregularSet | SeriesSet,
    seed: int,
    fitted: dict[str, np.ndarray] | None = None,
    which: SplitChoice = "default",
) -> PreparedData:
    """Prepare a loaded ``source`` according to the data ``params`` of a config."""
    if isinstance(source, TextWindowSplits):
        threshold = params.trend_threshold if params.task == "trend" else None
        return prepare_text_windows(source, params.text_encoder, text_encoder_options(params), which, threshold)
    if isinstance(source, IrregularSet):
        split = None
        if which == "default" and getattr(params, "split_file", None):
            path = shipped_split_file() if params.split_file == "shipped" else Path(params.split_file)
            split = IdSplit.read(path)
        fractions = tuple(getattr(params, "split_fractions", (0.8, 0.1, 0.1)))
        scaling = getattr(params, "value_scaling", "zscore")
        return prepare_irregular(source, split, seed, fitted, which, fractions, scaling)  # type: ignore[arg-type]
    if isinstance(source, SeriesSet):
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
    raise DataError(f"cannot prepare a {type(source).__name__}: expected an IrregularSet or a SeriesSet")
