"""The windows the MoME paper used on Time-MMD: ``<root>/<Domain>/{train,test}/<Domain>_{train,test}.csv``.

Columns ``input_seq`` and ``output_seq`` hold JSON lists of numbers; ``text`` is a language model's
summary written from features of the *future* window (a noisy label of the future: numbers on these
files compare only with the MoME paper). Validation is the last 10 % of the train file, in file order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsmoe.data.benchmark_csv import read_csv_checked
from tsmoe.data.parsing import check_texts_column, to_float32
from tsmoe.errors import DataError
from tsmoe.paths import shipped_data_dir

DOMAINS = ("Energy", "Environment", "HealthAFR", "HealthUS", "SocialGood")


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
            raise DataError(f"{place}: expected a non-empty JSON list of numbers, got '{cell}'")
        rows.append(
            to_float32(np.array(values, dtype=np.float64), lambda i, place=place: f"{place}, item {i}", "value")
        )
        if len(rows[-1]) != len(rows[0]):
            raise DataError(f"{place}: length {len(rows[-1])}, expected {len(rows[0])}")
    return np.stack(rows)


def load_mome_split(domain: str, part: str, root: str | Path | None = None) -> TextWindows:
    """Read the ``train`` or ``test`` windows of one domain."""
    root = Path(root) if root is not None else shipped_data_dir() / "mome_timemmd"
    path = root / domain / part / f"{domain}_{part}.csv"
    if not path.exists():
        path = path.with_name(path.name + ".gz")
    frame = read_csv_checked(path, text_columns=("text",))
    for column in ("input_seq", "output_seq", "text"):
        if column not in frame.columns:
            raise DataError(f"file '{path}': column '{column}' is missing; columns {list(frame.columns)}")
    texts = frame["text"]
    check_texts_column(texts, lambda i: f"file '{path}', column 'text', row {i + 1}")
    return TextWindows(
        inputs=parse_number_lists(frame["input_seq"].tolist(), f"file '{path}'", "input_seq"),
        targets=parse_number_lists(frame["output_seq"].tolist(), f"file '{path}'", "output_seq"),
        texts=tuple("" if not isinstance(t, str) else t for t in texts),
    )


def load_mome_windows(domain: str, root: str | Path | None = None) -> tuple[TextWindows, TextWindows, TextWindows]:
    """(train, validation, test): validation is the last 10 % of the train file, in file order."""
    train = load_mome_split(domain, "train", root)
    n_val = max(1, int(round(0.1 * len(train))))
    return (
        train.take(0, len(train) - n_val),
        train.take(len(train) - n_val, len(train)),
        load_mome_split(domain, "test", root),
    )


@dataclass(frozen=True)
class TextWindowSplits:
    """The train, validation and test windows of one domain (the source object of ``mome_timemmd``)."""

    train: TextWindows
    val: TextWindows
    test: TextWindows
    source: str

    @classmethod
    def load(cls, domain: str, root: str | Path | None = None) -> TextWindowSplits:
        if domain not in DOMAINS and root is None:
            raise DataError(f"unknown MoME Time-MMD domain '{domain}'; shipped: {', '.join(DOMAINS)}")
        return cls(*load_mome_windows(domain, root), source=f"MoME Time-MMD windows, {domain}")
