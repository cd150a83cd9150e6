"""Data set ``irregular``: any table of irregular observations (an EHR extract, a sensor log, market ticks).

Files (CSV, gzipped CSV or Parquet; each a file or a folder of files, read by :mod:`tsmoe.data.table_files`):

- ``data.observations``: one row per observation, ``id, time, variable, value`` (names set by ``id_col``,
  ``time_col``, ``variable_col``, ``value_col``); or with ``layout: wide`` one row per (id, time) and one
  column per variable, empty where unobserved;
- ``data.labels``: ``id`` and ``label_col``: classes, as integers ``0..C-1`` or by name (``died``, ``up``: class
  ``k`` is ``classes[k]``, the names sorted unless ``classes`` lists them; a run keeps its own), or numbers
  (regression; ``label_type`` overrides what the column's type says); not needed to predict;
- ``data.static`` (optional): ``id`` and descriptors (numbers, or text: one indicator per category, by
  :mod:`tsmoe.data.static_columns`), and the entity's clock start (``start_col``).

Times are numbers in ``time_unit`` or timestamps (converted to it); an entity's clock starts at its first
observation unless ``start_col`` gives it. Steps are made by :func:`tsmoe.data.observations.rows_to_steps`.

Variables are matched by name: a run keeps its variables and static columns, and a table scored later may
hold them in any order, lack some (unobserved) or hold others (counted, reported and ignored).

Stated policies (each counted in the data notes a run keeps in ``meta.json``): rows with an empty value are
skipped; entities without a label are an error, or skipped (``unlabelled: skip``); labelled entities
without observations are an error, kept with no steps (``unobserved: keep``) or skipped; repeated cells
are merged as ``duplicates`` says. A non-numeric value, a missing ID, time or variable name, an ID
labelled twice with different labels: errors naming the file and row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsmoe.data.adapter import IrregularAdapter, check_split_fractions
from tsmoe.data.cache import cached_arrays, hash_files
from tsmoe.data.clock import NANOSECONDS, TimeUnit
from tsmoe.data.irregular import Clock, IrregularSet, Scaling
from tsmoe.data.notes import note
from tsmoe.data.observations import DuplicatePolicy, ObservationRows, labels_at_steps, rows_to_steps
from tsmoe.data.row_buffer import RowBuffer, row_bound
from tsmoe.data.splits import IdSplit
from tsmoe.data.static_columns import TextColumn, categories_of, indicator_name, is_text, split_indicator
from tsmoe.data.table_files import codes_and_names, file_columns, numbers, read_batches, read_table, table_files
from tsmoe.errors import ConfigError, DataError

log = logging.getLogger(__name__)
ROW_TYPES = {"entity": np.int32, "time": np.float64, "variable": np.int32, "value": np.float64}


@dataclass
class IrregularTableParams:
    """``data`` keys of the ``irregular`` data set (module docstring)."""

    observations: str | None = None  # a file or a folder of files
    labels: str | None = None
    static: str | None = None
    layout: Literal["long", "wide"] = "long"
    id_col: str = "id"
    time_col: str = "time"
    variable_col: str = "variable"  # long layout
    value_col: str = "value"  # long layout
    label_col: str = "label"
    label_type: Literal["auto", "class", "number"] = "auto"  # auto: integers or names -> classes, else numbers
    classes: list[str] | None = None  # class names in class order (binary: the second is positive); None: sorted
    label_time_col: str | None = None  # labels at times (id, time, label: one per hour, say): a label per step
    start_col: str | None = None  # in the static table: each entity's clock start (else its first observation)
    time_unit: TimeUnit = "hours"  # the unit of numeric times, and of the model's clock
    variables: list[str] | None = None  # None: every variable in the table (by name); a run keeps its own
    static_columns: list[str] | None = None  # None: every column of the static table but id and start
    duplicates: DuplicatePolicy = "error"  # a cell given different values in several rows
    unlabelled: Literal["error", "skip"] = "error"  # entities with observations and no label
    unobserved: Literal["error", "keep", "skip"] = "error"  # labelled entities with no observation
    until: float | None = None  # keep each entity's first `until` time units only (early prediction)
    per_step: bool = False  # train and score at every step, each step's target the entity's outcome
    split_file: str | None = None  # JSON of IDs per part; None: stratified by label with the run's seed
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    value_scaling: Scaling = "zscore"

    def __post_init__(self) -> None:
        check_split_fractions(self.split_fractions)
        if self.until is not None and not self.until > 0:
            raise ValueError(f"until must be a positive time, got {self.until}")
        for name in ("variables", "static_columns", "classes"):
            names = getattr(self, name)
            if names is not None and len(set(names)) != len(names):
                raise ValueError(f"{name} lists a name twice: {names}")
        if self.classes is not None and len(self.classes) < 2:
            raise ValueError(f"classes must name at least two classes, got {self.classes}")
        if self.classes is not None and self.label_type == "number":
            raise ValueError("classes names classes, and label_type 'number' makes the labels numbers to regress")


class IrregularTable(IrregularAdapter):
    name = "irregular"
    params = IrregularTableParams
    description = "a table of irregular observations of yours (id, time, variable, value): set data.observations"
    companions = {"observations": ("labels", "static", "split_file")}

    def from_frame(self, frame: pd.DataFrame, params: IrregularTableParams) -> IrregularSet:
        raise DataError(
            "data set 'irregular' trains and evaluates on files (data.observations, data.labels: CSV or Parquet); "
            "a trained run scores a frame of observations with predict_table(frame)"
        )

    def load(self, params: IrregularTableParams) -> IrregularSet:
        if params.observations is None:
            raise ConfigError("data set 'irregular' needs data.observations: a table (or folder) of observations")
        return load_irregular_table(params)

    def split(self, params: IrregularTableParams) -> IdSplit | None:
        return IdSplit.read(params.split_file) if params.split_file else None

    def for_run(self, params: IrregularTableParams, meta: dict) -> IrregularTableParams:
        """A trained run reads tables by its own variables, static columns and class names, matched by name."""
        params.variables = list(meta["channel_names"])
        params.static_columns = list(meta.get("static_names", params.static_columns or []))
        if meta.get("class_names"):
            params.classes = list(meta["class_names"])
        return params


def load_irregular_table(params: IrregularTableParams, with_labels: bool = True, cache: bool = True) -> IrregularSet:
    """The observations (and labels, unless ``with_labels`` is false: labels -1) the ``params`` name, as
    an :class:`IrregularSet`; the arrays are cached on disk, keyed by the files' bytes and the params, unless
    ``cache`` is false (a table read once, as a frame passed through a file: its entry would only pile up)."""
    files = table_files(params.observations, "data.observations")
    label_files = table_files(params.labels, "data.labels") if with_labels and params.labels else []
    if with_labels and not label_files:
        raise ConfigError("data set 'irregular' needs data.labels to train or evaluate: a table of id and label")
    static_files = table_files(params.static, "data.static") if params.static else []
    if cache:
        key = hash_files(
            [*files, *label_files, *static_files],
            extra=json.dumps({**params.__dict__, "with_labels": with_labels}, sort_keys=True, default=str),
        )
        arrays = cached_arrays("irregular", key, lambda: _read(params, files, label_files, static_files))
    else:
        arrays = _read(params, files, label_files, static_files)
    notes = json.loads(str(arrays["notes"]))
    for reason, count in notes.items():
        note(log, "data.observations: %s: %s", reason, count)
    if params.classes is None and len(arrays["class_names"]):  # named by the labels themselves, sorted
        _say_class_names(arrays["class_names"].tolist())
    return IrregularSet(
        record_ids=arrays["record_ids"],
        offsets=arrays["offsets"],
        times=arrays["times"],
        values=arrays["values"],
        static=arrays["static"],
        labels=arrays["labels"],
        variables=tuple(arrays["variables"].tolist()),
        static_names=tuple(arrays["static_names"].tolist()),
        notes=notes,
        step_labels=arrays.get("step_labels"),
        clock=Clock(arrays["clock"], arrays["origins"], str(arrays["clock_kind"])) if "clock" in arrays else None,
        class_names=tuple(arrays["class_names"].tolist()),
    )


def _read(params: IrregularTableParams, files: list[Path], label_files: list[Path], static_files: list[Path]) -> dict:
    rows, notes = _observation_rows(params, files)
    entity_ids = rows.entity_ids
    labels, timed, classes = _labels(params, label_files, rows.clock_kind) if label_files else (None, None, [])
    if labels is not None:
        entity_ids, labels, rows = _match_labels(params, rows, labels, notes)
    static, static_names, starts = _static(params, static_files, entity_ids, notes, rows.clock_kind)
    variables = rows.variables
    kind = rows.clock_kind
    # the rows are not needed after; predicting (no labels), each step keeps its own time for the output
    steps = rows_to_steps(rows, starts, params.duplicates, consume=True, keep_clock=not label_files)
    notes.update(steps.notes)
    extra = {}
    if steps.clock is not None:
        extra |= {"clock": steps.clock, "origins": steps.origins, "clock_kind": np.array(kind)}
    if timed is not None:  # labels at times: each to its step
        names, times, values = timed
        position = np.searchsorted(entity_ids, names)
        known = (position < len(entity_ids)) & (entity_ids[np.minimum(position, len(entity_ids) - 1)] == names)
        extra["step_labels"] = labels_at_steps(steps, position[known], times[known], values[known], notes)
    if labels is None:
        labels = np.full(len(entity_ids), -1, dtype=np.int64)
    return {
        **extra,
        "record_ids": entity_ids,
        "offsets": steps.offsets,
        "times": steps.times,
        "values": steps.values,
        "static": static,
        "labels": labels,
        "variables": np.array(variables, dtype=str),
        "static_names": np.array(static_names, dtype=str),
        "notes": np.array(json.dumps(notes)),
        "class_names": np.array(classes, dtype=str),
    }


# ---- observations ------------------------------------------------------------------------------------


def _observation_rows(params: IrregularTableParams, files: list[Path]) -> tuple[ObservationRows, dict]:
    """Every file's rows as one :class:`ObservationRows`: entities sorted by ID, variables by name (or
    as the params list them), rows of variables not listed dropped and counted. Each file is read in
    pieces turned into int32 codes and float64 numbers at once, written into arrays made once for every
    file's rows (:class:`tsmoe.data.row_buffer.RowBuffer`), so the rows cost about 24 bytes each and are
    never held twice."""
    entity_index: dict[str, int] = {}
    variable_index: dict[str, int] = {name: i for i, name in enumerate(params.variables or [])}
    fixed = params.variables is not None
    # long: at most a row of the files per observation; wide: a row holds several, the buffer grows to them
    buffer = RowBuffer(ROW_TYPES, sum(row_bound(path) for path in files))
    pieces: list[tuple[Path, int, np.ndarray | None]] = []  # (file, its first row, kept rows or None: all)
    starts = [0]
    kinds: dict[str, Path] = {}  # "number" or "timestamp": the times' kind, and a file that has it
    ignored: dict[str, int] = {}
    empty_values = 0
    for path in files:
        batches, extra = _observation_batches(params, path, fixed)
        if params.layout == "wide":
            batches = _wide_hint(batches)
        read = 0
        for offset, table in batches:
            n = table.num_rows
            read += n
            ids, id_names = codes_and_names(table[params.id_col])
            _refuse_missing(ids < 0, path, params.id_col, "an ID", offset)
            to_entity = np.array([entity_index.setdefault(name, len(entity_index)) for name in id_names], np.int32)
            clock = _clock(table[params.time_col], path, params.time_col, params.time_unit)
            _refuse_missing(np.isnan(clock), path, params.time_col, "a time", offset)
            kinds.setdefault(clock_kind(table[params.time_col]), path)
            if len(kinds) > 1:
                raise DataError(f"file '{kinds['number']}' gives times as numbers and file '{kinds['timestamp']}' "
                                f"as timestamps (column '{params.time_col}'): one table's times are all one or the "
                                "other")  # fmt: skip
            kept: np.ndarray | None = None  # None: every row of the piece is kept, in order
            if params.layout == "long":
                codes, names = codes_and_names(table[params.variable_col])
                _refuse_missing(codes < 0, path, params.variable_col, "a variable name", offset)
                row_var = _variable_codes(names, variable_index, fixed)[codes]
                row_value = numbers(table[params.value_col])
                unknown = row_var < 0
                if unknown.any():
                    counts = np.bincount(codes[unknown], minlength=len(names))
                    for code in np.flatnonzero(counts):
                        ignored[names[code]] = ignored.get(names[code], 0) + int(counts[code])
                keep = ~unknown & ~np.isnan(row_value)
                empty_values += int((~unknown & np.isnan(row_value)).sum())
                if not keep.all():
                    kept = np.flatnonzero(keep)
                    row_var, row_value = row_var[kept], row_value[kept]
            else:
                columns = [c for c in table.column_names if c not in (params.id_col, params.time_col)]
                var_of_column = _variable_codes(columns, variable_index, fixed)
                grid = np.stack([numbers(table[c]) for c in columns], axis=1) if columns else np.zeros((n, 0))
                kept, column = np.nonzero(~np.isnan(grid))
                row_var, row_value = var_of_column[column], grid[kept, column]
            del table
            buffer.append(entity=to_entity[ids if kept is None else ids[kept]],
                          time=clock if kept is None else clock[kept], variable=row_var, value=row_value)  # fmt: skip
            pieces.append((path, offset, kept))
            starts.append(starts[-1] + (n if kept is None else len(kept)))
        for column in extra:  # wide layout: columns that are not variables of the run
            ignored[column] = ignored.get(column, 0) + read
    notes: dict = {}
    if empty_values:
        notes["rows with an empty value (skipped)"] = empty_values
    if ignored:
        notes["rows of variables the run does not know (ignored)"] = ignored
    variables = list(variable_index)
    arrays = buffer.arrays()
    pa.default_memory_pool().release_unused()  # the pieces' Arrow memory, kept by its pool otherwise
    if not fixed:  # variables in name order, so a table's column order never changes a model
        by_name = np.argsort(np.array(variables, dtype=object), kind="stable")
        rank = np.empty(len(variables), dtype=np.int32)
        rank[by_name] = np.arange(len(variables))
        _renumber(arrays["variable"], rank)
        variables = [variables[i] for i in by_name]
    ids = _sorted_ids(list(entity_index), arrays["entity"])
    bounds = np.array(starts)

    def where(row: int) -> str:
        part = int(np.searchsorted(bounds, row, side="right") - 1)
        path, offset, kept = pieces[part]
        in_piece = row - int(bounds[part])
        return f"file '{path}', row {offset + (in_piece if kept is None else int(kept[in_piece])) + 1}"

    rows = ObservationRows(ids, arrays["entity"], arrays["time"], arrays["variable"], arrays["value"],
                           tuple(variables), where, clock_kind=next(iter(kinds), "number"))  # fmt: skip
    return rows, notes


def _observation_batches(params: IrregularTableParams, path: Path, fixed: bool) -> tuple[Iterator, list[str]]:
    """One file's pieces, and (wide layout) the columns that are not variables of a run: not read."""
    if params.layout == "long":
        columns = [params.id_col, params.time_col, params.variable_col, params.value_col]
        text = (params.id_col, params.variable_col)
        return read_batches(path, columns, text=text, numbers=(params.value_col,)), []
    present = file_columns(path)
    others = [c for c in present if c not in (params.id_col, params.time_col)]
    if fixed:  # a run's variables: read those the file has; the others are reported, not read
        wanted = [c for c in others if c in set(params.variables or [])]
        extra = [c for c in others if c not in set(params.variables or [])]
    else:
        wanted, extra = others, []
    columns = [params.id_col, params.time_col, *wanted]
    return read_batches(path, columns, text=(params.id_col,), numbers=tuple(wanted)), extra


