"""``tsmoe stream``: rows of observations read one line at a time (a file, or a pipe such as ``tail -f
log.csv``) fed to a stream, each answered by a line of predictions as soon as it is read.

    tail -n +1 -f pumps.csv | tsmoe stream runs/pumps -          # one line out per line in, flushed

The input is CSV with a header holding the run's columns, in the run's layout: ``id, time, variable, value``
(long, named by the run's ``data.*_col``) or ``id, time`` and one column per variable (wide); other columns
are ignored. Each row is one update (:meth:`tsmoe.stream.StreamingPredictor.update`), read by the table's
rules: times as numbers of the clock's unit or ISO 8601 text, readings at one time of an entity merged
into one step, and a row with no reading (an empty value) skipped and counted. An entity's descriptors come
from a static table (``data.static``), looked up by its ID when it is first seen.

Each answer is a CSV line: the row's ID and time as given, then the prediction as ``tsmoe predict
--per-step`` names it (``probability``, with ``probability_low, probability_high`` for an interval;
``probability_<class>``; ``prediction`` for a regression). A row the stream refuses (a time going back, an
unknown variable, a value that is no number) stops the stream with an error naming its line, or with
``skip_bad_rows`` is skipped with a warning naming it; the skipped rows are counted at the end.
"""

from __future__ import annotations

import csv
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from tsmoe.data.csv_dialect import separator_of
from tsmoe.data.table_files import file_columns, read_table, table_files
from tsmoe.errors import DataError
from tsmoe.stream import Risk

log = logging.getLogger(__name__)


@dataclass
class RowLayout:
    """Where a row holds what: the ID and time columns, and the long layout's variable and value columns or
    the wide layout's variable columns."""

    id_col: str
    time_col: str
    variable_col: str | None = None
    value_col: str | None = None
    variables: list[str] = field(default_factory=list)

    def check(self, header: list[str]) -> None:
        """Refuse a header that lacks a column the layout reads."""
        needed = [self.id_col, self.time_col, *([self.variable_col, self.value_col] if self.variable_col else [])]
        missing = [name for name in needed if name not in header]
        if missing:
            raise DataError(f"the input's header has no column(s) {missing}; it has {header}")

    def observations(self, row: dict[str, str]) -> dict[str, str]:
        """The row's readings by variable (empty cells left out)."""
        if self.variable_col is not None:
            value = row.get(self.value_col) or ""
            return {row.get(self.variable_col) or "": value} if value.strip() else {}
        return {name: row[name] for name in self.variables if (row.get(name) or "").strip()}


def layout_of(estimator: Any) -> RowLayout:
    """The row layout of a run trained on a table of observations (its ``data.*_col`` and ``layout``)."""
    params = estimator.data_params()
    if getattr(params, "layout", "long") == "wide":
        return RowLayout(params.id_col, params.time_col, variables=list(estimator.meta_["channel_names"]))
    return RowLayout(params.id_col, params.time_col, params.variable_col, params.value_col)


def static_lookup(path: str | None, id_col: str) -> dict[str, dict[str, str]]:
    """A static table (a CSV or Parquet file, or a folder of them) read as a table's files are
    (:mod:`tsmoe.data.table_files`: the same NA spellings, IDs as text), as ``{id: {column: cell}}`` with every
    cell as text and empty ones left out, for :meth:`tsmoe.stream.StreamingPredictor.open` to read by the
    run's rules."""
    lookup: dict[str, dict[str, str]] = {}
    if path is None:
        return lookup
    for file in table_files(path, "data.static"):
        columns = file_columns(file)
        table = read_table(file, [id_col, *(c for c in columns if c != id_col)], text=tuple(columns))
        cells = {name: table[name].to_pylist() for name in table.column_names}
        for row, entity in enumerate(cells.pop(id_col)):
            if entity is not None:
                lookup[entity] = {name: column[row] for name, column in cells.items() if column[row]}
    return lookup


