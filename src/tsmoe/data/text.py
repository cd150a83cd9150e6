"""Aligning dated text to forecast windows, under the leakage rule of protocol P3.

A forecast that starts at time ``t`` may see only text whose ``end_date`` is strictly before ``t``;
of those, the ``k`` most recent (by ``end_date``) form its text. This module is the only place the rule
is implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DatedTexts:
    """Text rows sorted by ``end_dates (N,)`` (datetime64[ns]) with their ``texts`` and ``sources``."""

    end_dates: np.ndarray
    texts: tuple[str, ...]
    sources: tuple[str, ...]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> DatedTexts:
        """From a frame with ``end_date``, ``fact`` and ``source`` columns; rows without text are skipped
        (an NA fact carries no information, and windows then simply see fewer facts)."""
        frame = frame[frame["fact"].notna() & (frame["fact"].astype(str).str.strip() != "")]
        frame = frame.sort_values("end_date", kind="stable")
        return cls(
            end_dates=frame["end_date"].to_numpy().astype("datetime64[ns]"),
            texts=tuple(frame["fact"].astype(str)),
            sources=tuple(frame["source"].astype(str)),
        )

    def __len__(self) -> int:
        return len(self.texts)

    def before(self, forecast_start: np.datetime64, k: int = 4) -> list[str]:
        """The ``k`` most recent texts whose end date is strictly before ``forecast_start``, oldest first."""
        visible = int(np.searchsorted(self.end_dates, np.datetime64(forecast_start, "ns"), side="left"))
        return list(self.texts[max(visible - k, 0) : visible])
