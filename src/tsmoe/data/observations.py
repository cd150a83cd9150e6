"""Observations as rows (entity, time, variable, value) -> the steps of an :class:`IrregularSet`.

Every irregular source prepares through here: a user's long or wide table (:mod:`tsmoe.data.sources.
irregular_table`) and the PhysioNet 2012 stay files (:mod:`tsmoe.data.sources.physionet2012`) both
become :class:`ObservationRows` first, then :func:`rows_to_steps` makes the steps. Its rules:

- rows are put in time order within each entity (the order of the rows in a file does not matter); the
  entities whose rows were not in time order are counted in the notes;
- the rows of one entity at one time form one step; the step's time is counted from the entity's start
  (its first observation, unless the caller gives starts), in the clock's unit;
- a (entity, time, variable) cell given more than once with *different* values is an error naming both
  rows, or, by a stated policy (``duplicates``), their mean, the first or the last row in file order,
  counted; repeats of the same value are merged and counted;
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tsmoe.data.parsing import FLOAT32_MAX
from tsmoe.errors import DataError

DuplicatePolicy = Literal["error", "mean", "first", "last"]


@dataclass
class ObservationRows:
    """R observation rows as arrays. ``entity (R,)`` indexes ``entity_ids (E,)``; ``variable (R,)``
    indexes ``variables (F,)``; ``time (R,)`` float64 in the clock's unit; ``value (R,)`` float64.
    ``where(r)`` names row ``r`` for an error message (its file and line); ``clock_kind`` says whether the
    times were given as numbers or as timestamps (then in the unit since 1970-01-01)."""

    entity_ids: np.ndarray
    entity: np.ndarray
    time: np.ndarray
    variable: np.ndarray
    value: np.ndarray
    variables: tuple[str, ...]
    where: Callable[[int], str]
    clock_kind: str = "number"

    def release(self, keep_values: bool = False) -> None:
        """Drop the row arrays (about 24 bytes a row; with ``keep_values`` all but ``value``); the names,
        ``variables`` and ``where`` stay."""
        self.entity, self.time, self.variable = np.empty(0, np.int32), np.empty(0), np.empty(0, np.int32)
        if not keep_values:
            self.value = np.empty(0)


@dataclass
class Steps:
    """The steps of E entities: entity ``i`` owns ``offsets[i]:offsets[i + 1]`` of ``times (S,)`` (since
    its start, strictly increasing within it) and ``values (S, F)`` (NaN where unobserved)."""

    offsets: np.ndarray
    times: np.ndarray
    values: np.ndarray
    notes: dict
    origins: np.ndarray | None = None  # (E,) each entity's clock origin in the rows' time
    clock: np.ndarray | None = None  # (S,) float64 each step's time as the rows gave it (``keep_clock``)


def rows_to_steps(
    rows: ObservationRows,
    starts: np.ndarray | None = None,
    duplicates: DuplicatePolicy = "error",
    consume: bool = False,
    keep_clock: bool = False,
) -> Steps:
    """Group ``rows`` into steps (module docstring). ``starts (E,)`` are the entities' clock origins in
    the rows' time (NaN or ``None``: the entity's first observation). With ``consume`` the rows' arrays are
    released (:meth:`ObservationRows.release`) as soon as steps are made of them: codes and times once each
    row's cell is known, values once put in cell order, so the grid of steps is never held beside them (for
    a caller that needs them no more). Errors name rows all the same: from the cells, each step's entity and
    the map to file rows. With ``keep_clock`` the steps keep their times as the rows gave them, float64
    (``Steps.clock``: to write a prediction beside the time it is for)."""
    n_entities, n_variables = len(rows.entity_ids), len(rows.variables)
    entity, time = rows.entity, rows.time.astype(np.float64, copy=False)
    notes: dict = {}
    bad_time = _first_true(time, lambda block: ~np.isfinite(block))
    if bad_time is not None:
        raise DataError(f"{rows.where(bad_time)}: the time is missing or not finite")
    bad_value = _first_true(rows.value, lambda block: ~(np.abs(block) <= FLOAT32_MAX))  # NaN, inf, beyond float32
    if bad_value is not None:
        raise DataError(f"{rows.where(bad_value)}: the value {rows.value[bad_value]:g} is not finite within float32's "
                        "range (±3.4e38), which the model reads")  # fmt: skip
    # a table written in (entity, time) order needs no sort and no copy (``order`` None: the identity)
    order = None if _in_order(entity, time) else _narrow(np.lexsort((time, entity)))  # stable: file order in a time
    if order is not None:
        entity, time = entity[order], time[order]
        # an entity whose rows were not in time order in the file: in sorted order its rows go back in the file
        backwards = (entity[1:] == entity[:-1]) & (order[1:] < order[:-1])
        if backwards.any():
            notes["entities with rows out of time order (sorted)"] = int(len(np.unique(entity[1:][backwards])))
        del backwards
    elif not consume:  # the clock is shifted to each entity's start in place: in a copy, for a caller's rows
        time = time.copy()
    first_of_step = np.ones(len(entity), dtype=bool)
    first_of_step[1:] = (entity[1:] != entity[:-1]) | (time[1:] != time[:-1])
    # each row's step + 1, then its cell: step * F + variable (int32 where every cell fits: half the memory)
    n_steps = int(np.count_nonzero(first_of_step))
    cell = np.cumsum(first_of_step, dtype=np.int32 if n_steps * n_variables < 2**31 else np.int64)
    cell -= 1
    cell *= n_variables
    cell += rows.variable if order is None else rows.variable[order]
    if consume:  # the rows' values are all that is read of them from here (errors name rows by file_rows)
        rows.release(keep_values=True)

    clock = _compressed(time, first_of_step, np.float64) if keep_clock else None  # before the shift below
    origin = _origins(entity, time, n_entities, starts)
    for block in _blocks(len(time)):  # each row's time since its entity's start, in place
        time[block] -= origin[entity[block]]
    # times are read as float32 since the start: one before it, or beyond float32's range after it, is refused
    out_of_clock = _first_true(time, lambda block: (block < 0) | (block > FLOAT32_MAX))
    if out_of_clock is not None:
        row = out_of_clock if order is None else int(order[out_of_clock])
        if time[out_of_clock] < 0:
            raise DataError(f"{rows.where(row)}: the observation is before its entity's start time")
        raise DataError(f"{rows.where(row)}: the observation is {time[out_of_clock]:.3g} time units after its "
                        "entity's start, beyond float32's range (±3.4e38) in which the model reads times")  # fmt: skip
    counts = np.zeros(n_entities, dtype=np.int64)  # each entity's steps, counted a block at a time
    for block in _blocks(len(entity)):
        counts += np.bincount(entity[block][first_of_step[block]], minlength=n_entities)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    times = _compressed(time, first_of_step, np.float32)  # rounded once, from float64 since the start
    del entity, time, first_of_step  # the rows' own arrays or sorted copies: freed here

    # the rows of a cell are next to each other unless a step lists its variables out of order: only then sort
    if _non_decreasing(cell):
        file_rows = order
    else:
        by_cell = _sorted_within_steps(cell, n_variables)  # rows of one cell stay in file order
        cell = cell[by_cell]
        file_rows = by_cell if order is None else order[by_cell]
        del by_cell
    del order
    values = rows.value if file_rows is None else rows.value[file_rows]
    if consume:
        rows.release()
    first_of_cell = np.ones(len(cell), dtype=bool)
    first_of_cell[1:] = cell[1:] != cell[:-1]
    if first_of_cell.all():  # no cell given twice: the values as they are
        merged = values
    else:
        cell_first = cell[first_of_cell]
        merged = _merge_cells(values, cell, cell_first, first_of_cell, file_rows, duplicates, rows, notes, offsets)
        cell = cell_first
    del values, file_rows, first_of_cell
    _check_float32_times(times, counts)

    grid = np.full((len(times), n_variables), np.nan, dtype=np.float32)
    for block in _blocks(len(cell)):  # in blocks: indexing makes an int64 copy of the cells it is given
        grid.reshape(-1)[cell[block]] = merged[block]
    del cell, merged
    return Steps(offsets, times, grid, notes, origin, clock)


def _sorted_within_steps(cell: np.ndarray, n_variables: int, block: int = 1 << 20) -> np.ndarray:
    """The stable order of ``cell`` (int32 where it fits), where the steps (``cell // F``) are already in
    order and only a step's own rows may not be: sorted a block of whole steps at a time, so no int64
    order of every row is ever made."""
    order = np.empty(len(cell), dtype=np.int32 if len(cell) < 2**31 else np.int64)
    start = 0
    while start < len(cell):
        end = min(start + block, len(cell))
        while end < len(cell) and cell[end] // n_variables == cell[end - 1] // n_variables:
            end += 1  # a block ends where a step does
        order[start:end] = np.argsort(cell[start:end], kind="stable") + start
        start = end
    return order


def _narrow(index: np.ndarray) -> np.ndarray:
    """Row indices as int32 where they fit: half the memory of the int64 a sort gives."""
    return index.astype(np.int32) if len(index) < 2**31 else index


def _blocks(n: int, size: int = 1 << 20) -> list[slice]:
    """``0..n`` in slices of ``size``: whole-array operations done a block at a time make no temporary
    as long as the array."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _non_decreasing(x: np.ndarray) -> bool:
    """Whether ``x`` never decreases (compared in blocks)."""
    return all(bool(np.all(x[b.start + 1 : b.stop + 1] >= x[b])) for b in _blocks(len(x) - 1))


def _in_order(entity: np.ndarray, time: np.ndarray) -> bool:
    """Whether the rows are sorted by entity, then time (ties in any order)."""
    for b in _blocks(len(entity) - 1):  # a block at a time: no differences of every row
        e0, e1 = entity[b], entity[b.start + 1 : b.stop + 1]
        if not np.all((e1 > e0) | ((e1 == e0) & (time[b.start + 1 : b.stop + 1] >= time[b]))):
            return False
    return True


def _origins(entity: np.ndarray, time: np.ndarray, n_entities: int, starts: np.ndarray | None) -> np.ndarray:
    """Each entity's clock origin ``(E,)`` from rows sorted by entity then time: its given start, else its
    first row's time."""
    origin = np.zeros(n_entities, dtype=np.float64)
    first = np.ones(len(entity), dtype=bool)
    first[1:] = entity[1:] != entity[:-1]
    origin[entity[first]] = time[first]
    if starts is not None:
        given = ~np.isnan(starts)
        origin[given] = starts[given]
    return origin


def _first_true(values: np.ndarray, test: Callable[[np.ndarray], np.ndarray]) -> int | None:
    """The first index where ``test`` (applied to a block of ``values``) holds, a block at a time."""
    for block in _blocks(len(values)):
        hits = test(values[block])
        if hits.any():
            return block.start + int(np.flatnonzero(hits)[0])
    return None


def _compressed(values: np.ndarray, keep: np.ndarray, dtype: type) -> np.ndarray:
    """``values[keep]`` as ``dtype``, a block at a time (no temporary of the selection in ``values``' type)."""
    out = np.empty(int(np.count_nonzero(keep)), dtype=dtype)
    at = 0
    for block in _blocks(len(values)):
        piece = values[block][keep[block]]
        out[at : at + len(piece)] = piece
        at += len(piece)
    return out


def _merge_cells(
    values: np.ndarray,
    cell: np.ndarray,
    cell_first: np.ndarray,
    first_of_cell: np.ndarray,
    file_rows: np.ndarray | None,
    policy: DuplicatePolicy,
    rows: ObservationRows,
    notes: dict,
    offsets: np.ndarray,
) -> np.ndarray:
    """One value per cell, float32, where some cells are given more than once: ``values (R,)`` of the rows,
    whose cells ``cell (R,)`` are sorted, ``cell_first`` the distinct cells, ``first_of_cell`` marks each
    cell's first row. Repeats are merged by ``policy`` (module docstring). ``file_rows`` maps each value to
    its row (None: the identity), ``offsets (E + 1,)`` each entity's steps: an error names the rows from
    these, not from the rows' own arrays (which a caller may have released). Only the repeated cells are
    looked at: in a real table, few of many."""
    merged = _compressed(values, first_of_cell, np.float32)
    repeated = np.unique(cell[np.flatnonzero(~first_of_cell)])  # the cells given more than once
    starts, ends = np.searchsorted(cell, repeated, side="left"), np.searchsorted(cell, repeated, side="right")
    sizes = ends - starts
    at = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # each cell's first place among the gathered rows
    gathered = values[np.repeat(starts - at, sizes) + np.arange(int(sizes.sum()))]  # the repeated cells' rows
    low, high = np.minimum.reduceat(gathered, at), np.maximum.reduceat(gathered, at)
    conflicting = low != high
    same = int((sizes[~conflicting] - 1).sum())
    if same:
        notes["repeated rows with the same value (merged)"] = same
    if conflicting.any():
        if policy == "error":
            first = int(np.flatnonzero(conflicting)[0])
            a, b = int(starts[first]), int(starts[first] + 1)  # the cell's first two rows, in cell order
            step, variable = divmod(int(cell[a]), len(rows.variables))
            row_a, row_b = (a, b) if file_rows is None else (int(file_rows[a]), int(file_rows[b]))
            entity = rows.entity_ids[np.searchsorted(offsets, step, side="right") - 1]  # the step's
            raise DataError(
                f"{rows.where(row_b)} gives {rows.variables[variable]} = {values[b]:g} for entity "
                f"'{entity}' at the time {rows.where(row_a)} gives it {values[a]:g}: "
                "set data.duplicates to mean, first or last to merge such rows"
            )
        notes[f"cells given different values in several rows ({policy} taken)"] = int(conflicting.sum())
    place = np.searchsorted(cell_first, repeated)  # the repeated cells among all
    if policy == "last":
        merged[place] = values[ends - 1]
    elif policy != "first":  # "mean", and "error" where every repeat agrees; "first": each cell's first row
        merged[place] = np.add.reduceat(gathered, at) / sizes
    return merged


def _check_float32_times(times: np.ndarray, counts: np.ndarray) -> None:
    """Times are stored as float32: two distinct times too close for its precision would merge."""
    if len(times) < 2:
        return
    new_entity = np.zeros(len(times), dtype=bool)
    ends = np.cumsum(counts)[:-1]
    new_entity[ends[ends < len(times)]] = True
    if np.any((np.diff(times) <= 0) & ~new_entity[1:]):
        raise DataError(
            "two observation times of one entity are too close, for how long it runs, to tell apart in float32 "
            "(about 7 significant digits): round the times to a coarser grid, or start its clock later"
        )


def labels_at_steps(steps: Steps, entity: np.ndarray, time: np.ndarray, label: np.ndarray, notes: dict) -> np.ndarray:
    """Labels given at times ``(L,)`` for entities ``(L,)`` (in the rows' time) -> ``(S,)`` per-step labels,
    NaN where a step has none. A label belongs to the entity's last step at or before its time (what was
    known then); one before the entity's first step is dropped, and several on one step keep the latest;
    both counted in ``notes``."""
    out = np.full(len(steps.times), np.nan, dtype=np.float32)
    relative = time - steps.origins[entity]
    order = np.lexsort((relative, entity))
    before, merged = 0, 0
    bounds = np.flatnonzero(np.diff(entity[order])) + 1
    for rows in np.split(order, bounds) if len(order) else []:
        e = int(entity[rows[0]])
        start, end = int(steps.offsets[e]), int(steps.offsets[e + 1])
        step = np.searchsorted(steps.times[start:end], relative[rows].astype(np.float32), side="right") - 1
        before += int((step < 0).sum())
        kept = step >= 0
        merged += int(kept.sum() - len(np.unique(step[kept])))
        out[start + step[kept]] = label[rows][kept]  # in time order: the latest label of a step is written last
    if before:
        notes["labels before their entity's first observation (dropped)"] = before
    if merged:
        notes["labels on a step that already had one (the latest kept)"] = merged
    return out