def answer_columns(meta: dict, interval: bool) -> list[str]:
    """The prediction columns of an answer of a run of these ``meta`` (its task, and a classifier's classes,
    by name where it names them), as ``tsmoe predict --per-step`` names them."""
    base = meta["task"].removesuffix("_per_step")
    if base == "binary":
        return ["probability", *(["probability_low", "probability_high"] if interval else [])]
    if base == "multiclass":
        return [f"probability_{k}" for k in meta.get("class_names") or range(meta["dims"]["n_classes"])]
    return ["prediction"]


def stream_rows(
    stream: Any,
    lines: Iterable[str],
    out: TextIO,
    layout: RowLayout,
    columns: list[str],
    static: dict[str, dict[str, str]],
    skip_bad_rows: bool = False,
) -> dict[str, int]:
    """Feed the CSV ``lines`` (header first) to ``stream`` row by row, writing each answer to ``out`` as it
    comes, under ``columns`` (:func:`answer_columns`; module docstring). Returns the counts: rows read,
    answered, without a reading, skipped."""
    numbered = _numbered(lines, counter := {"line": 0})
    first = next(numbered, None)  # the header, whose separator the rows share (tsmoe.data.csv_dialect)
    head = [] if first is None else [first]
    rows = csv.DictReader(itertools.chain(head, numbered), delimiter=separator_of(first or ""))
    header = _readable(lambda: rows.fieldnames)
    if header is None:
        raise DataError("the input is empty: it needs a header line")
    layout.check(list(header))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([layout.id_col, layout.time_col, *columns])
    out.flush()
    counts = {"rows": 0, "answered": 0, "without a reading": 0, "skipped": 0}
    for row in _read_rows(rows):
        counts["rows"] += 1
        line = counter["line"]
        entity, time = (row.get(layout.id_col) or "").strip(), (row.get(layout.time_col) or "").strip()
        observations = layout.observations(row)
        if not observations:
            counts["without a reading"] += 1
            continue
        try:
            if not entity:
                raise DataError("an ID is missing")
            if not time:
                raise DataError("a time is missing")
            if entity not in stream.entities:
                stream.open(entity, static=static.get(entity))
            answer = stream.update(entity, _time(time), observations)
        except DataError as error:
            if not skip_bad_rows:
                raise DataError(f"input line {line}: {error}") from None
            log.warning("input line %d skipped: %s", line, error)
            counts["skipped"] += 1
            continue
        writer.writerow([entity, time, *_cells(answer)])
        out.flush()  # the answer as soon as the row is read: a monitor downstream sees it now
        counts["answered"] += 1
    return counts


def _readable(read: Callable[[], Any]) -> Any:
    """``read()``, with a line the CSV reader cannot split (a NUL byte, a field past its limit) an error."""
    try:
        return read()
    except csv.Error as error:
        raise DataError(f"the input is not readable CSV: {error}") from None


def _read_rows(rows: csv.DictReader) -> Iterator[dict[str, str]]:
    """The reader's rows, each read as :func:`_readable` reads."""
    while (row := _readable(lambda: next(rows, None))) is not None:
        yield row


def _numbered(lines: Iterable[str], counter: dict[str, int]) -> Iterator[str]:
    """``lines`` as they are, counting them (1 is the header) so that an error can name its line; text that
    is not UTF-8 is an error naming the last line read before it."""
    iterator = iter(lines)
    while True:
        try:
            line = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as error:  # decoded a block at a time: the line is the first unread or later
            where = f"after line {counter['line']}" if counter["line"] else "from its first line"
            raise DataError(
                f"the input is not UTF-8 text {where} ({error.reason}): tsmoe reads CSV as UTF-8 "
                "(in Excel: 'CSV UTF-8')"
            ) from None
        counter["line"] += 1
        yield line


def _time(text: str) -> float | str:
    """A time cell: a number (of the clock's unit) where it reads as one, else the text (a timestamp)."""
    try:
        return float(text)
    except ValueError:
        return text


def _cells(answer: Any) -> list[Any]:
    """An answer as the cells of its line."""
    if isinstance(answer, Risk):
        return [answer.probability, answer.low, answer.high]
    if isinstance(answer, np.ndarray):
        return answer.tolist()
    return [answer]
