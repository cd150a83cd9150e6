"""The one runner of the training benchmarks: every planned run of an experiment not yet in its results
file is trained by the one training path (``Estimator``, as ``tsmoe train`` does) and stored.

A stopped benchmark continues where it stopped (stored runs are skipped), and several processes may
share one results file (one per seed, say).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tsmoe.config import load_config
from tsmoe.errors import ConfigError
from tsmoe.estimator import Estimator
from tsmoe.experiments.results import add_run, machine, read_results, runs_of
from tsmoe.experiments.spec import Experiment, PlannedRun

log = logging.getLogger(__name__)


def train_run(planned: PlannedRun, runs_dir: Path | None = None) -> dict[str, Any]:
    """Train one planned run (in ``runs_dir/<key>`` if given, else a scratch folder) and describe it."""
    config = load_config(planned.row.recipe, planned.overrides)
    started = time.perf_counter()
    if runs_dir is not None:
        folder = runs_dir / planned.key.replace("/", "-")
        estimator = Estimator.from_config(config).fit(run_dir=folder)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            estimator = Estimator.from_config(config).fit(run_dir=scratch)
    meta = estimator.meta_
    return {
        "command": planned.command,
        "test": estimator.metrics_,
        "validation": validation_metrics(estimator),
        "monitor": meta["monitor"],
        "best_score": meta["best_score"],
        "best_epoch": meta["best_epoch"],
        "epochs_run": meta["epochs_run"],
        "train_seconds": meta["train_seconds"],
        "seconds_per_epoch": meta["seconds_per_epoch"],
        "wall_seconds": time.perf_counter() - started,
        "n_parameters": meta["n_parameters"],
        "config": config.to_dict(),
        "machine": machine(),
    }


def validation_metrics(estimator: Estimator) -> dict[str, float]:
    """Every metric of the chosen model on the validation split (what may choose between rows, since the
    test split may not); for a refit run, those of the model chosen before the refit saw these items."""
    if "refit" in estimator.meta_:
        return estimator.meta_["refit"]["validation_before_refit"]
    prepared = estimator.prepare_data()
    return estimator.score_part(prepared, prepared.val)


def run_experiment(
    experiment: Experiment,
    source: str,
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
    out: Path | None = None,
    runs_dir: Path | None = None,
    cases: list[str] | None = None,
    train: Callable[[PlannedRun, Path | None], dict[str, Any]] = train_run,
) -> list[str]:
    """Train every planned run (of ``rows``, ``seeds`` and ``cases``, default all) missing from its results
    file (``out`` instead of the rows' own files, to reproduce stored runs beside them) and return the keys
    trained. ``source`` is the experiment file's
    path, recorded in the results."""
    trained = []
    for planned in experiment.planned(rows, seeds, cases):
        files = [out] if out else experiment.results_files(planned.row)
        if planned.key in runs_of(files, planned.row.name):
            continue
        if isinstance(read_results(files[0]).get("runs"), list):
            raise ConfigError(
                f"{files[0]} holds the runs of row '{planned.row.name}' in the earlier one-row form: give the "
                "new runs another file (benchmarks/run.py --out FILE, or the row's results list first)"
            )
        log.info("training %s: %s", planned.key, planned.command)
        run = train(planned, runs_dir)
        add_run(files[0], planned.key, run, {"protocol": experiment.protocol, "experiment": source})
        trained.append(planned.key)
    return trained


def rescore_experiment(
    experiment: Experiment,
    source: str,
    runs_dir: Path,
    rows: list[str] | None = None,
    seeds: list[int] | None = None,
    out: Path | None = None,
    cases: list[str] | None = None,
) -> list[str]:
    """Score again, with the current metrics code, every stored run whose folder ``runs_dir`` keeps (metrics
    added since it was trained, such as intervals): its ``test`` and ``validation`` metrics are replaced and
    ``rescored`` records the machine; the training facts stay. A run whose folder is missing stays as stored;
    a folder whose point metrics differ from the stored run's is refused (it is not that run). Returns the
    keys rescored."""
    rescored = []
    for planned in experiment.planned(rows, seeds, cases):
        file = out or experiment.results_files(planned.row)[0]
        stored = runs_of([file], planned.row.name).get(planned.key)
        folder = runs_dir / planned.key.replace("/", "-")
        if stored is None or not (folder / "meta.json").exists():
            continue
        estimator = Estimator.load(folder)
        test = estimator.score(estimator.prepare_data())
        for metric, value in stored["test"].items():
            if isinstance(value, float) and abs(test.get(metric, value) - value) > 1e-6 * max(abs(value), 1e-12):
                raise ConfigError(f"{folder} scores {metric} {test[metric]}, not the stored {value} of "
                                  f"{planned.key}: it is not that run")  # fmt: skip
        run = {**stored, "test": test, "validation": validation_metrics(estimator), "rescored": machine()}
        add_run(file, planned.key, run, {"protocol": experiment.protocol, "experiment": source})
        rescored.append(planned.key)
    return rescored
