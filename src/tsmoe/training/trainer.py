"""Building the Lightning trainer of a run: callbacks, loggers, quiet defaults, pass-through arguments."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from tsmoe.config import RunConfig
from tsmoe.errors import ConfigError
from tsmoe.training.callbacks import AveragedWeights, BestWeights, ElapsedTime, EpochLines, StopState
from tsmoe.training.checkpoint_io import SafetensorsCheckpointIO

CHECKPOINT_DIR, CHECKPOINT_NAME = "checkpoints", "last"
CHECKPOINT_SUFFIX = ".safetensors"

_NOISY_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning")


def quiet_lightning(verbose: bool) -> None:
    """Silence Lightning's info lines (GPU available, model summary, ...) unless ``verbose``."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        for pattern in (
            ".*does not have many workers.*",
            ".*LeafSpec.*",
            ".*treespec.*",
            ".*deterministic.*",
            ".*Checkpoint directory.*",
            ".*exists and is not empty.*",
            ".*smaller than the logging interval.*",  # metrics are logged per epoch
            ".*no `val_dataloader`.*",  # training.refit trains without validation, by design
        ):
            warnings.filterwarnings("ignore", message=pattern)


def checkpoint_path(run_dir: Path) -> Path:
    """Where a run keeps its last checkpoint (rewritten after every epoch, for ``--resume``)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"{CHECKPOINT_NAME}{CHECKPOINT_SUFFIX}"


def build_trainer(
    config: RunConfig, run_dir: Path, monitor: str, mode: str, extra_callbacks: Sequence[pl.Callback] = ()
) -> tuple[pl.Trainer, BestWeights]:
    """A trainer with early stopping and best-weights keeping on ``monitor`` (validation only), and a
    safetensors checkpoint after every epoch; ``extra_callbacks`` (e.g. analysis read-outs) run after
    the validation bookkeeping, on the validated weights."""
    quiet_lightning(config.logging.verbose)
    best = BestWeights(run_dir / "best.safetensors", monitor, mode)
    last = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_DIR, filename=CHECKPOINT_NAME, monitor=None, save_top_k=1,
        enable_version_counter=False,
    )  # fmt: skip
    last.FILE_EXTENSION = CHECKPOINT_SUFFIX
    callbacks: list[pl.Callback] = [
        EarlyStopping(monitor=monitor, mode=mode, patience=config.training.patience),
        best,
        StopState(),  # after EarlyStopping, so it sees its decision
        ElapsedTime(),
        *extra_callbacks,
    ]
    if _epoch_lines(config):
        callbacks.append(EpochLines(monitor))
    if config.training.ema_decay is not None:  # after the callbacks that read the validated weights, before `last`
        callbacks.append(AveragedWeights(config.training.ema_decay))
    callbacks.append(last)
    loggers: list = []
    if config.logging.csv:
        loggers.append(CSVLogger(run_dir, name="logs", version=""))
    if config.logging.tensorboard:
        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version=""))
    trainer = _lightning_trainer(
        config, run_dir, config.training.max_epochs, callbacks, loggers,
        enable_model_summary=config.logging.verbose, enable_checkpointing=True,
    )  # fmt: skip
    return trainer, best


def _epoch_lines(config: RunConfig) -> bool:
    """Print a line per epoch: as set, else when no progress bar is shown."""
    if config.logging.epoch_lines is not None:
        return config.logging.epoch_lines
    progress = config.logging.progress_bar
    return not (sys.stderr.isatty() if progress is None else progress)


def build_refit_trainer(config: RunConfig, run_dir: Path, epochs: int) -> pl.Trainer:
    """A trainer for ``training.refit``: exactly ``epochs`` epochs on training + validation items, with no
    validation, early stopping or checkpoints (the epoch count was already chosen on validation). Its
    metrics go to ``logs/refit/metrics.csv``; with ``ema_decay`` the average is copied in at the end."""
    callbacks: list[pl.Callback] = []
    if config.training.ema_decay is not None:
        callbacks.append(AveragedWeights(config.training.ema_decay))
    loggers: list = [CSVLogger(run_dir, name="logs", version="refit")] if config.logging.csv else []
    return _lightning_trainer(
        config, run_dir, epochs, callbacks, loggers, enable_model_summary=False, enable_checkpointing=False
    )


def _lightning_trainer(
    config: RunConfig, run_dir: Path, max_epochs: int, callbacks: list[pl.Callback], loggers: list, **switches: bool
) -> pl.Trainer:
    """The ``pl.Trainer`` both phases share: clipping, progress bar (on a terminal unless
    ``logging.progress_bar`` says), safetensors checkpoints, no sanity validation, and the user's
    ``trainer:`` settings (devices, strategy, precision, ...) passed through."""
    progress = config.logging.progress_bar
    try:
        return pl.Trainer(
            max_epochs=max_epochs,
            gradient_clip_val=config.training.gradient_clip_val,
            callbacks=callbacks,
            logger=loggers or False,
            enable_progress_bar=sys.stderr.isatty() if progress is None else progress,
            plugins=[SafetensorsCheckpointIO()],
            default_root_dir=run_dir,
            num_sanity_val_steps=0,
            **switches,
            **config.trainer,
        )
    except (ValueError, TypeError, MisconfigurationException) as error:  # Lightning refused a trainer setting
        raise ConfigError(f"trainer: Lightning refuses these settings ({config.trainer}): {error}") from None
