"""Static descriptors from a table's columns: numbers as they are, text as one indicator per category.

An EHR extract's static table holds numbers (age, weight) and text (sex ``F``/``M``, admission type). A text
column becomes one descriptor per category, named ``column=category`` (``sex=F``, ``sex=M``): 1 for the
entity's category, 0 for the others, missing (NaN) for all of them where the cell is empty. Rules:

- a column is text when any of its cells is not a number; one mostly of numbers (at least half of its
  filled cells) with a few that are not is an error naming the first such cell, not a category column;
- categories are the distinct texts, sorted; more than :data:`MAX_CATEGORIES` is an error (an ID-like
  column gives no useful indicators);
- a run keeps its descriptors' names, so a table scored later is read by them: a category the run never
  saw leaves the entity's indicators of that column missing (counted), and ``column=category`` names a
  category of ``column`` whatever else the table holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsmoe.data.csv_dialect import decimal_comma_hint
from tsmoe.data.parsing import FLOAT32_MAX
from tsmoe.errors import DataError

MAX_CATEGORIES = 100
SEPARATOR = "="


@dataclass
class TextColumn:
    """One static column's cells as ``codes (R,)`` into ``texts`` (-1: empty), with ``where(r)`` naming
    cell ``r`` (its file, column and row) for errors."""

    codes: np.ndarray
    texts: list[str]
    where: Callable[[int], str]

    def numbers(self) -> np.ndarray:
        """``(R,)`` float32, NaN where empty; a cell that is no number, or none float32 holds, is an error."""
        if not self.texts:  # every cell empty
            return np.full(len(self.codes), np.nan, dtype=np.float32)
        parsed = _parsed(self.texts)
        bad = (self.codes >= 0) & ~(np.abs(parsed[np.maximum(self.codes, 0)]) <= FLOAT32_MAX)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            text = self.texts[self.codes[row]]
            raise DataError(f"{self.where(row)}: '{text}' is not a number (within float32's range)"
                            + decimal_comma_hint(text))  # fmt: skip
        return np.where(self.codes >= 0, parsed[np.maximum(self.codes, 0)], np.nan).astype(np.float32)

    def a_text(self) -> str:
        """The first filled cell's text that is not a number (for a message)."""
        texts = np.isnan(_parsed(self.texts))
        return next(self.texts[code] for code in self.codes if code >= 0 and texts[code])

    def counts(self) -> tuple[int, int]:
        """``(filled cells, filled cells that are not numbers)``."""
        filled = self.codes[self.codes >= 0]
        return len(filled), int(np.isnan(_parsed(self.texts))[filled].sum()) if len(filled) else 0

    def indicators(self, categories: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(R, len(categories))`` float32 indicators (NaN rows where the cell is empty or holds a category
        not in ``categories``), and ``(R,)`` whether the cell held such an unknown category."""
        # each text's place among the categories, and -1 last: an empty cell's code -1 picks it
        position = np.array([categories.index(t) if t in categories else -1 for t in self.texts] + [-1])[self.codes]
        out = np.full((len(self.codes), len(categories)), np.nan, dtype=np.float32)
        known = position >= 0
        out[known] = 0.0
        out[np.flatnonzero(known), position[known]] = 1.0
        return out, (self.codes >= 0) & ~known


def is_text(columns: list[TextColumn]) -> bool:
    """Whether a column (read from one file or several) is one of categories: most of its filled cells are
    not numbers. One of numbers with a few stray texts is read as numbers, which names the first stray."""
    counts = [column.counts() for column in columns]
    filled, texts = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return filled > 0 and texts / filled > 0.5


def categories_of(columns: list[TextColumn], name: str) -> list[str]:
    """The sorted distinct texts of one column read from several files; too many is an error."""
    found = sorted({column.texts[code] for column in columns for code in np.unique(column.codes) if code >= 0})
    if len(found) > MAX_CATEGORIES:
        raise DataError(
            f"static column '{name}' holds {len(found):,} distinct texts: more than {MAX_CATEGORIES} categories to "
            "make indicators of; encode it as numbers, or leave it out (data.static_columns lists the ones to use)"
        )
    return found


def indicator_name(column: str, category: str) -> str:
    return f"{column}{SEPARATOR}{category}"


def indicator_places(names: list[str]) -> dict[str, dict[str, int]]:
    """A run's static names -> each text column's categories and their places among the names
    (``["age", "sex=F", "sex=M"]`` -> ``{"sex": {"F": 1, "M": 2}}``)."""
    places: dict[str, dict[str, int]] = {}
    for place, name in enumerate(names):
        if SEPARATOR in name:
            column, category = name.split(SEPARATOR, 1)
            places.setdefault(column, {})[category] = place
    return places


def split_indicator(name: str, columns: list[str]) -> tuple[str, str] | None:
    """``(column, category)`` where ``name`` is ``column=category`` for one of ``columns`` and not itself a
    column; else None."""
    if name in columns or SEPARATOR not in name:
        return None
    column, category = name.split(SEPARATOR, 1)
    return (column, category) if column in columns else None


def _parsed(texts: list[str]) -> np.ndarray:
    """Each distinct text as a number, NaN where it is none."""
    return pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
