"""The estimator: ``fit``, ``predict``, ``predict_proba``, ``evaluate``, ``save`` and ``load``.

One object wraps one run config (data set, model, training, trainer). It is the single path every
model trains through; the ``tsmoe`` command is a thin layer over it.

>>> est = Estimator("dlinear", "etth1", data_params={"horizon": 96}, training={"max_epochs": 10})
>>> est.fit(run_dir="runs/dlinear")          # trains, picks the best validation epoch, scores the test split
>>> est.metrics_                              # {'mse': ..., 'mae': ...} (z-scored, as P4 reports: no MAPE)
>>> Estimator.load("runs/dlinear").evaluate() # the same numbers, from the saved files
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from tsmoe import io as run_io
from tsmoe.config import RunConfig, resolve, with_absolute_paths
from tsmoe.data.adapter import DataAdapter, Source, check_text_encoder, text_encoder_name
from tsmoe.data.fixed_windows import TextWindowSplits
from tsmoe.data.irregular import IrregularSet
from tsmoe.data.prepared import PreparedData, SplitChoice, note_a_small_validation
from tsmoe.data.registry import get_dataset
from tsmoe.data.sampling import data_step
from tsmoe.data.series import SeriesSet
from tsmoe.errors import ConfigError, DataError, TrainingError, TrainingInterrupted
from tsmoe.forecast import forecast_data_set, forecast_table, rolling_interval_widths
from tsmoe.intervals import check_calibration, check_levels, validation_residuals, with_interval_columns
from tsmoe.models.output import unpack
from tsmoe.models.registry import build_model
from tsmoe.params import build_dataclass
from tsmoe.paths import launch_rank
from tsmoe.predict import predict_table
from tsmoe.quantile_intervals import check_conformal, quantile_pairs, with_quantile_interval_columns
from tsmoe.tasks import classification_task, get_task, monitor_mode
from tsmoe.training.calibration import check_calibration_method
from tsmoe.training.numerics import flushed_subnormals
from tsmoe.training.venn_abers import VennAbers, one_per_entity
from tsmoe.version import __version__


def fit_or_report_interruption(
    trainer: Any, run_dir: Path | None, module: Any, flush: bool = True, **fit_args: Any
) -> None:
    """``trainer.fit`` (with subnormal floats flushed to zero, ``flush``), with Ctrl-C reported as
    :class:`TrainingInterrupted` (saying how to resume).

    Lightning answers a KeyboardInterrupt by shutting the trainer down and exiting the process with status 1
    (and ignoring further Ctrl-C); this turns that exit into an error the caller can catch, and gives
    Ctrl-C back its default meaning."""
    try:
        with flushed_subnormals(flush):
            trainer.fit(module, **fit_args)
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        where = (
            f"the checkpoint of the last finished epoch is kept: continue with tsmoe train --resume {run_dir}"
            if run_dir is not None
            else "nothing was saved (the run had no run folder)"
        )
        raise TrainingInterrupted(f"training was interrupted in epoch {trainer.current_epoch}; {where}") from None


def check_run_folder(folder: Path, overwrite: bool) -> None:
    """Refuse a run folder that cannot take a new run: a file, a folder holding files (unless ``overwrite``),
    or, with ``overwrite``, a folder of other files than a run's (no ``config.yaml``: not a run folder)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"run folder '{folder}' is a file; --out takes a folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not overwrite:
        raise ConfigError(
            f"run folder '{folder}' is not empty; choose another --out, pass --overwrite, "
            f"or continue a stopped run with --resume {folder}"
        )
    if not (folder / run_io.CONFIG).exists():
        raise ConfigError(
            f"'{folder}' is not a tsmoe run folder (it has no {run_io.CONFIG}), and --overwrite replaces run "
            "folders only; choose another --out"
        )


def start_run_folder(folder: Path, config_yaml: str, overwrite: bool) -> None:
    """Empty an old run folder (``overwrite``), so it holds only the new run, and write the new config."""
    check_run_folder(folder, overwrite)
    if folder.is_dir():
        for child in folder.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    run_io.write_text(folder / run_io.CONFIG, config_yaml)


def keep_previous_logs(folder: Path) -> None:
    """Lightning's CSV logger empties ``logs/metrics.csv`` when it starts; a resumed run keeps what the
    interrupted one logged by renaming it ``metrics-before-resume-N.csv`` first."""
    logs = folder / "logs" / "metrics.csv"
    if logs.exists():
        count = len(list(logs.parent.glob("metrics-before-resume-*.csv")))
        logs.rename(logs.with_name(f"metrics-before-resume-{count + 1}.csv"))


