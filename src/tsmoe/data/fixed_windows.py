"""Fixed windows with text, split in advance: the generic form of data sets that publish windows rather
than series (the MoME paper's Time-MMD windows)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from tsmoe.data.parsing import to_float32
from tsmoe.errors import DataError


@dataclass(frozen=True)
class TextWindows:
    """Fixed windows with text: ``inputs (N, L)``, ``targets (N, H)``, ``texts`` (N strings, '' for none)."""

    inputs: np.ndarray
    targets: np.ndarray
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.inputs)

    def take(self, start: int, stop: int) -> TextWindows:
        return TextWindows(self.inputs[start:stop], self.targets[start:stop], self.texts[start:stop])


def parse_number_lists(column: list, where: str, name: str) -> np.ndarray:
    """A column of lists of numbers (JSON text, or lists in a frame), all of one length, as
    ``(N, length)`` float32; the first bad cell is a :class:`DataError` naming ``where`` (``file 'x'``),
    the column and the row."""
    rows = []
    for row, cell in enumerate(column, start=1):
        place = f"{where}, column '{name}', row {row}"
        try:
            values = json.loads(cell) if isinstance(cell, str) else cell
        except ValueError:
            values = None
        values = values.tolist() if isinstance(values, np.ndarray) else values
        numbers = (
            isinstance(values, list)
            and values
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        )
        if not numbers:
            shown = str(cell) if len(str(cell)) <= 80 else f"{str(cell)[:77]}..."
            raise DataError(f"{place}: expected a non-empty JSON list of numbers, got '{shown}'" + _repr_hint(cell))
        rows.append(
            to_float32(np.array(values, dtype=np.float64), lambda i, place=place: f"{place}, item {i}", "value")
        )
        if len(rows[-1]) != len(rows[0]):
            raise DataError(f"{place}: length {len(rows[-1])}, expected {len(rows[0])}")
    return np.stack(rows)


def _repr_hint(cell: object) -> str:
    """A hint for a cell of numpy's reprs (``[np.float64(1.0), ...]``): what pandas writes for a list of numpy
    numbers, which is no JSON."""
    if isinstance(cell, str) and re.search(r"\b(np|numpy)\.\w+\(|\barray\(", cell):
        return (" (numpy's reprs, as pandas writes lists of numpy numbers: write plain lists, e.g. "
                "values.tolist(), or JSON)")  # fmt: skip
    return ""


@dataclass(frozen=True)
class TextWindowSplits:
    """Train, validation and test parts of a set of fixed windows (the form of ``mome_timemmd``)."""

    train: TextWindows
    val: TextWindows
    test: TextWindows
    source: str