def _wide_hint(batches: Iterator) -> Iterator:
    """A wide table's pieces; a cell that is not a number (a column of text beside the readings, a care
    unit, say) is refused with what to do about it."""
    try:
        yield from batches
    except DataError as error:
        if "is not a number" not in str(error):
            raise
        raise DataError(f"{error} (in the wide layout every column but the ID and time is a variable: list the "
                        "ones to read in data.variables; descriptors of an entity go in data.static)") from None


def _variable_codes(names: list[str], index: dict[str, int], fixed: bool) -> np.ndarray:
    """Each name's variable index (-1: not a variable of a run's fixed list), adding new ones if not fixed."""
    if fixed:
        return np.array([index.get(name, -1) for name in names], dtype=np.int32)
    return np.array([index.setdefault(name, len(index)) for name in names], dtype=np.int32)


def _renumber(codes: np.ndarray, new: np.ndarray) -> None:
    """``codes[i] = new[codes[i]]`` in place, a block at a time (no second array of every row)."""
    for start in range(0, len(codes), 1 << 20):
        block = codes[start : start + (1 << 20)]
        block[:] = new[block]


def _sorted_ids(names: list[str], codes: np.ndarray) -> np.ndarray:
    """Entity IDs sorted (so the order of files and rows never changes a split); ``codes`` renumbered
    to them in place."""
    ids = np.array(names, dtype=str)
    order = np.argsort(ids, kind="stable")
    if np.array_equal(order, np.arange(len(ids))):  # already in ID order (a log sorted by ID)
        return ids
    rank = np.empty(len(ids), dtype=np.int32)
    rank[order] = np.arange(len(ids))
    _renumber(codes, rank)
    return ids[order]


