"""Tables from stored results: every number a page publishes is computed here from the results files, so
prose can never drift from them.

A page marks where a generated table goes (``benchmarks/tables.py`` rewrites what lies between)::

    <!-- table: benchmarks/experiments/p4.yaml -->
    ...
    <!-- end table -->
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from tsmoe.experiments.results import runs_of
from tsmoe.experiments.spec import Column, Experiment, Row

RUN_FIELDS = ("n_parameters", "seconds_per_epoch", "best_score")  # read from a run itself, not its test metrics
# (best_score: the run's best validation value of its monitor, what a validation search ranks by)


def seed_values(experiment: Experiment, row: Row, column: Column) -> list[Any]:
    """Per seed, the column's metric (the mean over its cases); seeds missing any case are left out. An
    interval metric (``auroc_ci``: two numbers) is taken as stored, from runs without cases."""
    runs = runs_of(experiment.results_files(row), row.name)
    values = []
    for seed in row.seeds or experiment.seeds:
        keys = [f"{row.name}/{case}/{seed}" for case in column.cases] or [f"{row.name}/{seed}"]
        if not all(key in runs for key in keys):
            continue
        if column.metric not in RUN_FIELDS and not all(column.metric in runs[k]["test"] for k in keys):
            continue  # a metric the run could not give (no interval where the split holds too few blocks)
        picked = [
            runs[k][column.metric] if column.metric in RUN_FIELDS else runs[k]["test"][column.metric] for k in keys
        ]
        values.append(picked[0] if isinstance(picked[0], list) else statistics.fmean(picked))
    return values


def number(value: float, digits: int | None) -> str:
    """``value`` with ``digits`` decimals, or 3 significant figures (no exponent for ordinary sizes)."""
    if digits is not None:
        return f"{value:.{digits}f}"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def cell(values: list[Any], column: Column) -> str:
    if not values:
        return ""
    if isinstance(values[0], list):  # a 95 % interval, one seed's: [low, high]
        if len(values) != 1:
            raise ValueError(f"column '{column.label}' shows an interval, which only a row of one seed has")
        low, high = values[0]
        return f"[{number(low, column.digits)}, {number(high, column.digits)}]"
    if column.metric == "n_parameters":
        return f"{round(statistics.fmean(values)):,}"
    mean = statistics.fmean(values)
    if column.metric == "seconds_per_epoch" or len(values) == 1:
        return number(mean, column.digits)
    spread = statistics.stdev(values)
    digits = column.digits
    if digits is None and spread > 0:  # the spread to 2 significant figures, the mean to the same place
        digits = max(0, 1 - math.floor(math.log10(spread)), 2 - math.floor(math.log10(abs(mean))) if mean else 0)
    return f"{number(mean, digits)} ± {number(spread, digits)}"


def table(experiment: Experiment) -> str:
    """The experiment's table in Markdown: one line per row, one cell per column (mean ± std over seeds),
    and the number of seeds behind the row."""
    head = ["row", *(c.label for c in experiment.columns), "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in (row for row in experiment.rows if row.in_table):
        columns = [seed_values(experiment, row, column) for column in experiment.columns]
        seeds = max((len(v) for v in columns), default=0)
        cells = [cell(v, c) for v, c in zip(columns, experiment.columns, strict=True)]
        lines.append("| " + " | ".join([row.label or row.name, *cells, str(seeds)]) + " |")
    return "\n".join(lines)


MARKED = re.compile(
    r"(<!-- table: (?P<path>\S+)(?: rows=(?P<rows>\S+))?(?: columns=(?P<columns>\S+))? -->\n)(?P<body>.*?)"
    r"(<!-- end table -->)",
    re.S,
)  # a marker may pick rows by name and columns by number (from 1): rows=mrmoe,gru columns=1,2


def chosen(experiment: Experiment, rows: str | None, columns: str | None) -> Experiment:
    """The experiment with only the rows (names, comma-separated) and columns (numbers from 1) a marker picks."""
    if rows:
        experiment = replace(experiment, rows=[experiment.row(name) for name in rows.split(",")])
    if columns:
        experiment = replace(experiment, columns=[experiment.columns[int(i) - 1] for i in columns.split(",")])
    return experiment


def rooted(experiment: Experiment, root: Path) -> Experiment:
    """The experiment with its results paths read from ``root`` (tables are made from any folder)."""
    rows = [
        replace(row, results=[str(root / p) for p in row.results]) if row.results else row for row in experiment.rows
    ]
    return replace(experiment, results=str(root / experiment.results), rows=rows)


def summary(experiment: Experiment) -> dict[str, Any]:
    """Every row's columns as numbers (mean, std, seeds; an interval column's two bounds), for machines."""
    out: dict[str, Any] = {}
    for row in experiment.rows:
        out[row.name] = {}
        for column in experiment.columns:
            values = seed_values(experiment, row, column)
            if values and isinstance(values[0], list):
                out[row.name][column.label] = {"interval": values[0], "seeds": len(values)}
                continue
            out[row.name][column.label] = {
                "mean": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else None,
                "seeds": len(values),
            }
    return out
