"""Rows to steps against a plain pandas reference: any row order, ties in time, cells given more than
once (the same value or different ones), every duplicates policy."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tsmoe.data.observations import ObservationRows, _sorted_within_steps, rows_to_steps
from tsmoe.errors import DataError


def random_rows(seed: int, order: str) -> ObservationRows:
    """600 rows of 7 entities and 3 variables on a coarse clock, so that steps, ties and repeated cells abound."""
    rng = np.random.default_rng(seed)
    n = 600
    entity = rng.integers(0, 7, n).astype(np.int32)
    time = rng.integers(0, 40, n).astype(np.float64) / 4
    variable = rng.integers(0, 3, n).astype(np.int32)
    value = rng.integers(0, 5, n).astype(np.float64)  # few values: some repeats agree, some do not
    if order != "shuffled":  # in (entity, time) order, each step's variables as they come or sorted too
        keys = (time, entity) if order == "by time" else (variable, time, entity)
        index = np.lexsort(keys)
        entity, time, variable, value = entity[index], time[index], variable[index], value[index]
    return ObservationRows(np.array([f"e{i}" for i in range(7)]), entity, time, variable, value, ("a", "b", "c"),
                           lambda row: f"row {row}")  # fmt: skip


def reference(rows: ObservationRows, policy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets, times since each entity's first observation, and the (steps x variables) grid, by pandas."""
    frame = pd.DataFrame({"entity": rows.entity, "time": rows.time, "variable": rows.variable, "value": rows.value})
    frame["row"] = np.arange(len(frame))
    how = {"first": "first", "last": "last"}.get(policy, "mean")
    cells = frame.sort_values("row").groupby(["entity", "time", "variable"])["value"].agg(how)
    grid = cells.unstack("variable").reindex(columns=range(3)).sort_index()
    entities = grid.index.get_level_values("entity").to_numpy()
    times = grid.index.get_level_values("time").to_numpy()
    first = pd.Series(times).groupby(entities).transform("min").to_numpy()
    offsets = np.concatenate([[0], np.cumsum(np.bincount(entities, minlength=7))])
    return offsets, (times - first).astype(np.float32), grid.to_numpy(np.float32)


@pytest.mark.parametrize("order", ["shuffled", "by time", "by cell"])
@pytest.mark.parametrize("policy", ["mean", "first", "last"])
def test_rows_to_steps_matches_a_pandas_reference(order, policy):
    rows = random_rows(seed=3, order=order)
    steps = rows_to_steps(rows, duplicates=policy)
    offsets, times, grid = reference(rows, policy)
    np.testing.assert_array_equal(steps.offsets, offsets)
    np.testing.assert_array_equal(steps.times, times)
    np.testing.assert_allclose(steps.values, grid, rtol=1e-6)
    assert steps.notes[f"cells given different values in several rows ({policy} taken)"] > 0
    assert steps.notes["repeated rows with the same value (merged)"] > 0
    assert ("entities with rows out of time order (sorted)" in steps.notes) == (order == "shuffled")


@pytest.mark.parametrize("order", ["shuffled", "by cell"])
def test_conflicting_repeats_are_an_error_naming_both_rows(order):
    rows = random_rows(seed=3, order=order)
    pattern = r"row (\d+) gives ([abc]) = (\d) for entity 'e(\d)' at the time row (\d+) gives it (\d)"
    with pytest.raises(DataError, match=pattern) as raised:
        rows_to_steps(rows, duplicates="error")
    b, name, b_value, entity, a, a_value = re.search(pattern, str(raised.value)).groups()
    a, b = int(a), int(b)
    for row, value in ((a, a_value), (b, b_value)):  # both rows are the named cell's, with the named values
        assert rows.entity[row] == int(entity) and rows.time[row] == rows.time[a]
        assert rows.variables[rows.variable[row]] == name and rows.value[row] == float(value)
    assert a_value != b_value
    # a caller that lets the rows go gets the same message, built without the rows' arrays
    consumed = random_rows(seed=3, order=order)
    with pytest.raises(DataError, match=re.escape(str(raised.value))):
        rows_to_steps(consumed, duplicates="error", consume=True)
    assert len(consumed.value) == 0 and len(consumed.entity) == 0


def test_consumed_rows_give_the_same_steps():
    kept = rows_to_steps(random_rows(seed=4, order="shuffled"), duplicates="mean")
    rows = random_rows(seed=4, order="shuffled")
    consumed = rows_to_steps(rows, duplicates="mean", consume=True)
    for name in ("offsets", "times", "values", "origins"):
        np.testing.assert_array_equal(getattr(consumed, name), getattr(kept, name))
    assert consumed.notes == kept.notes
    assert len(rows.time) == len(rows.variable) == 0  # released


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1e39, 1e300])
def test_a_value_float32_cannot_hold_is_an_error_naming_its_row(bad):
    rows = random_rows(seed=5, order="shuffled")
    rows.value[417] = bad
    with pytest.raises(DataError, match=r"^row 417: the value .* is not finite within float32's range"):
        rows_to_steps(rows, duplicates="mean")
    rows.value[417] = 3.4e38  # the largest float32s are values like any other
    grid = rows_to_steps(rows, duplicates="mean").values
    assert np.isfinite(grid[~np.isnan(grid)]).all() and np.nanmax(grid) > 1e38


@pytest.mark.parametrize("block", [1, 7, 1000])
def test_sorting_cells_within_blocks_of_whole_steps_is_a_stable_sort(block):
    rng = np.random.default_rng(6)
    steps = np.repeat(np.arange(200), rng.integers(1, 6, 200))  # steps in order, up to 5 rows each
    cell = (steps * 3 + rng.integers(0, 3, len(steps))).astype(np.int32)  # variables in any order within a step
    order = _sorted_within_steps(cell, 3, block=block)
    np.testing.assert_array_equal(order, np.argsort(cell, kind="stable"))