def _same_kind(column: pa.ChunkedArray, kind: str, path: Path, name: str) -> pa.ChunkedArray:
    """``column`` (of times) if its kind is the observations' times' ``kind``; else an error."""
    if column.null_count < len(column) and clock_kind(column) != kind:
        raise DataError(f"file '{path}', column '{name}': its times are {clock_kind(column)}s and the observations' "
                        f"are {kind}s; give them the same way")  # fmt: skip
    return column


def clock_kind(column: pa.ChunkedArray) -> str:
    """``"number"`` for a column of numbers or durations (times in the clock's unit), else ``"timestamp"``."""
    kind = column.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
    return "number" if numeric or pa.types.is_duration(kind) else "timestamp"


def _clock(column: pa.ChunkedArray, path: Path, name: str, unit: TimeUnit) -> np.ndarray:
    """A time column -> ``(R,)`` float64 in ``unit``: numbers are taken as in it, durations and timestamps
    (or text that parses as ISO 8601 dates) converted; NaN where missing."""
    kind = column.type
    if pa.types.is_duration(kind):  # time since some start (pandas' timedelta): its nanoseconds in the unit
        nanoseconds = column.cast(pa.duration("ns")).cast(pa.int64())
        return numbers(nanoseconds.cast(pa.float64())) / NANOSECONDS[unit]
    if clock_kind(column) == "number":
        return numbers(column.cast(pa.float64()))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        column = _parse_times(column.cast(pa.string()), path, name)
    elif pa.types.is_date(kind):
        column = column.cast(pa.timestamp("s"))
    if not pa.types.is_timestamp(column.type):
        raise DataError(f"file '{path}', column '{name}': times must be numbers or timestamps, not {kind}")
    if column.type.tz is not None:  # an instant: its UTC reading
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    nanoseconds = column.cast(pa.timestamp("ns", tz=column.type.tz)).cast(pa.int64())
    missing = nanoseconds.is_null().to_numpy(zero_copy_only=False)
    values = nanoseconds.fill_null(0).to_numpy().astype(np.float64) / NANOSECONDS[unit]
    values[missing] = np.nan
    return values


