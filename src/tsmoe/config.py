"""Run configuration: typed sections, strict keys, command-line overrides, and the fully resolved form.

A config is YAML with six sections::

    seed: 0
    data:     {name: physionet2012, ...}   # keys of that data set's Params dataclass
    model:    {name: lstm, ...}            # keys of that model's Params dataclass
    training: {...}                        # TrainingConfig
    trainer:  {...}                        # any lightning.Trainer argument (accelerator, devices, strategy, ...)
    logging:  {...}                        # LoggingConfig

Unknown keys anywhere are errors that list the valid keys. ``--set a.b=value`` overrides a key; the
value is parsed as YAML (``--set model.hidden_size=128``, ``--set data.root=/data/p12``).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from tsmoe.errors import ConfigError
from tsmoe.params import build_dataclass
from tsmoe.paths import shipped_recipe, shipped_recipes

log = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """Optimisation and model selection (validation split only)."""

    max_epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 8  # early stopping: epochs without improvement of `monitor`
    monitor: str | None = None  # default: val_auroc (binary), val_accuracy (multiclass), val_loss otherwise
    gradient_clip_val: float | None = 1.0
    num_workers: int = 0
    eval_batch_size: int = 256
    # exponential moving average of the weights, updated after every optimiser step; validation, model
    # selection and the saved model use the average. None: off (the plain weights)
    ema_decay: float | None = None
    # forecasts of windows that carry their own scale (the MoME windows): "window" scores the
    # window-normalised forecast, as the MoME reference trains; "original" scores it on the data's own
    # scale, the scale the protocol's test metric uses (large windows then weigh more); "mape" scores
    # any forecast by its mean absolute percentage error, where the metric is a MAPE
    forecast_loss: Literal["window", "original", "mape"] = "window"
    # the learning rate over training: "constant"; "cosine" from lr down to 0 over max_epochs (per epoch);
    # "plateau" multiplies it by lr_factor after lr_patience epochs without improvement of `monitor`
    lr_schedule: Literal["constant", "cosine", "plateau"] = "constant"
    lr_factor: float = 0.5
    lr_patience: int = 2
    # classifiers: run folders (trained on this run's split) or CSV files of training items' probabilities,
    # whose mean probability is a soft target, (1 - distill_weight) y + distill_weight p_teachers, in
    # training only (tsmoe.training.distillation); distill_teacher_weights: one per teacher ([]: equal)
    distill_from: list[str] = field(default_factory=list)
    distill_weight: float = 0.5
    distill_teacher_weights: list[float] = field(default_factory=list)
    # after the epoch is chosen on validation, train a new model from the same seed on the training and
    # validation items together for that many epochs (best epoch + 1), and keep it; the validation
    # metrics of the chosen model, before the refit, are kept in meta.json (the refit model has seen them)
    refit: bool = False
    # flush subnormal floats to zero while training and predicting (tsmoe.training.numerics): a gradient
    # carried back through many steps decays into them, which many CPUs compute far more slowly
    flush_subnormals: bool = True
    # keep memory freed between training steps in the process instead of handing it back to the system, so
    # that the next step's buffers are not fresh pages, each first written through a page fault (glibc's
    # malloc thresholds, tsmoe.training.memory; for the rest of the process)
    keep_freed_memory: bool = True
    # CPU threads torch trains with: "auto" uses the cores other processes leave free (at least one, at most
    # torch's default; tsmoe.training.threads), an integer fixes the count
    threads: int | Literal["auto"] = "auto"
    # classifiers: "temperature" fits one temperature T on the validation split after training (logits / T,
    # tsmoe.training.calibration), saved in meta.json and applied wherever the run predicts; binary risks:
    # "venn_abers" fits a Venn-Abers map there (tsmoe.training.venn_abers), a calibrated probability with
    # an interval [p0, p1] that contains one; "none": raw
    calibrate: Literal["none", "temperature", "venn_abers"] = "none"

    def __post_init__(self) -> None:
        for name in ("max_epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.threads != "auto" and self.threads < 1:
            raise ValueError(f"threads must be 'auto' or at least 1, got {self.threads!r}")
        for name in ("weight_decay", "patience", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.gradient_clip_val is not None and not self.gradient_clip_val > 0:
            raise ValueError(f"gradient_clip_val must be positive or null (off), got {self.gradient_clip_val!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1) or be null (off), got {self.ema_decay!r}")
        if not 0.0 < self.lr_factor < 1.0:
            raise ValueError(f"lr_factor must lie in (0, 1), got {self.lr_factor!r}")
        if self.lr_patience < 0:
            raise ValueError(f"lr_patience must be >= 0, got {self.lr_patience!r}")
        if not 0.0 < self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must lie in (0, 1], got {self.distill_weight!r}")
        if self.refit and self.lr_schedule == "plateau":
            raise ValueError(
                "refit cannot replay lr_schedule 'plateau' (it reads validation); use 'constant' or 'cosine'"
            )
        if self.refit and self.calibrate != "none":
            raise ValueError("refit cannot calibrate: the refit model has trained on the validation items")
        if self.refit and self.distill_from:
            raise ValueError("refit cannot distil: the teachers give soft targets for the training items only")
        weights = self.distill_teacher_weights
        if weights and (len(weights) != len(self.distill_from) or min(weights) <= 0):
            raise ValueError(
                f"distill_teacher_weights needs one positive weight per entry of distill_from "
                f"({len(self.distill_from)}), got {weights!r}"
            )


@dataclass
class LoggingConfig:
    """Quiet by default: CSV metrics in the run folder, a progress bar only on an interactive terminal."""

    csv: bool = True
    tensorboard: bool = False
    progress_bar: bool | None = None  # None: on when stderr is a terminal
    epoch_lines: bool | None = None  # a line per epoch on stderr (epoch, losses, monitored metric, seconds);
    # None: when no progress bar is shown, so a run in a log file or a pipe is visibly alive
    verbose: bool = False  # Lightning's own info messages


DEFAULT_TRAINER: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "strategy": "auto",
    "num_nodes": 1,
    "precision": "32-true",
    "deterministic": "warn",
}

_TRAINER_OWNED = {  # set by tsmoe from the sections above; not settable under trainer
    "max_epochs", "gradient_clip_val", "callbacks", "logger", "enable_progress_bar", "default_root_dir",
    "enable_checkpointing", "plugins",
}  # fmt: skip


@dataclass
class RunConfig:
    """A whole run, every value resolved (the form written to ``config.yaml``)."""

    data: dict[str, Any]
    model: dict[str, Any]
    seed: int = 0
    training: TrainingConfig = field(default_factory=TrainingConfig)
    trainer: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRAINER))
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "data": dict(self.data),
            "model": dict(self.model),
            "training": dataclasses.asdict(self.training),
            "trainer": dict(self.trainer),
            "logging": dataclasses.asdict(self.logging),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _trainer_section(values: dict[str, Any] | None) -> dict[str, Any]:
    from lightning.pytorch import Trainer

    valid = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    merged = dict(DEFAULT_TRAINER)
    for key, value in (values or {}).items():
        if key in _TRAINER_OWNED:
            raise ConfigError(f"trainer.{key} is set by tsmoe; use the training/logging sections instead")
        if key not in valid:
            raise ConfigError(f"unknown key trainer.{key}: not an argument of lightning.Trainer")
        merged[key] = value
    return merged


def resolve(raw: dict[str, Any]) -> RunConfig:
    """Validate a raw mapping (from YAML plus overrides) into a fully resolved :class:`RunConfig`."""
    from tsmoe.data.registry import get_dataset
    from tsmoe.models.registry import get_model

    if not isinstance(raw, dict):
        raise ConfigError("a config must be a mapping with sections data, model, training, trainer, logging")
    known = {"seed", "data", "model", "training", "trainer", "logging"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; valid: {sorted(known)}")
    for section in ("data", "model"):
        if not isinstance(raw.get(section), dict) or "name" not in raw[section]:
            raise ConfigError(f"section '{section}' needs a 'name'")
    data_raw, model_raw = dict(raw["data"]), dict(raw["model"])
    dataset = get_dataset(data_raw.pop("name"))
    model = get_model(model_raw.pop("name"))
    data_params = build_dataclass(dataset.params, data_raw, "data")
    quantiles = model_raw.pop("quantiles", None)  # any forecaster's (tsmoe.models.quantiles), not one model's
    model_params = build_dataclass(model.params, model_raw, "model")
    model_section = {"name": model.name, **dataclasses.asdict(model_params)}
    if quantiles is not None:
        from tsmoe.data.adapter import IrregularAdapter
        from tsmoe.models.quantiles import check_quantiles

        if "forecast" not in model.tasks:
            raise ConfigError(f"model.quantiles is for forecasters; model '{model.name}' does not forecast")
        if isinstance(dataset, IrregularAdapter):
            raise ConfigError(
                f"model.quantiles is for forecasting; data set '{dataset.name}' holds records of irregular "
                "observations to classify or regress, not series to forecast"
            )
        if not isinstance(quantiles, list) or any(isinstance(q, bool) or not isinstance(q, int | float)
                                                  for q in quantiles):  # fmt: skip
            raise ConfigError(f"model.quantiles: expected a list of numbers such as [0.1, 0.5, 0.9], got {quantiles!r}")
        model_section["quantiles"] = check_quantiles(quantiles)
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    return RunConfig(
        seed=seed,
        data={"name": dataset.name, **dataclasses.asdict(data_params)},
        model=model_section,
        training=build_dataclass(TrainingConfig, raw.get("training"), "training"),
        trainer=_trainer_section(raw.get("trainer")),
        logging=build_dataclass(LoggingConfig, raw.get("logging"), "logging"),
    )


DATA_PATHS = ("root", "observations", "labels", "static")  # data keys that name files or folders


def with_absolute_paths(config: RunConfig) -> RunConfig:
    """``config`` with its relative paths (``data.root``, the tables of ``data.observations``, ``labels``
    and ``static``, a ``data.split_file``, a ``data.text_model`` folder, ``training.distill_from`` entries)
    made absolute against the current folder, as a run folder stores them: a run trained from one folder is
    evaluated, resumed and predicted from any other."""

    def absolute(value: str | None) -> str | None:
        return str(Path(value).resolve()) if value else value

    data = dict(config.data)
    for key in DATA_PATHS:
        if isinstance(data.get(key), str):
            data[key] = absolute(data[key])
    if data.get("split_file") not in (None, "shipped"):
        data["split_file"] = absolute(data["split_file"])
    if isinstance(data.get("text_model"), str) and Path(data["text_model"]).expanduser().is_dir():
        data["text_model"] = absolute(str(Path(data["text_model"]).expanduser()))  # a folder; a model id stays
    training = dataclasses.replace(config.training, distill_from=[absolute(p) for p in config.training.distill_from])
    return dataclasses.replace(config, data=data, training=training)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a raw config (values parsed as YAML)."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        parts = key.split(".")
        if parts[0] == "seed" and len(parts) == 1:
            raw["seed"] = value
            continue
        if len(parts) != 2:
            raise ConfigError(f"--set {key}: keys have the form section.key (e.g. model.hidden_size) or seed")
        section, name = parts
        if section not in ("data", "model", "training", "trainer", "logging"):
            raise ConfigError(f"--set {key}: unknown section '{section}'")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"section '{section}' must be a mapping")
        raw[section][name] = value
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML recipe, apply overrides and resolve it. A ``path`` that is no file but names a shipped
    recipe (``dlinear-etth1``, or ``configs/dlinear-etth1.yaml`` outside a checkout) reads that recipe."""
    path = Path(path)
    if not path.is_file():
        shipped = shipped_recipe(path)
        if shipped is None:
            raise ConfigError(
                f"config file '{path}' does not exist, and no shipped recipe has that name; shipped recipes: "
                f"{', '.join(shipped_recipes())}"
            )
        log.info("reading the shipped recipe %s", shipped.name)
        path = shipped
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{path}' is not text (not UTF-8): is it the right file?") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file '{path}' is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config file '{path}' holds a {type(raw).__name__}, not a mapping of sections (data, model, training, "
            "trainer, logging)"
        )
    return resolve(apply_overrides(raw, overrides or []))
