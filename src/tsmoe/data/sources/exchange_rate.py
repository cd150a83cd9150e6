"""Daily exchange rates of 8 countries (LSTNet): no header, no dates; the row number is the time index."""

from __future__ import annotations

from pathlib import Path

from tsmoe.data.adapter import ForecastParams, SeriesAdapter
from tsmoe.data.csv_files import read_csv_checked, wide_frame_to_series
from tsmoe.data.series import SeriesSet
from tsmoe.paths import shipped_data_dir

COUNTRIES = ("Australia", "Britain", "Canada", "Switzerland", "China", "Japan", "New Zealand", "Singapore")


def load_exchange_rate(root: str | Path | None = None) -> SeriesSet:
    """Load ``<root>/exchange_rate.txt(.gz)``; columns are named after the countries (LSTNet's order)."""
    root = Path(root) if root is not None else shipped_data_dir() / "exchange_rate"
    path = next(
        (p for p in (root / "exchange_rate.txt", root / "exchange_rate.txt.gz") if p.exists()),
        root / "exchange_rate.txt",
    )
    frame = read_csv_checked(path, header=None, compression="infer")
    frame.columns = [COUNTRIES[i] if i < len(COUNTRIES) else f"col{i}" for i in range(frame.shape[1])]
    return wide_frame_to_series(frame, f"file '{path}'", None, None, "exchange_rate")


class ExchangeRate(SeriesAdapter):
    name = "exchange_rate"
    description = "daily exchange rates of 8 countries, 7,588 days"
    folder = "exchange_rate"

    def load(self, params: ForecastParams) -> SeriesSet:
        return load_exchange_rate(params.root)