def _parse_times(text: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    """Text times as timestamps (ISO 8601, as pandas reads them); a cell that is no date is an error."""
    import pandas as pd

    raw = pd.Series(text.to_numpy(zero_copy_only=False))
    try:
        parsed = pd.to_datetime(raw, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        given = raw.notna().to_numpy()
        is_number = pd.to_numeric(raw, errors="coerce").notna().to_numpy()
        mostly_numbers = is_number[given].mean() >= 0.5
        first = int(np.flatnonzero(given)[0]) if given.any() else 0
        if not mostly_numbers and not any(_is_date(cell) for cell in raw[given].head(100)):  # another date format
            raise DataError(
                f"file '{path}', column '{name}', row {first + 1}: '{raw[first]}' is not an ISO 8601 date (2026-03-01 "
                "08:00, 2026-03-01T08:00:00+01:00), nor is any of its first 100 times: times are numbers or ISO 8601 "
                "dates (write other formats as ISO 8601 first: pandas' to_datetime(column, format='%m/%d/%Y %H:%M'))"
            ) from None
        for row, cell in enumerate(raw):
            odd = (not is_number[row]) if mostly_numbers else not _is_date(cell)
            if given[row] and odd:
                kind = "a number" if mostly_numbers else "an ISO 8601 date"
                raise DataError(
                    f"file '{path}', column '{name}', row {row + 1}: '{cell}' is not {kind}, as most of the column's "
                    "times are (times are all numbers or all dates)"
                ) from None
        raise DataError(f"file '{path}', column '{name}': times are not ISO 8601 dates") from None
    return pa.chunked_array([pa.Array.from_pandas(parsed)])


def _is_date(cell: str) -> bool:
    import pandas as pd

    try:
        pd.to_datetime(cell, format="ISO8601")
        return True
    except (ValueError, TypeError):
        return False


def _refuse_missing(missing: np.ndarray, path: Path, column: str, what: str, offset: int = 0) -> None:
    if missing.any():
        row = offset + int(np.flatnonzero(missing)[0]) + 1
        raise DataError(f"file '{path}', column '{column}', row {row}: {what} is missing")


# ---- labels and static descriptors ------------------------------------------------------------------


def _labels(
    params: IrregularTableParams, files: list[Path], clock_kind: str
) -> tuple[dict[str, object], tuple | None, list[str]]:
    """ID -> label from the label table(s), typed as classes or numbers; with ``label_time_col`` also
    the labels at times (given as the observations' are, ``clock_kind``), ``(ids (L,), times (L,) in the
    clock's unit, labels (L,))``, and each entity's label the largest class it reaches (ever positive) or
    its last number; and the class names (empty unless the classes are named)."""
    timed = [params.label_time_col] if params.label_time_col else []
    tables = [(path, read_table(path, [params.id_col, *timed, params.label_col], text=(params.id_col,)))
              for path in files]  # fmt: skip
    classes = _class_names(params, tables)
    if params.label_time_col:
        return *_timed_labels(params, tables, clock_kind, classes), classes or []
    by_id: dict[str, object] = {}
    for path, table in tables:
        ids, names = codes_and_names(table[params.id_col])
        _refuse_missing(ids < 0, path, params.id_col, "an ID")
        values, kind = _label_values(params, table, path, classes)
        for row, (code, label) in enumerate(zip(ids.tolist(), values.tolist(), strict=True)):
            entity = names[code]
            label = int(label) if kind == "class" else label
            if entity in by_id and not _same(by_id[entity], label):
                said, before = (classes[label], classes[by_id[entity]]) if classes else (label, by_id[entity])
                raise DataError(f"file '{path}', row {row + 1}: ID '{entity}' is labelled {said} here and {before} "
                                "before")  # fmt: skip
            by_id[entity] = label
    return by_id, None, classes or []


def _class_names(params: IrregularTableParams, tables: list[tuple[Path, pa.Table]]) -> list[str] | None:
    """The classes by name, in class order: ``params.classes``, or the names a label column of text holds,
    sorted (a column of numbers written as text is not names). None: no names (numbers, or integer classes)."""
    if params.label_type == "number":
        return None
    named = [(path, table[params.label_col]) for path, table in tables if _holds_names(table[params.label_col])]
    if not named:
        return params.classes
    if len(named) < len(tables):
        other = next(path for path, table in tables if not _holds_names(table[params.label_col]))
        raise DataError(f"file '{named[0][0]}' names its classes and file '{other}' numbers them (column "
                        f"'{params.label_col}'): give every table's classes one way")  # fmt: skip
    for path, column in named:
        numbered = [cell for cell in _distinct_text(column) if _is_number(cell)]
        if numbered:
            raise DataError(f"file '{path}', column '{params.label_col}': classes given by name and by number "
                            f"({numbered[0]!r}) in one column: give them one way")  # fmt: skip
    if params.classes is not None:
        return params.classes
    names = sorted({name for _, column in named for name in _distinct_text(column)})
    if len(names) < 2:
        raise DataError(f"file '{named[0][0]}', column '{params.label_col}': every label is {names[0]!r}, one "
                        "class; a classifier needs two (name them in data.classes, e.g. [no, yes])")  # fmt: skip
    return names


def _say_class_names(names: list[str]) -> None:
    """Classes named by the labels (not by ``data.classes``): their order where it picks the positive class
    (two), and names that differ only in case or spaces (``Died`` and ``died``: two classes)."""
    folded: dict[str, list[str]] = {}
    for name in names:
        folded.setdefault(name.strip().casefold(), []).append(name)
    alike = [spellings for spellings in folded.values() if len(spellings) > 1]
    if alike:
        note(log, "data.labels: the class names %s differ only in case or spaces, and are classes of their own "
                  "(%d classes: %s)", alike, len(names), names)  # fmt: skip
    elif len(names) == 2:
        note(log, "data.labels: classes %s, the positive (whose probability is predicted) %r; data.classes sets "
                  "the order", names, names[1])  # fmt: skip


def _holds_names(column: pa.ChunkedArray) -> bool:
    """Whether a label column is text with a cell that is not a number (class names)."""
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)):
        return False
    return any(not _is_number(cell) for cell in _distinct_text(column))


