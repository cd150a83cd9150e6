"""A tuning study on Optuna: its storage, sampler and pruner, the objective that trains one run per trial
by the one training path, and the worker loop that several processes (or machines) run on one study.

Optuna owns the sampling, the pruning and the study store; tsmoe owns what a trial is: a run folder
``DIR/trials/NNNN`` trained from the recipe with the trial's values, selected on the validation split
only (the test split is not scored during a search).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from filelock import FileLock
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from tsmoe import io as run_io
from tsmoe.config import resolve
from tsmoe.errors import ConfigError, TrainingInterrupted, TsmoeError
from tsmoe.estimator import Estimator
from tsmoe.tasks import monitor_mode
from tsmoe.tuning.space import SearchSpace, with_values

# objectives read from a finished run's meta.json, all lower-is-better; any other objective is a
# validation metric the run logged (``val_*``), taken at the selected epoch
RUN_FACTS = ("seconds_per_epoch", "train_seconds", "n_parameters")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts towards --trials (failed trials are redrawn)
TRIALS = "trials"


class TrialFailed(TsmoeError):
    """A trial whose run could not train (a setting the data refuses, a loss that became NaN): recorded
    as failed in the study, and the search goes on."""


@dataclass
class TuneSettings:
    """Everything a worker needs (plain data, so it crosses to a spawned process)."""

    recipe: dict[str, Any]  # the resolved recipe with the --set overrides, as a mapping
    space: SearchSpace
    out: Path
    study_name: str
    storage_url: str
    trials: int
    objectives: list[str]  # [monitor] for a plain study
    directions: list[str]  # "minimize" / "maximize", one per objective
    monitor: str  # the metric the runs select their epoch on
    heartbeat: int = 60  # seconds; a trial silent for 2 heartbeats is failed and redrawn
    workers: int = 1
    command: str = ""


def objective_direction(name: str, monitor: str) -> str:
    """Optuna's direction of one objective; an objective that is not validation-only is refused."""
    if name in RUN_FACTS:
        return "minimize"
    if not name.startswith("val_"):
        raise ConfigError(
            f"objective '{name}': a study may optimise validation metrics (val_*, e.g. {monitor}) or "
            f"{', '.join(RUN_FACTS)}; never the test split"
        )
    return "minimize" if monitor_mode(name) == "min" else "maximize"


def open_storage(url: str, heartbeat: int) -> RDBStorage:
    """The study's database, with heartbeats: a trial whose process died (killed, machine lost) is failed
    after two silent heartbeats, and :class:`RetryHeartbeatStaleTrialCallback` queues its values again. A URL
    that cannot be opened (no driver, no server, a typo) is a ConfigError naming it."""
    import sqlalchemy.exc

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}  # waits for a busy SQLite file
    for attempt in range(4):  # machines starting together on a new database race to create its tables
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=heartbeat,
                    grace_period=2 * heartbeat,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except ImportError as error:
            cause = f" ({error.__cause__})" if error.__cause__ else ""
            raise ConfigError(f"--storage {url}: its database driver is not installed{cause}; for PostgreSQL "
                              "pip install 'psycopg[binary]', for MySQL pip install PyMySQL") from None  # fmt: skip
        except (sqlalchemy.exc.SQLAlchemyError, ValueError) as error:
            refused = isinstance(error, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.ProgrammingError)
            if refused and attempt < 3:
                time.sleep(1.0 + attempt)
                continue
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"--storage {url}: cannot open the database: {first}") from None
    raise AssertionError("unreachable")


def fingerprint(settings: TuneSettings) -> dict[str, Any]:
    """What must not change between the sittings and the workers of one study."""
    return {
        "recipe": resolve(settings.recipe).to_dict(),
        "space": settings.space.text,
        "objectives": settings.objectives,
    }


