"""Time-MMD (raw): a numeric series and dated text per domain, in the layout the dataset publishes.

``<root>/numerical/<D>/<D>.csv`` and ``<root>/textual/<D>/<D>_{report,search}.csv`` (each may be gzipped).
Columns are found by name, never by position; rows are sorted by date. The target is ``OT``.
Text rows keep ``start_date``, ``end_date`` and ``fact``; the ``preds`` column (forecasts written by a
language model) is never read.

Quirks of the published files, repaired here and logged (they are facts of this data set, not of users'
data, which :mod:`tsmoe.data.long_format` refuses instead):
- rows whose target is empty or infinite are dropped (Health_AFR's first weeks and its 'inf' cells,
  a few SocialGood months);
- rows sharing a date are averaged (Health_US repeats 5 weeks);
- files sorted newest first (Climate) are re-sorted by date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tsmoe.data.adapter import ForecastParams, SeriesAdapter
from tsmoe.data.csv_files import read_csv_checked
from tsmoe.data.notes import note
from tsmoe.data.parsing import check_float32, check_texts_column, parse_dates
from tsmoe.data.series import Series, SeriesSet
from tsmoe.data.text import DatedTexts
from tsmoe.errors import DataError
from tsmoe.paths import shipped_data_dir

log = logging.getLogger(__name__)
TARGET = "OT"
TEXT_SOURCES = ("report", "search")


def default_root() -> Path:
    return shipped_data_dir() / "time_mmd"


def _find(path: Path) -> Path:
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            return candidate
    raise DataError(f"file '{path}' (or '{path.name}.gz') does not exist")


def list_domains(root: str | Path | None = None) -> list[str]:
    """Domains present under ``<root>/numerical``."""
    root = Path(root) if root is not None else default_root()
    if not (root / "numerical").is_dir():
        raise DataError(f"'{root}' has no numerical/ folder: not a Time-MMD root")
    return sorted(p.name for p in (root / "numerical").iterdir() if p.is_dir())


@dataclass(frozen=True)
class TimeMMDDomain:
    """One domain: ``frame`` (date-sorted: ``date`` plus numeric columns, ``OT`` among them) and its texts."""

    name: str
    frame: pd.DataFrame
    texts: DatedTexts

    def series(self, covariates: tuple[str, ...] = ()) -> SeriesSet:
        """The target (and chosen numeric covariates) as a one-series :class:`SeriesSet`."""
        missing = [c for c in covariates if c not in self.frame.columns]
        if missing:
            raise DataError(f"Time-MMD {self.name}: covariate(s) {missing} not in {list(self.frame.columns)}")
        columns = (TARGET, *covariates)
        values = self.frame[list(columns)].to_numpy(np.float32)
        stamps = self.frame["date"].to_numpy().astype("datetime64[ns]")
        return SeriesSet(
            series=(Series(self.name, stamps, values),),
            columns=columns,
            targets=(TARGET,),
            source=f"Time-MMD {self.name}",
            texts={self.name: (self.texts.end_dates, list(self.texts.texts))},  # dated by end_date
        )


def _date_column(frame: pd.DataFrame, path: Path) -> str:
    for name in ("date", "start_date", "Date"):
        if name in frame.columns:
            return name
    raise DataError(f"file '{path}': no date column (looked for 'date', 'start_date'); columns {list(frame.columns)}")


def _read_numeric(path: Path, domain: str) -> pd.DataFrame:
    frame = read_csv_checked(path)
    if TARGET not in frame.columns:
        raise DataError(f"file '{path}': target column '{TARGET}' is missing; columns {list(frame.columns)}")
    date_col = _date_column(frame, path)
    dates = pd.Series(parse_dates(frame[date_col], lambda i: f"file '{path}', column '{date_col}', row {i + 1}"))
    target = pd.to_numeric(frame[TARGET], errors="coerce")
    bad = target.isna() & frame[TARGET].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(f"file '{path}', column '{TARGET}', row {row}: '{frame[TARGET].iloc[row - 1]}' is not a number")
    target = target.where(np.isfinite(target))  # Health_AFR holds literal 'inf' values: treat as empty
    kept = target.notna().to_numpy()
    check_float32(
        target[kept].to_numpy(), lambda i: f"file '{path}', column '{TARGET}', row {np.flatnonzero(kept)[i] + 1}"
    )
    numeric = {"date": dates, TARGET: target}
    for column in frame.columns:  # other numeric columns become optional covariates
        if column in (date_col, TARGET) or column.startswith(("date.", "start_date", "end_date")):
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.notna().sum() == frame[column].notna().sum() and values.notna().any():
            numeric[column] = values
    out = pd.DataFrame(numeric)
    empty = int(out[TARGET].isna().sum())
    if empty == len(out):
        raise DataError(f"file '{path}': no row has a value in column '{TARGET}' (all {empty} are empty or infinite)")
    if empty:
        note(log, "Time-MMD %s: dropped %d row(s) with an empty or infinite %s", domain, empty, TARGET)
        out = out[out[TARGET].notna()]
    out = out.sort_values("date", kind="stable")
    duplicated = int(out["date"].duplicated().sum())
    if duplicated:
        note(log, "Time-MMD %s: %d repeated date(s); rows sharing a date were averaged", domain, duplicated)
        out = out.groupby("date", as_index=False, sort=True).mean(numeric_only=True)
    return out.reset_index(drop=True)


def _read_texts(root: Path, domain: str) -> pd.DataFrame:
    frames = []
    for source in TEXT_SOURCES:
        path = root / "textual" / domain / f"{domain}_{source}.csv"
        if not path.exists() and not path.with_name(path.name + ".gz").exists():
            continue
        frame = read_csv_checked(
            _find(path), text_columns=("fact",), usecols=lambda c: c in ("start_date", "end_date", "fact")
        )
        if "fact" in frame.columns:  # Time-MMD writes "NA" where a period has no fact
            frame["fact"] = frame["fact"].where(frame["fact"].str.strip() != "NA")
        if "end_date" not in frame.columns or "fact" not in frame.columns:
            raise DataError(f"file '{path}': text files need 'end_date' and 'fact' columns")
        end = pd.Series(
            parse_dates(frame["end_date"], lambda i, path=path: f"file '{path}', column 'end_date', row {i + 1}")
        )
        fact = frame["fact"]
        check_texts_column(fact, lambda i, path=path: f"file '{path}', column 'fact', row {i + 1}")
        frames.append(pd.DataFrame({"end_date": end, "fact": fact, "source": source}))
    if not frames:
        return pd.DataFrame({"end_date": pd.Series(dtype="datetime64[ns]"), "fact": [], "source": []})
    return pd.concat(frames, ignore_index=True)


def load_time_mmd(domain: str, root: str | Path | None = None) -> TimeMMDDomain:
    """Load one domain of Time-MMD from ``root`` (default: the shipped copy)."""
    root = Path(root) if root is not None else default_root()
    domains = list_domains(root)
    if domain not in domains:
        raise DataError(f"Time-MMD domain '{domain}' not found in '{root}'; found {domains}")
    frame = _read_numeric(_find(root / "numerical" / domain / f"{domain}.csv"), domain)
    return TimeMMDDomain(name=domain, frame=frame, texts=DatedTexts.from_frame(_read_texts(root, domain)))


@dataclass
class TimeMMDParams(ForecastParams):
    domain: str = "Energy"
    covariates: list[str] = field(default_factory=list)
    lookback: int = 24
    horizon: int = 12
    metrics_scale: Literal["scaled", "original"] = "scaled"


class TimeMMD(SeriesAdapter):
    name = "time_mmd"
    params = TimeMMDParams
    description = "Time-MMD: 7 domains of numbers with dated text (target OT)"
    folder = "time_mmd"

    def load(self, params: TimeMMDParams) -> SeriesSet:
        return load_time_mmd(params.domain, params.root).series(tuple(params.covariates))