def _distinct_text(column: pa.ChunkedArray) -> list[str]:
    return [str(cell) for cell in pc.unique(column.cast(pa.string())).drop_null().to_pylist()]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _class_codes(column: pa.ChunkedArray, classes: list[str], path: Path, name: str) -> np.ndarray:
    """Class names -> their places in ``classes``, float64 ``(R,)``; a missing or unknown name is an error
    naming its row."""
    text = column.cast(pa.string())
    codes = pc.index_in(text, value_set=pa.array(classes, pa.string()))
    given = text.is_valid().to_numpy(zero_copy_only=False)
    _refuse_missing(~given, path, name, "a label")
    unknown = ~codes.is_valid().to_numpy(zero_copy_only=False)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(f"file '{path}', column '{name}', row {row + 1}: class {text[row].as_py()!r} is not one of "
                        f"the classes {classes} (data.classes; a trained run keeps its own)")  # fmt: skip
    return codes.to_numpy(zero_copy_only=False).astype(np.float64)


def _label_values(
    params: IrregularTableParams, table: pa.Table, path: Path, classes: list[str] | None = None
) -> tuple[np.ndarray, str]:
    """A label column as float64 numbers and its kind (``class`` or ``number``); names become their places
    in ``classes``; a class that is not a whole number ``0..C-1`` is an error naming its row."""
    column = table[params.label_col]
    if classes is not None and _holds_names(column):
        return _class_codes(column, classes, path, params.label_col), "class"
    kind = _label_kind(params.label_type, column.type, path)
    values = numbers(_as_label_numbers(column, path, params.label_col))
    if kind == "class":
        bad = np.isnan(values) | (values < 0) | (values != np.round(values))
        if classes is not None:
            bad |= values >= len(classes)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            whole = "0, 1, ..." if classes is None else f"0..{len(classes) - 1} (one of {classes}) or a name"
            raise DataError(
                f"file '{path}', column '{params.label_col}', row {row + 1}: a class must be a whole number "
                f"{whole}, got {values[row]:g} (numbers to regress: set data.label_type: number)"
            )
    return values, kind


