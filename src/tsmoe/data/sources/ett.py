"""ETT (electricity transformer temperature), hourly: ``date`` plus 7 numeric columns, target ``OT``.

The standard split is 12/4/4 months (8640/2880/2880 rows) from the start of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tsmoe.data.adapter import ForecastParams, SeriesAdapter
from tsmoe.data.csv_files import read_csv_checked, wide_frame_to_series
from tsmoe.data.series import SeriesSet
from tsmoe.errors import DataError
from tsmoe.paths import shipped_data_dir

ETT_HOURLY_SPLIT = (12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)


def load_ett(root: str | Path | None = None, name: str = "ETTh1", targets: tuple[str, ...] | None = None) -> SeriesSet:
    """Load ``<root>/<name>.csv`` (or ``.csv.gz``); default root: the shipped copy. All columns are targets
    unless ``targets`` names some (the multivariate ``M`` setting by default)."""
    root = Path(root) if root is not None else shipped_data_dir() / "ett"
    path = next((p for p in (root / f"{name}.csv", root / f"{name}.csv.gz") if p.exists()), root / f"{name}.csv")
    frame = read_csv_checked(path)
    if "date" not in frame.columns:
        raise DataError(f"file '{path}': no 'date' column; columns are {list(frame.columns)}")
    return wide_frame_to_series(frame, f"file '{path}'", "date", targets, name)


@dataclass
class ETTParams(ForecastParams):
    file: str = "ETTh1"  # file stem inside root (ETTh1, ETTh2, ETTm1, ...)
    split_lengths: list[int] | None = field(default_factory=lambda: list(ETT_HOURLY_SPLIT))
    metrics_scale: Literal["scaled", "original"] = "scaled"  # as the P4 literature reports


class ETTh1(SeriesAdapter):
    name = "etth1"
    params = ETTParams
    description = "ETTh1: hourly transformer load and oil temperature, 7 variables"
    folder = "ett"

    def load(self, params: ETTParams) -> SeriesSet:
        return load_ett(params.root, params.file)