def same_recipe(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether two resolved recipes agree on every key both have (a setting added to tsmoe since the study
    started, at its default, does not stop the study from continuing)."""
    for section in set(stored) | set(wanted):
        old, new = stored.get(section), wanted.get(section)
        if isinstance(old, dict) and isinstance(new, dict):
            if any(old[key] != new[key] for key in set(old) & set(new)):
                return False
        elif old != new:
            return False
    return True


def sampler(settings: TuneSettings, worker: int, existing: int = 0) -> optuna.samplers.BaseSampler:
    """The space's sampler for one worker; seeded by the worker and by the trials the study already has, so
    neither two workers nor two sittings draw the same random sequence."""
    spec = settings.space.sampler
    seed = spec.seed + 1000 * existing + worker
    if not settings.storage_url.startswith("sqlite"):  # a shared server: machines must not draw alike either
        seed += zlib.crc32(f"{socket.gethostname()}:{settings.out}".encode()) * 100_000
    seed %= 2**32  # what NumPy's generators take
    if spec.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():  # multivariate/group TPE is marked experimental by Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=spec.startup_trials, seed=seed, multivariate=True, group=True, constant_liar=True
        )


def pruner(settings: TuneSettings) -> optuna.pruners.BasePruner:
    spec = settings.space.pruner
    if spec.name == "none" or len(settings.objectives) > 1:  # Optuna prunes single-objective studies only
        return optuna.pruners.NopPruner()
    if spec.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=spec.min_epochs, reduction_factor=spec.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_epochs)


def open_study(settings: TuneSettings, worker: int = 0) -> optuna.Study:
    """Create the study, or load it and check that it was started with the same recipe, space and objectives."""
    # tsmoe prints a line per trial, a failed one with its reason; Optuna's own warning adds a traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(settings.storage_url, settings.heartbeat)
    study = optuna.create_study(
        storage=storage,
        study_name=settings.study_name,
        directions=settings.directions,
        sampler=sampler(settings, worker),
        pruner=pruner(settings),
        load_if_exists=True,
    )
    study.sampler = sampler(settings, worker, len(study.get_trials(deepcopy=False)))
    if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in settings.directions]:
        raise ConfigError(f"study '{settings.study_name}' was started with other objectives; use another --study")
    stored, wanted = study.user_attrs.get("tsmoe"), fingerprint(settings)
    if stored is None:
        study.set_user_attr("tsmoe", wanted)
        if settings.space.start_from_recipe:  # the hand-chosen recipe is trial 0: the search starts from it
            study.enqueue_trial(settings.space.recipe_values(settings.recipe), skip_if_exists=True)
    elif not same_recipe(stored["recipe"], wanted["recipe"]) or stored["space"] != wanted["space"] or (
        stored["objectives"] != wanted["objectives"]
    ):
        differs = [key for key in wanted if key != "recipe" and stored.get(key) != wanted[key]]
        differs += [] if same_recipe(stored["recipe"], wanted["recipe"]) else ["recipe"]
        raise ConfigError(
            f"study '{settings.study_name}' was started with another {' and '.join(differs)}; continue it with "
            "the same recipe, --set values, space and objectives, or start a new study (--study NAME or --out DIR)"
        )
    return study


def trial_folder(out: Path, number: int) -> Path:
    return out / TRIALS / f"{number:04d}"


def objective_values(estimator: Estimator, folder: Path, settings: TuneSettings) -> list[float]:
    """The objectives of a finished trial: its best validation score, run facts, or other validation metrics
    at the selected epoch (from ``logs/metrics.csv``)."""
    meta = estimator.meta_
    values = []
    for name in settings.objectives:
        if name == meta["monitor"]:
            values.append(float(meta["best_score"]))
        elif name in RUN_FACTS:
            values.append(float(meta[name]))
        else:
            logged = folder / "logs" / "metrics.csv"
            if not logged.exists():
                raise TrialFailed(f"objective '{name}' needs the run's logs/metrics.csv (logging.csv: true)")
            frame = pd.read_csv(logged)
            if name not in frame:
                raise TrialFailed(f"objective '{name}' was not logged by the run; logged: {sorted(frame.columns)}")
            at_best = frame.loc[frame["epoch"] == meta["best_epoch"], name].dropna()
            values.append(float(at_best.iloc[-1]))
    return values


def run_trial(trial: optuna.Trial, settings: TuneSettings) -> float | list[float]:
    """Train the run of one trial and return its objective value(s); pruning is fed after every epoch."""
    from optuna_integration import PyTorchLightningPruningCallback

    values = settings.space.suggest(trial)
    folder = trial_folder(settings.out, trial.number)
    trial.set_user_attr("run", str(folder))
    record = {"study": settings.study_name, "number": trial.number, "params": values}
    raw = with_values(settings.recipe, values)
    raw["logging"] = {**raw.get("logging", {}), "progress_bar": False, "epoch_lines": False}  # a line per trial
    # a trial is its validation score, which a refit (training.refit) cannot change: it would only double the
    # trial's time; best.yaml keeps the recipe's refit, so training the best trial refits it
    raw["training"] = {**raw.get("training", {}), "refit": False}
    callbacks = []
    if len(settings.objectives) == 1 and settings.space.pruner.name != "none":
        callbacks.append(PyTorchLightningPruningCallback(trial, settings.monitor))
    try:
        config = resolve(raw)
        estimator = Estimator.from_config(config).fit(
            run_dir=folder, callbacks=callbacks, score_test=False, meta={"trial": record}
        )
    except optuna.TrialPruned:
        _finish_folder(folder, {**record, "state": "pruned", "epochs": _epochs_logged(trial)})
        raise
    except TrainingInterrupted:
        raise TrainingInterrupted(
            f"tuning was interrupted in trial {trial.number}; the same command continues the study"
        ) from None
    except TsmoeError as error:  # refused before its folder was made, too: the folder says why
        folder.mkdir(parents=True, exist_ok=True)
        _finish_folder(folder, {**record, "state": "failed", "error": str(error)})
        trial.set_user_attr("error", str(error))  # for its line, and the study's error if it stops
        raise TrialFailed(f"trial {trial.number} ({values}): {error}") from None
    scores = objective_values(estimator, folder, settings)
    trial.set_user_attr("best_epoch", estimator.meta_["best_epoch"])
    trial.set_user_attr("seconds_per_epoch", estimator.meta_["seconds_per_epoch"])
    if any(not math.isfinite(v) for v in scores):
        trial.set_user_attr("error", f"objective values {scores} are not finite")
        raise TrialFailed(f"trial {trial.number}: objective values {scores} are not finite")
    return scores[0] if len(scores) == 1 else scores


def _epochs_logged(trial: optuna.Trial) -> int:
    return len(trial.storage.get_trial(trial._trial_id).intermediate_values)


def _finish_folder(folder: Path, record: dict[str, Any]) -> None:
    """A trial that did not finish keeps its logs and config, and says why in ``trial.json``; its resume
    checkpoint goes (a pruned trial is not continued)."""
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    (folder / "best.safetensors").unlink(missing_ok=True)
    run_io.write_json(folder / "trial.json", record)


def counted(study: optuna.Study, out: Path | None = None) -> int:
    """Trials completed or pruned: in the whole study, or those whose run folder lies in ``out``."""
    trials = study.get_trials(deepcopy=False, states=COUNTED)
    if out is not None:
        trials = [t for t in trials if Path(t.user_attrs.get("run", "")).parent.parent == out]
    return len(trials)


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, settings: TuneSettings, worker: int) -> str:
    """One line per finished trial: ``trial 7 (worker 1): val_auroc 0.8412 [lr=...], 7/40 done, 312 s``."""
    shown = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in trial.params.items())
    if trial.state == TrialState.COMPLETE:
        result = ", ".join(f"{n} {v:.4g}" for n, v in zip(settings.objectives, trial.values, strict=True))
    elif trial.state == TrialState.PRUNED:
        result = f"pruned after {len(trial.intermediate_values)} epochs"
    else:  # why, as the trial's folder says in trial.json
        result = f"failed ({trial.user_attrs['error']})" if "error" in trial.user_attrs else "failed"
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    return (f"trial {trial.number} (worker {worker}): {result} [{shown}], "
            f"{counted(study)}/{settings.trials} done, {seconds:.0f} s")  # fmt: skip


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def run_worker(settings: TuneSettings, worker: int = 0) -> None:
    """Run trials on the study until ``settings.trials`` trials have completed or been pruned (counting
    every worker's, and earlier sittings'); one of several processes, or the only one."""
    import torch

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, grouped TPE
    if settings.workers > 1 and "OMP_NUM_THREADS" not in os.environ:  # the cores shared out, not oversubscribed
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.workers))
    study = open_study(settings, worker)
    states: list[TrialState] = []  # this worker's trials, in order
    reasons: list[str] = []  # why each failed

    def finished(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        states.append(trial.state)
        reasons.append(trial.user_attrs.get("error", "see its trial.json"))
        print(trial_line(study, trial, settings, worker), flush=True)

    # checking the count and starting a trial happen under a lock shared by this folder's workers, so the
    # study stops at exactly --trials (processes on other machines may still start one more each)
    asking = FileLock(settings.out / ".ask.lock")

    def objective(trial: optuna.Trial) -> float | list[float]:
        asking.release()  # the trial is in the database as running: the next worker may count it
        return run_trial(trial, settings)

    while True:
        with asking:
            optuna.storages.fail_stale_trials(study)  # trials of dead processes: failed, their values queued again
            done = counted(study)
            if done >= settings.trials:
                break
            running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
            start = done + running < settings.trials or waiting > 0
            if start:
                asking.acquire()  # held until the trial exists (released in `objective`, or just below)
        if not start:  # the last trials are running elsewhere: wait for them (or for them to go stale)
            time.sleep(min(settings.heartbeat, 5))
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=[finished])
        finally:
            while asking.is_locked:
                asking.release()
        if states[-3:] == [TrialState.FAIL] * 3:
            raise TsmoeError(
                f"three trials in a row failed, the last because {reasons[-1]}; each failed trial's folder has a "
                "trial.json saying why"
            )


def _worker_process(settings: TuneSettings, worker: int) -> None:
    """Entry point of a spawned worker: errors are printed, and the exit status says whether it failed."""
    import sys

    try:
        run_worker(settings, worker)
    except (KeyboardInterrupt, TrainingInterrupted):
        sys.exit(130)
    except TsmoeError as error:
        print(f"tsmoe: worker {worker}: error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)


def run_workers(settings: TuneSettings) -> float:
    """Run the study's remaining trials in ``settings.workers`` processes (this one if 1); wall seconds."""
    import multiprocessing

    started = time.perf_counter()
    if settings.workers == 1:
        run_worker(settings, 0)
        return time.perf_counter() - started
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each: no forked torch threads
    processes = [context.Process(target=_worker_process, args=(settings, i)) for i in range(settings.workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: let them record their trials as failed
        for process in processes:
            process.join(timeout=60)
        raise TrainingInterrupted("tuning was interrupted; the same command continues the study") from None
    failed = [i for i, p in enumerate(processes) if p.exitcode != 0]
    if failed:
        codes = [processes[i].exitcode for i in failed]
        if 130 in codes:
            raise TrainingInterrupted("tuning was interrupted; the same command continues the study")
        raise TsmoeError(f"tuning worker(s) {failed} stopped with an error (above); the same command continues")
    return time.perf_counter() - started
