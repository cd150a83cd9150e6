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

from tsmoe.errors import DataError

DuplicatePolicy = Literal["error", "mean", "first", "last"]


@dataclass
class ObservationRows:
    """R observation rows as arrays. ``entity (R,)`` indexes ``entity_ids (E,)``; ``variable (R,)``
    indexes ``variables (F,)``; ``time (R,)`` float64 in the clock's unit; ``value (R,)`` float64.
    ``where(r)`` names row ``r`` for an error message (its file and line)."""

    entity_ids: np.ndarray
    entity: np.ndarray
    time: np.ndarray
    variable: np.ndarray
    value: np.ndarray
    variables: tuple[str, ...]
    where: Callable[[int], str]


@dataclass
class Steps:
    """The steps of E entities: entity ``i`` owns ``offsets[i]:offsets[i + 1]`` of ``times (S,)`` (since
    its start, strictly increasing within it) and ``values (S, F)`` (NaN where unobserved)."""

    offsets: np.ndarray
    times: np.ndarray
    values: np.ndarray
    notes: dict
    origins: np.ndarray | None = None  # (E,) each entity's clock origin in the rows' time


def rows_to_steps(
    rows: ObservationRows,
    starts: np.ndarray | None = None,
    duplicates: DuplicatePolicy = "error",
) -> Steps:
    """Group ``rows`` into steps (module docstring). ``starts (E,)`` are the entities' clock origins in
    the rows' time (NaN or ``None``: the entity's first observation)."""
    n_entities, n_variables = len(rows.entity_ids), len(rows.variables)
    entity, time = rows.entity.astype(np.int64), rows.time.astype(np.float64)
    notes: dict = {}
    if len(entity) and np.any(~np.isfinite(time)):
        raise DataError(f"{rows.where(int(np.flatnonzero(~np.isfinite(time))[0]))}: the time is missing or not finite")
    if len(entity) and np.any(~np.isfinite(rows.value)):
        raise DataError(f"{rows.where(int(np.flatnonzero(~np.isfinite(rows.value))[0]))}: the value is not finite")
    order = np.lexsort((time, entity))  # stable: rows at one time keep their file order
    entity, time = entity[order], time[order]
    # an entity whose rows were not in time order in the file: in sorted order its rows go back in the file
    backwards = (np.diff(entity) == 0) & (np.diff(order) < 0)
    if backwards.any():
        notes["entities with rows out of time order (sorted)"] = int(len(np.unique(entity[1:][backwards])))
    first_of_step = np.ones(len(order), dtype=bool)
    first_of_step[1:] = (np.diff(entity) != 0) | (np.diff(time) != 0)
    step_of_row = np.cumsum(first_of_step) - 1
    step_entity, step_time = entity[first_of_step], time[first_of_step]

    origin = _origins(step_entity, step_time, n_entities, starts)
    since_start = step_time - origin[step_entity]
    if np.any(since_start < 0):
        step = int(np.flatnonzero(since_start < 0)[0])
        row = int(order[np.flatnonzero(first_of_step)[step]])
        raise DataError(f"{rows.where(row)}: the observation is before its entity's start time")

    cell = step_of_row * n_variables + rows.variable[order].astype(np.int64)
    by_cell = np.argsort(cell, kind="stable")  # rows of one cell stay in file order
    cell, values, file_rows = cell[by_cell], rows.value[order][by_cell], order[by_cell]
    first_of_cell = np.ones(len(cell), dtype=bool)
    first_of_cell[1:] = np.diff(cell) != 0
    merged = _merge_cells(values, first_of_cell, file_rows, duplicates, rows, notes)

    grid = np.full((len(step_time), n_variables), np.nan, dtype=np.float32)
    grid.reshape(-1)[cell[first_of_cell]] = merged.astype(np.float32)
    counts = np.bincount(step_entity, minlength=n_entities)
    times = since_start.astype(np.float32)
    _check_float32_times(times, counts, rows)
    return Steps(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), times, grid, notes, origin)


def _origins(step_entity: np.ndarray, step_time: np.ndarray, n_entities: int, starts: np.ndarray | None) -> np.ndarray:
    """Each entity's clock origin ``(E,)``: its given start, else its first step's time."""
    origin = np.zeros(n_entities, dtype=np.float64)
    first = np.ones(len(step_entity), dtype=bool)
    first[1:] = np.diff(step_entity) != 0
    origin[step_entity[first]] = step_time[first]
    if starts is not None:
        given = ~np.isnan(starts)
        origin[given] = starts[given]
    return origin


def _merge_cells(
    values: np.ndarray,
    first_of_cell: np.ndarray,
    file_rows: np.ndarray,
    policy: DuplicatePolicy,
    rows: ObservationRows,
    notes: dict,
) -> np.ndarray:
    """One value per cell: the cell's value, or its repeats merged by ``policy`` (module docstring)."""
    starts = np.flatnonzero(first_of_cell)
    if len(starts) == len(values):  # no cell given twice
        return values
    sizes = np.diff(np.append(starts, len(values)))
    low, high = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
    conflicting = (sizes > 1) & (low != high)
    same = int((sizes[~conflicting] - 1).sum())
    if same:
        notes["repeated rows with the same value (merged)"] = same
    if conflicting.any():
        if policy == "error":
            cell = int(np.flatnonzero(conflicting)[0])
            a, b = int(file_rows[starts[cell]]), int(file_rows[starts[cell] + 1])
            raise DataError(
                f"{rows.where(b)} gives {rows.variables[rows.variable[b]]} = {rows.value[b]:g} for entity "
                f"'{rows.entity_ids[rows.entity[b]]}' at time {rows.time[b]:g}, where {rows.where(a)} gives "
                f"{rows.value[a]:g}: set data.duplicates to mean, first or last to merge such rows"
            )
        notes[f"cells given different values in several rows ({policy} taken)"] = int(conflicting.sum())
    if policy == "first":
        return values[starts]
    if policy == "last":
        return values[starts + sizes - 1]
    return np.add.reduceat(values, starts) / sizes  # "mean", and "error" where every repeat agrees


def _check_float32_times(times: np.ndarray, counts: np.ndarray, rows: ObservationRows) -> None:
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