def _timed_labels(
    params: IrregularTableParams, tables: list[tuple[Path, pa.Table]], clock_kind: str, classes: list[str] | None
) -> tuple[dict[str, object], tuple]:
    names, times, values, kinds = [], [], [], set()
    for path, table in tables:
        ids, id_names = codes_and_names(table[params.id_col])
        _refuse_missing(ids < 0, path, params.id_col, "an ID")
        clock = _clock(_same_kind(table[params.label_time_col], clock_kind, path, params.label_time_col), path,
                       params.label_time_col, params.time_unit)  # fmt: skip
        _refuse_missing(np.isnan(clock), path, params.label_time_col, "a time")
        label, kind = _label_values(params, table, path, classes)
        kinds.add(kind)
        names.append(np.array(id_names, dtype=str)[ids])
        times.append(clock)
        values.append(label)
    all_names, all_times, all_values = np.concatenate(names), np.concatenate(times), np.concatenate(values)
    classes_given = kinds == {"class"}
    by_id: dict[str, object] = {}
    order = np.lexsort((all_times, all_names))
    for name, value in zip(all_names[order].tolist(), all_values[order].tolist(), strict=True):
        by_id[name] = max(int(value), by_id.get(name, 0)) if classes_given else value  # type: ignore[call-overload]
    return by_id, (all_names, all_times, all_values.astype(np.float32))


