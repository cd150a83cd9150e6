"""What a finished (or paused) study leaves in its folder: ``trials.csv`` (every trial), ``best.yaml`` (the
best trial as a complete recipe) and, from :mod:`tsmoe.tuning.page`, ``tune.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from tsmoe import io as run_io
from tsmoe.config import resolve
from tsmoe.tuning.space import with_values
from tsmoe.tuning.study import TuneSettings

BEST, TRIALS_CSV = "best.yaml", "trials.csv"


def complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial; for several objectives, the Pareto-front trial best on the first one."""
    if not complete_trials(study):
        return None
    if len(study.directions) == 1:
        return study.best_trial
    first = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(study.best_trials, key=lambda t: t.values[0], reverse=first)[0]


def trials_table(study: optuna.Study, settings: TuneSettings) -> pd.DataFrame:
    """One row per trial: number, state, objective values, parameters, epochs, seconds, run folder; with
    several objectives a ``pareto`` column marks the front."""
    front = {t.number for t in study.best_trials} if len(study.directions) > 1 and complete_trials(study) else set()
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name.lower()}
        for i, name in enumerate(settings.objectives):
            complete = trial.state == TrialState.COMPLETE and trial.values is not None
            row[name] = trial.values[i] if complete else None  # a pruned trial's last epoch is not its result
        row.update(trial.params)
        row["epochs_validated"] = len(trial.intermediate_values) or None
        row["best_epoch"] = trial.user_attrs.get("best_epoch")
        row["seconds"] = trial.duration.total_seconds() if trial.duration else None
        if len(study.directions) > 1:
            row["pareto"] = trial.number in front
        row["run"] = trial.user_attrs.get("run", "")
        rows.append(row)
    return pd.DataFrame(rows)


def best_recipe(study: optuna.Study, settings: TuneSettings) -> str | None:
    """The best trial as a complete recipe: the study's recipe with the trial's values (its own logging
    settings, not the quiet ones the trials ran with), with a header saying where it came from."""
    best = best_trial(study)
    if best is None:
        return None
    config = resolve(with_values(settings.recipe, best.params))
    shown = ", ".join(f"{n} {v:.6g}" for n, v in zip(settings.objectives, best.values, strict=True))
    header = [
        f"# The best of {len(complete_trials(study))} complete trials of study '{settings.study_name}' "
        f"(trial {best.number}: {shown}, on the validation split).",
        f"# Its run: {best.user_attrs.get('run', '?')}. Found by: {settings.command}",
        f"# Values of the search: {yaml.safe_dump(best.params, default_flow_style=True, width=10**6).strip()}",
    ]
    return "\n".join(header) + "\n" + config.to_yaml()


def write_outputs(study: optuna.Study, settings: TuneSettings) -> dict[str, Path]:
    """Write ``trials.csv``, ``best.yaml`` (once a trial has completed) and ``tune.html``; their paths."""
    from tsmoe.tuning.page import write_page

    out = settings.out
    written = {}
    table = trials_table(study, settings)
    run_io.write_text(out / TRIALS_CSV, table.to_csv(index=False))
    written["trials"] = out / TRIALS_CSV
    recipe = best_recipe(study, settings)
    if recipe is not None:
        run_io.write_text(out / BEST, recipe)
        written["best"] = out / BEST
    written["page"] = write_page(study, settings, table)
    return written
