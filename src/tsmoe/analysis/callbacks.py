"""Training callbacks that record analysis read-outs; the training path knows nothing of them, and a caller
passes them in (``Estimator.fit(callbacks=...)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from tsmoe.analysis.moe_readout import expert_spectra, is_sparse_moe
from tsmoe.io import read_json, write_json

SPECTRAL_FILE = "spectral.json"  # in the run folder; the report reads it


class SpectralTracker(pl.Callback):
    """Opt-in (``Estimator.fit(callbacks=[...])``; ``tsmoe train`` adds it). For models with sparse MoE
    layers: after every validation, the Rayleigh-quotient and Gershgorin
    estimates of ``||W||^2`` for each expert's weights and the router (:mod:`tsmoe.analysis.spectral`),
    appended to ``spectral.json`` in the run folder (written atomically), so the report can show them
    across training. A resumed run keeps the epochs before its checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.history: list[dict[str, Any]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.path.exists():  # a resumed run: keep what was recorded before its checkpoint
            self.history = [e for e in read_json(self.path) if e["epoch"] < trainer.current_epoch]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        model = pl_module.model
        if trainer.sanity_checking or not is_sparse_moe(model) or not trainer.is_global_zero:
            return
        spectra = expert_spectra(model)
        self.history.append({
            "epoch": trainer.current_epoch,
            "rayleigh_max": {k: [e.rayleigh_max for e in v] for k, v in spectra.items()},
            "gershgorin_max": {k: [e.gershgorin_max for e in v] for k, v in spectra.items()},
        })  # fmt: skip
        write_json(self.path, self.history)