def _as_label_numbers(column: pa.ChunkedArray, path: Path, name: str) -> pa.ChunkedArray:
    if pa.types.is_boolean(column.type):
        column = column.cast(pa.int8())
    try:
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type):
            return column.cast(pa.float64())
        return column.cast(pa.string()).cast(pa.float64())
    except pa.ArrowInvalid as error:
        raise DataError(
            f"file '{path}', column '{name}': labels must be numbers ({str(error).splitlines()[0]})"
        ) from None


def _label_kind(choice: str, kind: pa.DataType, path: Path) -> str:
    if choice != "auto":
        return choice
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return "class"
    if pa.types.is_floating(kind):
        return "number"
    raise DataError(
        f"file '{path}': labels given as text that reads as numbers (got a column of {kind}): set "
        "data.label_type: class (integers 0..C-1) or number (to regress)"
    )


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b))


def _match_labels(
    params: IrregularTableParams, rows: ObservationRows, labels: dict[str, object], notes: dict
) -> tuple[np.ndarray, np.ndarray, ObservationRows]:
    """The labelled entities, by the ``unlabelled`` and ``unobserved`` policies; labels as an array."""
    observed = set(rows.entity_ids.tolist())
    unlabelled = sorted(observed - set(labels))
    unobserved = sorted(set(labels) - observed)
    if unlabelled and params.unlabelled == "error":
        raise DataError(
            f"{len(unlabelled)} entit(ies) in data.observations have no label in data.labels, e.g. {unlabelled[:5]} "
            "(data.unlabelled: skip leaves them out)"
        )
    if unobserved and params.unobserved == "error":
        raise DataError(
            f"{len(unobserved)} ID(s) in data.labels have no observation, e.g. {unobserved[:5]} "
            "(data.unobserved: keep keeps them with no steps; skip leaves them out)"
        )
    if unlabelled:
        notes["entities without a label (skipped)"] = len(unlabelled)
    if unobserved:
        notes[f"labelled entities without observations ({params.unobserved})"] = len(unobserved)
    kept = sorted(observed - set(unlabelled)) + (unobserved if params.unobserved == "keep" else [])
    ids = np.array(sorted(kept), dtype=str)
    if not len(ids):
        raise DataError("no entity has both observations and a label: do the ID columns of the tables match?")
    new_code = np.full(len(rows.entity_ids), -1, dtype=np.int32)
    positions = np.searchsorted(ids, rows.entity_ids)
    found = (positions < len(ids)) & (ids[np.minimum(positions, len(ids) - 1)] == rows.entity_ids)
    new_code[found] = positions[found]
    if np.array_equal(ids, rows.entity_ids):  # every observed entity is labelled: the rows stay as they are
        rows.entity_ids = ids
    else:
        row_code = new_code[rows.entity]
        keep = row_code >= 0
        where = rows.where
        kept_rows = np.flatnonzero(keep)
        rows = ObservationRows(ids, row_code[keep], rows.time[keep], rows.variable[keep], rows.value[keep],
                               rows.variables, lambda r: where(int(kept_rows[r])), rows.clock_kind)  # fmt: skip
    values = [labels[i] for i in ids.tolist()]
    dtype = np.int64 if all(isinstance(v, int) for v in values) else np.float32
    return ids, np.array(values, dtype=dtype), rows


