"""``tsmoe tune`` from start to end: check everything (recipe, space, objectives, folder, study) before any
trial runs, run the remaining trials in one or several processes, and write the study's outputs.

The same command continues a stopped study: finished trials are kept, a trial whose process was killed is
failed after two missed heartbeats and its values drawn again, and the study stops at ``trials`` trials
completed or pruned, whatever the number of sittings, workers or machines that ran them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from tsmoe import io as run_io
from tsmoe.config import load_config, with_absolute_paths
from tsmoe.errors import ConfigError
from tsmoe.estimator import Estimator
from tsmoe.tuning.outputs import best_trial, write_outputs
from tsmoe.tuning.space import read_space
from tsmoe.tuning.study import (
    TRIALS,
    TuneSettings,
    counted,
    objective_direction,
    open_storage,
    open_study,
    run_workers,
)

STUDY_DB, FOLDER_RECORD = "study.db", "tune.json"


@dataclass
class TuneResult:
    """What a sitting of a study did and left."""

    study: optuna.Study
    settings: TuneSettings
    seconds: float  # wall time of this sitting's trials
    ran: int  # trials completed or pruned in this sitting, in this folder
    files: dict[str, Path]


def settings_for(
    config: str,
    space: str,
    trials: int,
    out: str,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
    objectives: list[str] | None = None,
    overrides: list[str] | None = None,
    heartbeat: int = 60,
    command: str = "",
) -> TuneSettings:
    """Read and check the recipe (with ``overrides``), the space and the objectives; refuse a folder that
    belongs to another study. Reads the data once to learn the task (and to report bad data now)."""
    for name, value in (("--trials", trials), ("--workers", workers), ("--heartbeat", heartbeat)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    run_config = with_absolute_paths(load_config(config, overrides or []))
    recipe = run_config.to_dict()
    searched = read_space(space, recipe)
    monitor, _ = Estimator.from_config(run_config).selection_metric()
    objectives = list(objectives or [monitor])
    if len(set(objectives)) != len(objectives):
        raise ConfigError(f"--objectives {objectives} names an objective twice")
    directions = [objective_direction(name, monitor) for name in objectives]
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out '{folder}' is a file; it takes the study's folder")
    name = study or folder.resolve().name
    url = storage or f"sqlite:///{(folder / STUDY_DB).resolve()}"
    _check_folder(folder, name, url)
    if storage is not None:  # a server's URL is checked now (a SQLite file is made when the study starts)
        open_storage(storage, heartbeat)
    return TuneSettings(
        recipe=recipe, space=searched, out=folder.resolve(), study_name=name, storage_url=url, trials=trials,
        objectives=objectives, directions=directions, monitor=monitor, heartbeat=heartbeat, workers=workers,
        command=command,
    )  # fmt: skip


def _check_folder(folder: Path, study: str, url: str) -> None:
    """One folder holds the trials of one study: a folder started for another study, or holding files
    that are not a study's, is refused (nothing in it is touched)."""
    record_path = folder / FOLDER_RECORD
    if record_path.exists():
        record = run_io.read_json(record_path)
        if record != {"study": study, "storage": url}:
            raise ConfigError(
                f"'{folder}' holds study '{record['study']}' (storage {record['storage']}); continue it with the "
                "same --study and --storage, or give another --out"
            )
    elif folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"'{folder}' is not empty and holds no tsmoe study ({FOLDER_RECORD}); give another --out")


def run_study(settings: TuneSettings) -> TuneResult:
    """Open (or continue) the study, run its remaining trials and write ``trials.csv``, ``best.yaml`` and
    ``tune.html``."""
    settings.out.mkdir(parents=True, exist_ok=True)
    (settings.out / TRIALS).mkdir(exist_ok=True)
    study = open_study(settings)  # creates the database and checks a continued study's recipe and space
    run_io.write_json(settings.out / FOLDER_RECORD, {"study": settings.study_name, "storage": settings.storage_url})
    before = counted(study, settings.out)
    seconds = run_workers(settings) if counted(study) < settings.trials else 0.0
    study = open_study(settings)  # the workers' trials, read back
    files = write_outputs(study, settings)
    return TuneResult(study, settings, seconds, counted(study, settings.out) - before, files)


def summary(result: TuneResult) -> str:
    """What a person reads at the end: counts, time, the best trial and where the files are."""
    study, settings = result.study, result.settings
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    lines = [
        f"study '{settings.study_name}': " + ", ".join(f"{n} {s}" for s, n in states.items())
        + f"; this sitting ran {result.ran} in {result.seconds:.0f} s"
    ]  # fmt: skip
    best = best_trial(study)
    if best is not None:
        shown = ", ".join(f"{n} {v:.4f}" for n, v in zip(settings.objectives, best.values, strict=True))
        lines.append(f"best: trial {best.number} ({shown}, validation) {best.params}")
    lines += [f"{kind}: {path}" for kind, path in result.files.items()]
    if "best" in result.files:
        lines.append(f"next: tsmoe train {result.files['best']} --out RUN   (then its test metrics, once)")
    return "\n".join(lines)
