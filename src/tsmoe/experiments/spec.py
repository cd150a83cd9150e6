"""Experiments as data: a benchmark table declared in YAML, expanded into the runs that fill it.

An experiment file (``benchmarks/experiments/p2.yaml``, say)::

    protocol: P2
    title: the MoME paper's Time-MMD windows
    results: benchmarks/results/p2-timemmd.json     # where its runs are stored (a row may name its own)
    seeds: [0, 1, 2, 3, 4]
    cases:                                          # the settings every row runs under (optional)
      HealthUS: [data.domain=HealthUS]
      Environment: [data.domain=Environment]
    rows:
      - name: mome                                  # the run keys are mome/<case>/<seed>
        label: mome (EiLM + RM)
        recipe: configs/mome-mome_timemmd.yaml
        set: [model.text=both]                      # --set overrides on top of the recipe
    columns:                                        # the table: each column one metric over some cases
      - {label: HealthUS, metric: mse, cases: [HealthUS]}

A run is ``tsmoe train RECIPE --set <case> --set <row> --set seed=S``; its key is ``row/case/seed``
(``row/seed`` without cases). A column whose ``cases`` are several (a domain's horizons) shows, per seed,
the mean over those cases, then the mean and standard deviation of that over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tsmoe.errors import ConfigError
from tsmoe.params import build_dataclass


@dataclass
class Row:
    """One row of a table: a recipe and its overrides."""

    name: str
    recipe: str
    label: str | None = None  # what the table calls it (default: its name)
    set: list[str] = field(default_factory=list)
    seeds: list[int] | None = None  # default: the experiment's
    cases: list[str] | None = None  # the experiment's cases this row runs (default: all of them)
    results: list[str] | None = None  # the files its runs are stored in (default: the experiment's file);
    # new runs go to the first
    in_table: bool = True  # False: a control the searches run, not a row of the published table


@dataclass
class Column:
    """One column of the table: ``metric`` (a test metric, or ``n_parameters`` / ``seconds_per_epoch`` /
    ``best_score``, the best validation value of the run's monitor) over ``cases`` (none: the runs without
    cases), shown with ``digits`` decimals (None: 3 significant)."""

    label: str
    metric: str
    cases: list[str] = field(default_factory=list)
    digits: int | None = None


@dataclass
class Experiment:
    protocol: str
    title: str
    results: str
    rows: list[Row]
    columns: list[Column]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    cases: dict[str, list[str]] = field(default_factory=dict)
    note: str = ""  # one paragraph under the table: what it shows
    threads: int = 1  # OMP_NUM_THREADS of each run (measure side by side, one thread per process)

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise ConfigError(f"experiment {self.protocol} has no row '{name}'; rows: {[r.name for r in self.rows]}")

    def results_files(self, row: Row) -> list[Path]:
        """The files holding ``row``'s runs; new runs are written to the first."""
        return [Path(p) for p in row.results] if row.results else [Path(self.results)]

    def planned(
        self, rows: list[str] | None = None, seeds: list[int] | None = None, cases: list[str] | None = None
    ) -> list[PlannedRun]:
        """Every run the rows (default: all) need, over their cases and seeds (default: the rows' own),
        or over the given ``cases`` only."""
        chosen = [self.row(name) for name in rows] if rows else self.rows
        unknown = sorted(set(cases or []) - set(self.cases))
        if unknown:
            raise ConfigError(f"experiment {self.protocol} has no case(s) {unknown}; cases: {list(self.cases)}")
        out = []
        for row in chosen:
            for case in row.cases if row.cases is not None else (list(self.cases) or [None]):
                if cases and case not in cases:
                    continue
                for seed in seeds if seeds is not None else (row.seeds or self.seeds):
                    overrides = [*(self.cases[case] if case else []), *row.set, f"seed={seed}"]
                    out.append(PlannedRun(row, case, seed, overrides))
        return out


@dataclass(frozen=True)
class PlannedRun:
    row: Row
    case: str | None
    seed: int
    overrides: list[str]

    @property
    def key(self) -> str:
        return "/".join(str(part) for part in (self.row.name, self.case, self.seed) if part is not None)

    @property
    def command(self) -> str:
        """The ``tsmoe train`` command that makes this run alone."""
        return " ".join(["tsmoe train", self.row.recipe, *(f"--set {item}" for item in self.overrides)])


def read_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file: unknown keys, rows without recipes, columns over unknown cases
    and cases with bad overrides are refused before anything runs."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"experiment file '{path}' does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"experiment file '{path}' is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"experiment file '{path}' must hold a mapping (protocol, title, rows, columns, ...)")
    raw = dict(raw)
    raw["rows"] = [build_dataclass(Row, r, f"{path}: rows[{i}]") for i, r in enumerate(raw.get("rows") or [])]
    raw["columns"] = [
        build_dataclass(Column, c, f"{path}: columns[{i}]") for i, c in enumerate(raw.get("columns") or [])
    ]
    experiment = build_dataclass(Experiment, raw, str(path))
    names = [row.name for row in experiment.rows]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: row names must be unique, got {names}")
    known = set(experiment.cases)
    for where, cases in [(f"row {r.name}", r.cases or []) for r in experiment.rows] + [
        (f"column {c.label}", c.cases) for c in experiment.columns
    ]:
        unknown = sorted(set(cases) - known)
        if unknown:
            raise ConfigError(f"{path}: {where} names unknown case(s) {unknown}; cases: {sorted(known)}")
    return experiment