class Estimator:
    """A model and its data recipe, trained through Lightning.

    ``model`` and ``data`` are registry names; the dictionaries hold the keys of the config sections
    (see ``configs/`` and :mod:`tsmoe.config`). Fitted state ends in ``_``: ``model_``, ``meta_``,
    ``state_`` (preprocessing statistics), ``metrics_`` (test metrics).
    """

    def __init__(
        self,
        model: str = "lstm",
        data: str = "physionet2012",
        *,
        seed: int = 0,
        model_params: dict[str, Any] | None = None,
        data_params: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        trainer: dict[str, Any] | None = None,
        logging: dict[str, Any] | None = None,
    ) -> None:
        sections = {"model_params": model_params, "data_params": data_params, "training": training,
                    "trainer": trainer, "logging": logging}  # fmt: skip
        for name, section in sections.items():
            if section is not None and not isinstance(section, Mapping):
                raise ConfigError(f"{name} is a mapping of settings ({{key: value}}), got {section!r}")
        self.config = resolve(
            {
                "seed": seed,
                "data": {"name": data, **(data_params or {})},
                "model": {"name": model, **(model_params or {})},
                "training": training or {},
                "trainer": trainer or {},
                "logging": logging or {},
            }
        )

    @classmethod
    def from_config(cls, config: RunConfig) -> Estimator:
        estimator = cls.__new__(cls)
        estimator.config = config
        return estimator

    # ---- data ----------------------------------------------------------------------------------

    def _data_params(self, overrides: dict[str, Any] | None = None) -> Any:
        values = dict(self.config.data)
        entry = get_dataset(values.pop("name"))
        for key, companions in entry.companions.items():  # new data brings its own labels, descriptors, split
            if key in (overrides or {}):
                for companion in companions:
                    values.pop(companion, None)
        values.update(overrides or {})
        params = build_dataclass(entry.params, values, "data")
        if hasattr(self, "meta_"):  # a trained run reads text only with the encoder it was trained with
            check_text_encoder(params, self.meta_.get("text_encoder"))
        return params, entry

    def data_params(self) -> Any:
        """The run's ``data`` settings as their dataclass, defaults filled in (e.g. ``text_encoder``)."""
        return self._data_params()[0]

    def _load_source(self, source: Any, params: Any, entry: DataAdapter) -> Source:
        """The data set's own source (``source`` None), a long-format frame of the user's read by the data
        set's rules, or a source object given as it is (the adapter checks its type when it prepares)."""
        if source is None:
            return entry.load(params)
        if isinstance(source, pd.DataFrame):
            return entry.from_frame(source, params)
        if isinstance(source, IrregularSet | SeriesSet | TextWindowSplits):
            return source
        raise DataError(
            f"cannot use a {type(source).__name__} as data: "
            "pass a long-format DataFrame, a SeriesSet or an IrregularSet"
        )

    def _loader(self, dataset: Dataset, collate: Any, shuffle: bool, batch_size: int) -> DataLoader:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=collate,
            num_workers=self.config.training.num_workers,
            generator=generator,
            persistent_workers=self.config.training.num_workers > 0,
        )

    # ---- training -----------------------------------------------------------------------------

    def fit(
        self,
        data: Any = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Any] = (),
        overwrite: bool = False,
        score_test: bool = True,
        meta: dict[str, Any] | None = None,
    ) -> Estimator:
        """Train on ``data`` (default: the configured data set), choosing the epoch on validation only;
        then score the test split once and, if ``run_dir`` is given, save the run there. ``callbacks``
        (Lightning callbacks, e.g. :class:`tsmoe.analysis.callbacks.SpectralTracker`) are added to the
        trainer of the main phase. A ``run_dir`` that holds files is refused unless ``overwrite``, which
        replaces a run folder (and nothing else) once the data and the model have started cleanly.

        A run with a ``run_dir`` writes a checkpoint after every epoch. ``resume=True`` continues from
        it (see :meth:`resume`): the same seed then gives the same weights as a run never interrupted.
        ``score_test=False`` leaves the test split unscored (a tuning trial: ``tsmoe evaluate`` scores it
        later); ``meta`` adds entries to ``meta.json`` (a trial's study, number and values).
        """
        from torch.utils.data import default_collate

        from tsmoe.training.distillation import SoftTargets, teacher_probabilities, with_soft_targets
        from tsmoe.training.memory import keep_freed_memory
        from tsmoe.training.seed import seed_everything
        from tsmoe.training.text_choice import wants_text_choice
        from tsmoe.training.threads import use_threads
        from tsmoe.training.trainer import build_trainer, checkpoint_path

        if run_dir is not None:  # the run folder keeps absolute paths: it is read again from any folder
            self.config = with_absolute_paths(self.config)
        if wants_text_choice(self.config):
            return self._fit_choosing_text(data, run_dir, resume, callbacks, overwrite, score_test, meta)
        if run_dir is not None and not resume and launch_rank() == 0:
            check_run_folder(Path(run_dir), overwrite)  # before any data is read
        params, entry = self._data_params()
        source = self._load_source(data, params, entry)
        prepared = entry.prepare(params, source, self.config.seed)
        if len(prepared.train) == 0 or len(prepared.val) == 0:
            raise DataError(
                f"the training or validation split is empty ({len(prepared.train)} / {len(prepared.val)} items)"
            )
        note_a_small_validation(prepared)
        training = self.config.training
        if training.calibrate != "none":
            check_calibration_method(training.calibrate, prepared.task, "training.calibrate")
        train_set, train_collate = prepared.train, prepared.collate
        if training.distill_from:  # soft targets from the teachers, computed once, before any model is built
            teacher = teacher_probabilities(
                training.distill_from,
                prepared,
                self.config.data["name"],
                training.distill_teacher_weights,
                load_run=Estimator.load,
            )
            train_set = SoftTargets(prepared.train, teacher, training.distill_weight)
            train_collate = with_soft_targets(prepared.collate or default_collate)
        threads = use_threads(training.threads)  # before the model: a busy machine gets fewer threads
        freed_memory_kept = keep_freed_memory(training.keep_freed_memory)
        seed_everything(self.config.seed)
        self.temperature_ = self.venn_abers_ = None  # fitted after training, where training.calibrate asks
        self.model_ = build_model(self.config.model, prepared.dims, prepared.task, prepared.input_kind)
        monitor, mode = self._selection_metric(prepared.task)
        folder = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="tsmoe-run-"))
        module = self._module(prepared, monitor, mode)
        trainer, best = build_trainer(self.config, folder, monitor, mode, callbacks)  # refuses bad trainer settings
        if trainer.world_size > 1 and run_dir is None:
            raise ConfigError("a run on several processes needs run_dir: a folder every process can read")
        if run_dir is not None and not resume and launch_rank() == 0:
            # data, teachers, model and trainer are known good now: a start that failed before left nothing
            # behind, and from here a run killed at any moment resumes
            start_run_folder(Path(run_dir), self.config.to_yaml(), overwrite)
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = checkpoint_path(folder)
        resume_from = checkpoint if resume and checkpoint.exists() else None
        if resume:
            keep_previous_logs(folder)
        train_loader = self._loader(train_set, train_collate, True, training.batch_size)
        module.shuffle_generator = train_loader.generator
        started = time.perf_counter()
        fit_or_report_interruption(
            trainer,
            folder if run_dir is not None else None,
            module,
            training.flush_subnormals,
            train_dataloaders=train_loader,
            val_dataloaders=self._loader(prepared.val, prepared.collate, False, self.config.training.eval_batch_size),
            ckpt_path=resume_from,
        )
        train_seconds = time.perf_counter() - started
        self.is_global_zero_ = trainer.is_global_zero
        self.model_ = self.model_.cpu()
        if trainer.world_size > 1:
            trainer.strategy.barrier()  # the best weights are written by process 0
        run_io.load_weights_into(self.model_, best.path)
        self.state_ = prepared.state
        refit = self._refit(prepared, best.best_epoch + 1, folder, monitor, mode) if training.refit else None
        calibrates = training.calibrate != "none" and self.is_global_zero_
        calibration = self._calibrate(prepared, training.calibrate) if calibrates else None
        self.split_ = prepared.split
        self.meta_ = {
            "tsmoe_version": __version__,
            "task": prepared.task,
            "input_kind": prepared.input_kind,
            "dims": prepared.dims,
            "target_channels": prepared.target_channels,
            "channel_names": list(prepared.channel_names),
            "static_names": list(prepared.static_names),
            "monitor": monitor,
            "best_epoch": best.best_epoch,
            "best_score": best.best_score,
            "epochs_run": trainer.current_epoch,
            "train_seconds": train_seconds,
            "seconds_per_epoch": train_seconds / max(trainer.current_epoch, 1),
            "n_parameters": sum(p.numel() for p in self.model_.parameters()),
            "world_size": trainer.world_size,
            "threads": threads,
            "freed_memory_kept": freed_memory_kept,
            "text_encoder": text_encoder_name(params),
        }
        if refit is not None:
            self.meta_["refit"] = refit
        if calibration is not None:
            self.meta_["calibration"] = calibration
        if isinstance(source, SeriesSet):  # forecasts from new series check that they are sampled alike
            self.meta_["time_step"] = data_step(source)
        if prepared.class_names:  # classes by name: tables of predictions name them, other tables are read by them
            self.meta_["class_names"] = list(prepared.class_names)
        if prepared.notes:  # what reading the data skipped by its stated policy, with the counts
            self.meta_["data_notes"] = prepared.notes
        self.meta_.update(meta or {})
        # a forecaster trained on data in memory cannot read its validation split again: it keeps the
        # residuals its conformal intervals are made from
        self.conformal_residuals_ = None
        if data is not None and prepared.task == "forecast" and refit is None and self.is_global_zero_:
            self.conformal_residuals_ = validation_residuals(self, prepared)
        # the test split is scored once, by process 0 (the others of a DDP run stop here)
        self.metrics_ = self.score_part(prepared, prepared.test) if self.is_global_zero_ and score_test else None
        if run_dir is None:  # the weights are in memory now; the scratch folder goes
            shutil.rmtree(folder, ignore_errors=True)
        elif self.is_global_zero_:
            self.save(folder)
        return self

    def _fit_choosing_text(
        self,
        data: Any,
        run_dir: str | Path | None,
        resume: bool,
        callbacks: Sequence[Any],
        overwrite: bool,
        score_test: bool,
        meta: dict[str, Any] | None,
    ) -> Estimator:
        """``model.text: auto`` (:mod:`tsmoe.training.text_choice`): the model fitted with and without text,
        on validation only, then the run trained with the better setting, the choice in ``meta.json``."""
        from tsmoe.training.text_choice import CANDIDATES, candidate, check_text_choice, chosen_text, with_text

        check_text_choice(self.config)
        if run_dir is not None and not resume and launch_rank() == 0:
            check_run_folder(Path(run_dir), overwrite)  # before the candidates train
        scores, monitor, mode = {}, "", "min"
        for text in CANDIDATES:
            trial = Estimator.from_config(candidate(self.config, text)).fit(data, score_test=False)
            monitor, mode = trial._selection_metric(trial.meta_["task"])
            scores[text] = float(trial.meta_["best_score"])
            print(f"model.text auto: with text {text}, validation {monitor} {scores[text]:.6g}", flush=True)
        text = chosen_text(scores, mode)
        self.config = with_text(self.config, text)
        record = {"chosen": text, "monitor": monitor, "validation": scores}
        print(f"model.text auto: training with text {text}", flush=True)
        meta = {**(meta or {}), "text_choice": record}
        return self.fit(data, run_dir, resume, callbacks, overwrite, score_test, meta)

    def _calibrate(self, prepared: PreparedData, method: str = "temperature") -> dict[str, Any]:
        """Fit the run's calibration on the validation split (the kept model's outputs) and keep it: a
        temperature, or a Venn-Abers map (binary risks); what it did to the validation ECE, log loss and Brier
        score, for ``meta.json`` (for Venn-Abers on the items its map is made from; for a per-step run on every
        labelled step, of which the map saw one per entity)."""
        from tsmoe.training.calibration import fit_temperature

        task = get_task(prepared.task)
        self.temperature_ = self.venn_abers_ = None
        logits, targets = self._outputs(prepared.val, prepared.collate, prepared.task)
        target = targets["target"]
        before = task.score_probabilities(task.probabilities(logits.float()), target)
        if method == "venn_abers":
            probability, label = task.probabilities(logits.float()).numpy(), target.numpy()
            record: dict[str, Any] = {"method": "venn_abers", "validation_items": len(target)}
            if "record" in targets:  # per step: one step per entity, at random (tsmoe.training.venn_abers)
                kept = one_per_entity(targets["record"].numpy(), self.config.seed)
                probability, label = probability[kept], label[kept]
                record["validation_items"], record["validation_steps"] = len(kept), len(target)
            self.venn_abers_ = VennAbers.fit(probability, label)
        else:
            self.temperature_ = fit_temperature(logits, target)
            record = {"method": "temperature", "temperature": self.temperature_}
        after = task.score_probabilities(task.probabilities(self.calibrated(logits).float()), target)
        keys = [k for k in ("ece", "log_loss", "brier") if k in before]
        return {**record, **{f"validation_{k}_before": before[k] for k in keys},
                **{f"validation_{k}_after": after[k] for k in keys}}  # fmt: skip

    def calibrate(self, run_dir: str | Path | None = None, method: str = "temperature") -> dict[str, Any]:
        """Calibrate this fitted classifier on its validation split now (a run trained without
        ``training.calibrate``): a temperature, or with ``method="venn_abers"`` a Venn-Abers map (binary
        risks); keep it, and with ``run_dir`` write it into that run (``meta.json``, and the map's
        ``calibration.safetensors``); returns what it did to the validation ECE and log loss. The test split
        is not read."""
        self._check_fitted()
        if "refit" in self.meta_:
            raise ConfigError("this run was refit on its validation items (training.refit): nothing is left to "
                              "calibrate on")  # fmt: skip
        check_calibration_method(method, self.meta_["task"], "calibration")
        record = self._calibrate(self.prepare_data(), method)
        self.meta_["calibration"] = record
        if run_dir is not None:
            self._write_meta_and_calibration(Path(run_dir))
        return record

    def calibrated(self, output: torch.Tensor) -> torch.Tensor:
        """Raw outputs with the run's calibration applied: logits / T, or for a Venn-Abers map the logit of
        its merged probability ``p1 / (1 - p0 + p1)``; as they are without one."""
        temperature = getattr(self, "temperature_", None)
        if temperature:
            return output / temperature
        venn_abers = getattr(self, "venn_abers_", None)
        if venn_abers is None:
            return output
        merged, _, _ = venn_abers.probability(torch.sigmoid(output.double()).numpy())
        return torch.logit(torch.from_numpy(merged)).to(output.dtype)  # p lies strictly inside (0, 1)

    def probability_bounds(self, output: torch.Tensor) -> dict[str, np.ndarray]:
        """A Venn-Abers run's interval for raw binary outputs ``(N,)``: ``{"probability_low": p0,
        "probability_high": p1}`` (``tsmoe.training.venn_abers``); empty for any other run."""
        venn_abers = getattr(self, "venn_abers_", None)
        if venn_abers is None:
            return {}
        low, high = venn_abers.bounds(torch.sigmoid(output.double()).numpy())
        return {"probability_low": low.astype(np.float32), "probability_high": high.astype(np.float32)}  # as p

    def _write_meta_and_calibration(self, folder: Path) -> None:
        """``meta.json`` and the Venn-Abers map's file, where the run has one (a temperature lives in
        ``meta.json``), in an order that never leaves ``meta.json`` naming a map that is not there: the map
        before the meta that names it, and a map replaced by a temperature removed after."""
        if getattr(self, "venn_abers_", None) is not None:
            run_io.write_arrays(folder / run_io.CALIBRATION, self.venn_abers_.arrays())
        run_io.write_json(folder / run_io.META, self.meta_)
        if getattr(self, "venn_abers_", None) is None:
            (folder / run_io.CALIBRATION).unlink(missing_ok=True)

    def _selection_metric(self, task: str) -> tuple[str, str]:
        """(metric, "min" | "max") that early stopping and the kept epoch watch: ``training.monitor``, else
        the task's own (``val_auroc`` for a binary classifier, ``val_loss`` for a forecaster)."""
        monitor = self.config.training.monitor
        if monitor:
            logged = get_task(task).validation_logged()
            if monitor not in logged:  # refused here, before training, not after its first epoch
                raise ConfigError(f"training.monitor: {monitor!r} is not logged by a {task} task; it logs {logged}")
            return monitor, monitor_mode(monitor)
        return get_task(task).monitor

    def selection_metric(self) -> tuple[str, str]:
        """The metric this config's runs are selected on, and its direction; reads the data to learn the task
        (so a bad data setting is reported here, before any training)."""
        params, entry = self._data_params()
        prepared = entry.prepare(params, self._load_source(None, params, entry), self.config.seed)
        return self._selection_metric(prepared.task)

    def _module(self, prepared: PreparedData, monitor: str, mode: str) -> Any:
        """The Lightning module that trains ``self.model_`` by the config's training section."""
        from tsmoe.training.module import LRSchedule, TsmoeModule

        training = self.config.training
        return TsmoeModule(
            self.model_,
            get_task(prepared.task),
            training.lr,
            training.weight_decay,
            prepared.target_channels,
            prepared.dims.get("n_classes", 2),
            training.forecast_loss,
            LRSchedule(
                kind=training.lr_schedule,
                max_epochs=training.max_epochs,
                monitor=monitor,
                mode=mode,
                factor=training.lr_factor,
                patience=training.lr_patience,
            ),
        )

    def _refit(self, prepared: PreparedData, epochs: int, folder: Path, monitor: str, mode: str) -> dict[str, Any]:
        """``training.refit``: score the model chosen on validation, then replace it by a new model from
        the same seed trained on the training and validation items for ``epochs`` epochs (the chosen
        epoch count), as a model is refit on all its data once its settings are chosen. The
        preprocessing stays the one fitted on the training items. Returns what ``meta.json`` keeps."""
        from torch.utils.data import ConcatDataset

        from tsmoe.training.seed import seed_everything
        from tsmoe.training.trainer import build_refit_trainer

        chosen_validation = self.score_part(prepared, prepared.val)  # before the refit model sees these items
        seed_everything(self.config.seed)
        self.model_ = build_model(self.config.model, prepared.dims, prepared.task, prepared.input_kind)
        module = self._module(prepared, monitor, mode)
        items = ConcatDataset([prepared.train, prepared.val])
        loader = self._loader(items, prepared.collate, True, self.config.training.batch_size)
        module.shuffle_generator = loader.generator
        trainer = build_refit_trainer(self.config, folder, epochs)
        started = time.perf_counter()
        fit_or_report_interruption(
            trainer, None, module, self.config.training.flush_subnormals, train_dataloaders=loader
        )
        self.model_ = self.model_.cpu()
        return {
            "epochs": epochs,
            "items": len(items),
            "seconds": time.perf_counter() - started,
            "validation_before_refit": chosen_validation,
        }

    @classmethod
    def resume(cls, run_dir: str | Path, callbacks: Sequence[Any] = ()) -> Estimator:
        """Finish a run that was stopped (killed, out of time) from its last checkpoint.

        The run folder's own ``config.yaml`` is used. A folder whose run already finished is loaded as it
        is; one that stopped before its first checkpoint starts again from the first epoch.
        """
        folder = Path(run_dir)
        if (folder / run_io.METRICS).exists() and (folder / run_io.WEIGHTS).exists():
            return cls.load(folder)
        if not (folder / run_io.CONFIG).exists():
            raise TrainingError(
                f"cannot resume '{folder}': it has no {run_io.CONFIG} (not a tsmoe run folder, or the run was "
                "stopped before it started): start it again with tsmoe train CONFIG --out RUN_DIR"
            )
        estimator = cls.from_config(resolve(run_io.read_config_yaml(folder / run_io.CONFIG)))
        return estimator.fit(run_dir=folder, resume=True, callbacks=callbacks)

    # ---- inference ------------------------------------------------------------------------------

    def check_part_unseen(self, part: str, name: str = "this run") -> None:
        """Refuse to score the validation part of a run refit on it (``training.refit``): the score would be
        in-sample. The chosen model's validation metrics, from before the refit, are in ``meta.json``."""
        if part == "validation" and "refit" in getattr(self, "meta_", {}):
            raise ConfigError(
                f"{name} was refit on its validation items (training.refit), so a validation score would be "
                "in-sample; the validation metrics of the model chosen before the refit are in its "
                "meta.json under refit.validation_before_refit"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("this estimator is not fitted: call fit() or Estimator.load(run_dir) first")

    @torch.no_grad()
    def _outputs(
        self, dataset: Dataset, collate: Any, task_name: str | None = None, raw: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Model outputs over a dataset (with the run's calibration applied, unless ``raw``), with the batches'
        targets concatenated: one row per item, or for a per-step task one per labelled step, with its
        ``record`` (position in ``dataset``) and ``time``. ``task_name``: the data's task (default: the fitted
        run's)."""
        self.model_.eval()
        task = get_task(task_name or self.meta_["task"])
        outputs, targets, seen = [], {}, 0
        with flushed_subnormals(self.config.training.flush_subnormals):
            for batch in self._loader(dataset, collate, False, self.config.training.eval_batch_size):
                output, batch_targets = task.rows(unpack(self.model_(batch))[0], batch)
                if "record" in batch_targets:  # per step: the record's place in the dataset, not the batch
                    batch_targets["record"] = batch_targets["record"] + seen
                seen += len(batch["target"]) if "target" in batch else len(output)
                outputs.append(output)
                for key, value in batch_targets.items():
                    targets.setdefault(key, []).append(value)
        if not outputs:
            raise DataError("no items to predict")
        output = torch.cat(outputs)
        return output if raw else self.calibrated(output), {k: torch.cat(v) for k, v in targets.items()}

    def score_part(self, prepared: PreparedData, dataset: Dataset) -> dict[str, float]:
        """Metrics of this model over ``dataset``, a part of ``prepared`` (MAPE only on the original scale);
        for a quantile forecaster also ``crps``, ``wql`` and the coverage and width of its outermost
        interval (levels 0.1 and 0.9: ``coverage_80``, ``width_80``). Bootstrap intervals of the metrics
        (``auroc_ci``, ``mse_ci``, ...) resample forecast windows in blocks within each series."""
        groups = dataset.item_series() if hasattr(dataset, "item_series") else None
        output, target = self.scored_outputs(prepared, dataset)
        metrics = get_task(prepared.task).metrics(output, target, self.original_scale(), groups)
        if hasattr(self.model_, "levels"):
            metrics |= self._quantile_scores(prepared, dataset)
        return metrics

    def quantile_forecasts(
        self, prepared: PreparedData, dataset: Dataset, original: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A quantile forecaster's ``(Q, N, H, C)`` forecasts over ``dataset`` and the targets ``(N, H, C)``, on
        the scale the run's metrics use (or the original scale where ``original`` says so)."""
        task = get_task(prepared.task)
        original = self.original_scale() if original is None else original
        quantiles, targets = self._quantiles(dataset, prepared.collate)
        scored = [task.scored(quantiles[..., q], targets, prepared, self.state_, original)
                  for q in range(quantiles.shape[-1])]  # fmt: skip
        return np.stack([output.double().numpy() for output, _ in scored]), scored[0][1].double().numpy()

    def _quantile_scores(self, prepared: PreparedData, dataset: Dataset) -> dict[str, float]:
        from tsmoe.intervals import level_name
        from tsmoe.metrics import quantile_metrics

        levels = self.model_.levels
        forecasts, target = self.quantile_forecasts(prepared, dataset)
        scores = quantile_metrics(forecasts, np.array(levels), target)
        if len(levels) > 1:  # the outermost levels as a central interval
            name = level_name(round(levels[-1] - levels[0], 10))
            scores[f"coverage_{name}"] = float(((target >= forecasts[0]) & (target <= forecasts[-1])).mean())
            scores[f"width_{name}"] = float((forecasts[-1] - forecasts[0]).mean())
        return scores

    def original_scale(self) -> bool:
        """Whether this run's outputs are scored on the data's own scale (not for ``metrics_scale: scaled``)."""
        return getattr(self._data_params()[0], "metrics_scale", "original") == "original"

    def scored_outputs(
        self, prepared: PreparedData, dataset: Dataset, original: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output, target)`` over ``dataset`` (a part of ``prepared``) as the metrics read them:
        logits ``(N,)`` or ``(N, K)`` and labels ``(N,)`` for classifiers; values ``(N,)`` on the target's
        own scale for regression; forecasts ``(N, horizon, n_targets)`` of the target channels, on the
        original scale where ``data.metrics_scale`` is ``original`` (or where ``original`` says so)."""
        self._check_fitted()
        output, targets = self._outputs(dataset, prepared.collate, prepared.task)
        scale = self.original_scale() if original is None else original
        return get_task(prepared.task).scored(output, targets, prepared, self.state_, scale)

    def _prepare_for_inference(
        self, data: Any, split: SplitChoice, data_overrides: dict[str, Any] | None
    ) -> PreparedData:
        self._check_fitted()
        if split not in ("default", "all"):
            raise ConfigError(f"split is 'default' (the run's test part) or 'all' (every item), got {split!r}")
        params, entry = self._data_params(data_overrides)
        params = entry.for_run(params, self.meta_)
        source = self._load_source(data, params, entry)
        prepared = entry.prepare(params, source, self.config.seed, fitted=self.state_, which=split)
        # a size the run did not record (added to tsmoe after it was trained, as the forecasters' "step")
        # played no part in it; every size it recorded must match
        recorded = self.meta_["dims"]
        if prepared.task != self.meta_["task"] or any(prepared.dims.get(k) != v for k, v in recorded.items()):
            raise DataError(
                f"the data gives task '{prepared.task}' with sizes {prepared.dims}, but the model was trained for "
                f"task '{self.meta_['task']}' with sizes {self.meta_['dims']}"
            )
        return prepared

    def prepare_data(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> PreparedData:
        """The data prepared with this model's fitted statistics (its ``test`` part is what gets scored)."""
        return self._prepare_for_inference(data, split, data_overrides)

    def score(self, prepared: PreparedData) -> dict[str, float]:
        """Metrics of this model on the ``test`` part of data from :meth:`prepare_data`."""
        return self.score_part(prepared, prepared.test)

    def evaluate(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> dict[str, float]:
        """Metrics on the test split (``split="default"``) or on every item (``"all"``) of ``data``
        (default: the configured data set, with ``data_overrides`` such as another ``root``)."""
        return self.score(self._prepare_for_inference(data, split, data_overrides))

    def predict(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Class labels ``(N,)`` for classifiers, values ``(N,)`` for regression, forecasts
        ``(N, horizon, n_targets)``; values and forecasts on the original scale."""
        prepared = self._prepare_for_inference(data, split, data_overrides)
        output, _ = self._outputs(prepared.test, prepared.collate, prepared.task)
        return get_task(prepared.task).predictions(output, prepared, self.state_).numpy()

    def forecast(
        self,
        frame: pd.DataFrame | None = None,
        data_overrides: dict[str, Any] | None = None,
        intervals: list[float] | None = None,
        calibration: str = "validation",
        calibration_windows: int | None = None,
        conformal: str = "residual",
    ) -> pd.DataFrame:
        """Forecasts of what comes after ``frame``, or with no frame after the run's own data set (its whole
        history, with ``data_overrides`` such as another ``root``; for raw Time-MMD, its dated reports). A
        forecaster only. For series (long format: ``unique_id, ds`` and the trained columns, with the text
        column for a model that reads text; or wide, a column per trained channel, one series that the table
        names ``series``) the next ``horizon`` steps of each series, as ``unique_id, step, ds`` and one column
        per target; for windows (an ``input_seq`` column of lists, and ``text``)
        one forecast per row, as ``row, step, value``. Unlike :meth:`predict`, which scores the windows of
        a split, nothing is held out (see :mod:`tsmoe.forecast`).

        ``intervals`` (levels such as ``[0.8, 0.9]``) adds conformal intervals, ``<target>_lo_90`` and
        ``<target>_hi_90``, as ``tsmoe predict --intervals`` does: from the run's validation residuals, or with
        ``calibration="rolling"`` from each series' own errors on its ``calibration_windows`` latest windows
        in ``frame`` whose targets it holds (:mod:`tsmoe.intervals`). ``conformal="quantile"``, for a run trained
        with ``model.quantiles``, calibrates its own band of quantiles instead (:mod:`tsmoe.quantile_intervals`)."""
        self._check_fitted()
        if self.meta_["input_kind"] != "window":
            raise ConfigError(f"forecast is for runs on windows; this is a {self.meta_['task']} model: use predict")
        levels = check_levels(intervals) if intervals else []
        check_calibration(levels, calibration, calibration_windows)
        check_conformal(conformal, levels, calibration)
        if conformal == "quantile":
            quantile_pairs(self, levels)  # before forecasting
        if calibration == "rolling" and frame is None:
            raise ConfigError(
                "rolling calibration reads a frame's own recent windows: forecast without a frame has none"
            )
        if frame is None:
            params, entry = self._data_params(data_overrides)
            if entry.name == "csv" and params.root is None:
                raise ConfigError("this run was trained on data in memory, not a file: give it, forecast(frame)")
            table = forecast_data_set(self, entry.load(params), f"data set '{entry.name}'")
        elif not isinstance(frame, pd.DataFrame):
            raise DataError(f"forecast reads a pandas DataFrame, got {type(frame).__name__}")
        else:
            table = forecast_table(self, frame, "the frame")
        if not levels:
            return table
        if conformal == "quantile":
            return with_quantile_interval_columns(table, self, levels)
        by_series = None
        if calibration == "rolling":
            by_series = rolling_interval_widths([self], frame, "the frame", levels, calibration_windows)
        return with_interval_columns(table, self, levels, by_series)

    def backtest(
        self,
        data: Any = None,
        part: str = "test",
        intervals: list[float] | None = None,
        calibration: str = "validation",
        calibration_windows: int | None = None,
        conformal: str = "residual",
        split: SplitChoice = "default",
        data_overrides: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Every window of the ``part`` of the split forecast beside what came, a row per window and step, as
        ``tsmoe evaluate RUN --forecasts FILE`` writes it (:mod:`tsmoe.backtest`; neuralforecast's
        ``cross_validation``): ``<id>, cutoff, <time>, step``, then per target the forecast, ``<target>_actual``,
        quantiles and ``intervals`` (made as :meth:`forecast` makes them), on the data's own scale. ``data``: a
        frame to split as the run's data were (a run trained on a frame keeps none), else its data set."""
        from tsmoe.backtest import backtest

        self._check_fitted()
        return backtest(self, data, part, intervals, calibration, calibration_windows, conformal, split,
                        data_overrides)  # fmt: skip

    def predict_proba(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` (classifiers only)."""
        prepared = self._prepare_for_inference(data, split, data_overrides)
        task = classification_task(prepared.task, "predict_proba", "use predict")
        output, _ = self._outputs(prepared.test, prepared.collate, prepared.task)
        return task.proba_table(task.probabilities(output)).numpy()

    @property
    def classes_(self) -> list:
        """A classifier's classes in the order of :meth:`predict_proba`'s columns, so that ``classes_[k]`` is
        what :meth:`predict`'s label ``k`` stands for: their names where the labels named them (``data.classes``),
        else ``0..C-1``."""
        self._check_fitted()
        classification_task(self.meta_["task"], "classes_")
        return list(self.meta_.get("class_names") or range(self.meta_["dims"]["n_classes"]))

    def predict_proba_interval(
        self, data: Any = None, split: SplitChoice = "default", data_overrides: dict[str, Any] | None = None
    ) -> np.ndarray:
        """A Venn-Abers run's interval of the positive class's probability, ``(N, 2)`` = ``[p0, p1]``, for the
        items :meth:`predict_proba` gives (whose probability is the merged one, inside the interval)."""
        if getattr(self, "venn_abers_", None) is None:
            raise ConfigError(
                "predict_proba_interval needs a run calibrated with venn_abers "
                "(training.calibrate: venn_abers, or tsmoe calibrate RUN --method venn_abers)"
            )
        prepared = self._prepare_for_inference(data, split, data_overrides)
        output, _ = self._outputs(prepared.test, prepared.collate, prepared.task, raw=True)
        bounds = self.probability_bounds(output)
        return np.stack([bounds["probability_low"], bounds["probability_high"]], axis=1)

    def predict_table(
        self,
        observations: str | Path | pd.DataFrame,
        per_step: bool = False,
        every: float | None = None,
        align: str = "start",
        data_overrides: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """What ``tsmoe predict RUN INPUT`` writes, as a frame. For a run on a table of observations (data
        set ``irregular``): one row per entity, or with ``per_step`` one per step of each entity (the
        prediction after it, beside the table's own time for it), and with ``every`` those read on a clock
        of that period (``align``: ``"start"``, from each entity's first reading, or ``"clock"``, the
        table's own hours). ``observations``: a file or folder, or a pandas frame in the layout and column
        names the run reads, read by the same rules as a file (written as Parquet first; an error names
        its row counted from 1). ``data_overrides``: ``data`` settings for reading it, as ``--set data.*``
        (another static table, ``until``). For a PhysioNet run, a folder of stays; for a forecaster, a CSV
        of series (a frame: :meth:`forecast`)."""
        self._check_fitted()
        return predict_table([self], observations, per_step, every, align, data_overrides)

    def stream(self, interval: bool = False) -> Any:
        """A :class:`tsmoe.stream.StreamingPredictor`: predictions updated one observation at a time, for
        many entities at once (MR-MoE and its rungs); with ``interval`` (a Venn-Abers run) each risk comes
        with its interval, as ``Risk(probability, low, high)``."""
        from tsmoe.stream import StreamingPredictor

        self._check_fitted()
        return StreamingPredictor(self, interval)

    @torch.no_grad()
    def predict_every_step(
        self, dataset: Dataset, collate: Any, raw: bool = False
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Outputs (calibrated, unless ``raw``) after every step of every record of an irregular ``dataset``:
        ``(outputs (n, ...), record (n,) positions in the dataset, times (n,))``, one row per valid step. The
        output after step ``t`` is the model's answer for the record cut there (its causal per-step form; a
        model trained per step gives the same in one pass)."""
        self._check_fitted()
        if not hasattr(self.model_, "per_step"):
            raise ConfigError(f"model '{self.config.model['name']}' gives no output per step")
        self.model_.eval()
        trained_per_step = self.model_.per_step
        outputs, records, times, seen = [], [], [], 0
        try:
            self.model_.per_step = True
            with flushed_subnormals(self.config.training.flush_subnormals):
                for batch in self._loader(dataset, collate, False, self.config.training.eval_batch_size):
                    valid = batch["step_mask"].bool()
                    outputs.append(unpack(self.model_(batch))[0][valid])
                    records.append((torch.arange(valid.shape[0])[:, None].expand_as(valid)[valid] + seen).numpy())
                    times.append(batch["times"][valid].numpy())
                    seen += valid.shape[0]
        finally:
            self.model_.per_step = trained_per_step
        output = torch.cat(outputs)
        return output if raw else self.calibrated(output), np.concatenate(records), np.concatenate(times)

    @torch.no_grad()
    def _quantiles(self, dataset: Dataset, collate: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """A quantile forecaster's raw quantile forecasts ``(N, horizon, C, Q)`` and the batches' targets."""
        self.model_.eval()
        quantiles, targets = [], []
        with flushed_subnormals(self.config.training.flush_subnormals):
            for batch in self._loader(dataset, collate, False, self.config.training.eval_batch_size):
                quantiles.append(self.model_(batch)["quantiles"])
                targets.append(batch["y"])
        return torch.cat(quantiles), {"y": torch.cat(targets)}

    def predict_quantiles(self, dataset: Dataset, collate: Any) -> torch.Tensor | None:
        """A quantile forecaster's raw quantile forecasts ``(N, horizon, C, Q)`` for a prepared dataset (levels:
        ``model_.levels``); ``None`` for any other model."""
        self._check_fitted()
        return self._quantiles(dataset, collate)[0] if hasattr(self.model_, "levels") else None

    def predict_dataset(self, dataset: Dataset, collate: Any, raw: bool = False) -> torch.Tensor:
        """Outputs (logits, calibrated unless ``raw``, or scaled forecasts) for an already prepared dataset."""
        self._check_fitted()
        return self._outputs(dataset, collate, raw=raw)[0]

    # ---- persistence ------------------------------------------------------------------------------

    def save(self, run_dir: str | Path) -> Path:
        """Write the run folder (see :mod:`tsmoe.io`)."""
        self._check_fitted()
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        run_io.write_text(folder / run_io.CONFIG, self.config.to_yaml())
        run_io.write_weights(folder / run_io.WEIGHTS, self.model_.state_dict())
        run_io.write_arrays(folder / run_io.PREPROCESSING, self.state_)
        if getattr(self, "conformal_residuals_", None) is not None:
            run_io.write_arrays(folder / run_io.CONFORMAL, {"abs_residuals": self.conformal_residuals_})
        self._write_meta_and_calibration(folder)
        run_io.write_json(folder / run_io.SPLIT, self.split_)
        if getattr(self, "metrics_", None) is not None:
            run_io.write_json(folder / run_io.METRICS, self.metrics_)
        # a finished run needs neither its best-epoch copy nor its resume checkpoint any more
        (folder / "best.safetensors").unlink(missing_ok=True)
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        return folder

    @classmethod
    def load(cls, run_dir: str | Path) -> Estimator:
        """Rebuild a fitted estimator from a run folder (safetensors + YAML/JSON; no pickle)."""
        folder = Path(run_dir)
        if not folder.is_dir():
            raise ConfigError(f"run folder '{folder}' does not exist")
        estimator = cls.from_config(resolve(run_io.read_config_yaml(folder / run_io.CONFIG)))
        estimator.meta_ = run_io.read_json(folder / run_io.META)
        estimator.state_ = run_io.read_arrays(folder / run_io.PREPROCESSING)
        estimator.split_ = run_io.read_json(folder / run_io.SPLIT)
        estimator.model_ = build_model(
            estimator.config.model, estimator.meta_["dims"], estimator.meta_["task"], estimator.meta_["input_kind"]
        )
        run_io.load_weights_into(estimator.model_, folder / run_io.WEIGHTS)
        calibration = estimator.meta_.get("calibration", {})
        estimator.temperature_ = calibration.get("temperature")
        estimator.venn_abers_ = None
        if calibration.get("method") == "venn_abers":
            estimator.venn_abers_ = VennAbers.from_arrays(run_io.read_arrays(folder / run_io.CALIBRATION))
        conformal = folder / run_io.CONFORMAL
        estimator.conformal_residuals_ = run_io.read_arrays(conformal)["abs_residuals"] if conformal.exists() else None
        metrics_path = folder / run_io.METRICS
        estimator.metrics_ = run_io.read_json(metrics_path) if metrics_path.exists() else None
        return estimator

    def __repr__(self) -> str:
        fitted = "fitted" if hasattr(self, "model_") else "not fitted"
        return f"Estimator(model={self.config.model['name']!r}, data={self.config.data['name']!r}, {fitted})"
