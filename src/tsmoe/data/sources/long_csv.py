"""A long-format table of the user's (CSV or Parquet): one row per series and time (``unique_id, ds, y`` and
covariates, or the column names the config sets), read by :mod:`tsmoe.data.long_format`'s rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from tsmoe.data.adapter import ForecastParams, SeriesAdapter
from tsmoe.data.long_format import read_long_file
from tsmoe.data.sampling import warn_of_gaps
from tsmoe.data.series import SeriesSet
from tsmoe.errors import ConfigError


@dataclass
class CsvParams(ForecastParams):
    """A long-format CSV or Parquet file of the user's (``root`` is the file)."""

    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    covariates: list[str] = field(default_factory=list)
    text_col: str | None = None  # a text column: text at time t is visible to forecasts starting after t


class LongCsv(SeriesAdapter):
    name = "csv"
    params = CsvParams
    description = "a long-format CSV or Parquet file of yours (unique_id, ds, y, covariates): set data.root"

    def load(self, params: CsvParams) -> SeriesSet:
        if params.root is None:
            raise ConfigError(
                "data set 'csv' needs data.root: the path of a long-format CSV or Parquet file (unique_id, ds, y); a "
                "run trained on a frame keeps no path to it: give the data (evaluate(frame), or --set data.root=FILE)"
            )
        data = read_long_file(
            params.root,
            id_col=params.id_col,
            time_col=params.time_col,
            target_col=params.target_col,
            covariates=tuple(params.covariates),
            text_col=params.text_col,
        )
        warn_of_gaps(data, f"file '{params.root}'")
        return data
