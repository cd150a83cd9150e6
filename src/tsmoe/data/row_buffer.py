"""Columns of rows appended piece by piece into arrays made once, so a large table is never held twice.

Reading a file in pieces and joining them at the end holds every piece and the joined copy at once, and
the pieces' memory, freed after, is often kept by the allocator. A :class:`RowBuffer` instead writes each
piece into arrays allocated once at a capacity that bounds the rows (a Parquet file's row count, a CSV's
line count): memory the rows never reach is reserved, not used (the operating system backs a page only
when it is first written). Where no bound is known (a gzipped CSV) the arrays grow by half again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


class RowBuffer:
    """Named 1-d columns (``dtypes``: name -> numpy dtype) filled by :meth:`append`."""

    def __init__(self, dtypes: dict[str, np.dtype | type], capacity: int) -> None:
        self.size = 0
        self.columns = {name: np.empty(max(capacity, 1), dtype=dtype) for name, dtype in dtypes.items()}

    def append(self, **pieces: np.ndarray) -> None:
        """Add one piece: an array for every column, all of one length."""
        n = len(next(iter(pieces.values())))
        if self.size + n > len(next(iter(self.columns.values()))):
            self._grow(self.size + n)
        for name, piece in pieces.items():
            self.columns[name][self.size : self.size + n] = piece
        self.size += n

    def arrays(self) -> dict[str, np.ndarray]:
        """The columns' filled parts (views: the untouched rest of each array costs no memory)."""
        return {name: column[: self.size] for name, column in self.columns.items()}

    def _grow(self, needed: int) -> None:
        capacity = max(needed, int(len(next(iter(self.columns.values()))) * 1.5))
        for name, column in self.columns.items():
            grown = np.empty(capacity, dtype=column.dtype)
            grown[: self.size] = column[: self.size]
            self.columns[name] = grown


def row_bound(path: Path) -> int:
    """An upper bound on the rows of one table file without parsing it: a Parquet file's row count, an
    uncompressed CSV's line count (a quoted field's line breaks count too: a bound, not a count); for a
    gzipped CSV a guess from its size (the buffer grows past it)."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pq.ParquetFile(path).metadata.num_rows
    if name.endswith(".gz"):
        return path.stat().st_size // 4
    lines = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            lines += block.count(b"\n")
    return lines + 1  # a last line without a line break