def _static(
    params: IrregularTableParams, files: list[Path], entity_ids: np.ndarray, notes: dict, kind: str = "number"
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """``static (E, P)`` (NaN where missing), the static names, and the clock starts ``(E,)`` (NaN: none).
    Every column but the ID and start, numbers as they are and text as indicators
    (:mod:`tsmoe.data.static_columns`), or the ``static_columns`` named (a run's: ``column=category`` for
    an indicator)."""
    names = list(params.static_columns or [])
    if not files:
        if params.start_col:
            raise ConfigError("data.start_col names a column of the static table: set data.static too")
        if names:  # a run with descriptors, scoring a table given without them
            notes["entities without descriptors (no data.static given): static columns missing"] = len(entity_ids)
        return np.full((len(entity_ids), len(names)), np.nan, np.float32), names, None
    present = list(dict.fromkeys(c for path in files for c in file_columns(path)))  # every file's columns
    if params.static_columns is None:
        columns = [c for c in file_columns(files[0]) if c not in (params.id_col, params.start_col)]
    else:  # the columns the names read: a column's own name, or column=category
        columns = list(dict.fromkeys(c if c in present else (split_indicator(c, present) or (c,))[0] for c in names))
    starts = np.full(len(entity_ids), np.nan) if params.start_col else None
    index = {name: i for i, name in enumerate(entity_ids.tolist())}
    unknown, seen = 0, np.zeros(len(entity_ids), dtype=bool)
    pieces: list[tuple[np.ndarray, dict[str, TextColumn]]] = []  # per file: each kept row's entity, the columns
    for path in files:
        here = [c for c in columns if c in file_columns(path)]
        wanted = [params.id_col, *here, *([params.start_col] if params.start_col else [])]
        table = read_table(path, wanted, text=(params.id_col, *here))  # as text: a column may be categories
        codes, ids = codes_and_names(table[params.id_col])
        _refuse_missing(codes < 0, path, params.id_col, "an ID")
        position = np.array([index.get(name, -1) for name in ids], dtype=np.int64)[codes]
        unknown += int((position < 0).sum())
        rows = position >= 0
        seen[position[rows]] = True
        kept = np.flatnonzero(rows)  # the rows of entities in the data: only they are read (and can be wrong)
        pieces.append((position[rows], {c: _text_column(table[c], path, c, kept) for c in here}))
        if starts is not None:
            start = _same_kind(table[params.start_col], kind, path, params.start_col)
            starts[position[rows]] = _clock(start, path, params.start_col, params.time_unit)[rows]
    if params.static_columns is None:  # every column: a text one becomes one indicator per category
        names = []
        for column in columns:
            read = [piece[1][column] for piece in pieces if column in piece[1]]
            text = is_text(read)
            names += [indicator_name(column, c) for c in categories_of(read, column)] if text else [column]
    static = np.full((len(entity_ids), len(names)), np.nan, dtype=np.float32)
    unknown_categories = 0
    for entities, read in pieces:
        for column, cells in read.items():
            if column in names:
                if params.static_columns is not None and is_text([cells]):
                    raise DataError(
                        f"static column '{column}' holds text, e.g. '{cells.a_text()}': a text column is read as one "
                        f"indicator per category, named {column}=CATEGORY; list those in data.static_columns, or "
                        "leave it unset to take every column"
                    )
                static[entities, names.index(column)] = cells.numbers()
                continue
            places = [j for j, name in enumerate(names) if (split_indicator(name, present) or ("",))[0] == column]
            indicators, unseen = cells.indicators([split_indicator(names[j], present)[1] for j in places])
            static[entities[:, None], places] = indicators
            unknown_categories += int(unseen.sum())
    if unknown_categories:
        notes["static cells of a category the run does not know (its indicators missing)"] = unknown_categories
    if unknown:
        notes["static rows of unknown entities (ignored)"] = unknown
    if not seen.all():
        notes["entities without a static row (descriptors missing)"] = int((~seen).sum())
    return static, names, starts


def _text_column(column: pa.ChunkedArray, path: Path, name: str, kept: np.ndarray) -> TextColumn:
    """The ``kept`` rows of a static column read as text."""
    codes, texts = codes_and_names(column)
    return TextColumn(codes[kept], texts, lambda row: f"file '{path}', column '{name}', row {int(kept[row]) + 1}")
