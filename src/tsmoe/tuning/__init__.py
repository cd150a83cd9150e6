"""Hyperparameter search on Optuna (``tsmoe tune``): a study over a YAML search space (:mod:`.space`),
trials trained by the one training path and pruned from their per-epoch validation scores
(:mod:`.study`), and the study's outputs: ``trials.csv``, ``best.yaml`` and ``tune.html``
(:mod:`.outputs`, :mod:`.page`). Needs the ``tune`` extra (``pip install 'tsmoe[tune]'``)."""

from __future__ import annotations

import importlib.util
import sys

from tsmoe.errors import ConfigError

NEEDED = ("optuna", "optuna_integration", "sklearn", "filelock")  # sklearn: Optuna's fANOVA parameter importances


def check_installed() -> None:
    """A clear error, before anything is read, where the ``tune`` extra is not installed."""
    missing = [name for name in NEEDED if not _importable(name)]
    if missing:
        raise ConfigError(
            f"tsmoe tune needs {', '.join(missing)}: install the extra with pip install 'tsmoe[tune]' "
            "(optuna, optuna-integration, scikit-learn)"
        )


def _importable(name: str) -> bool:
    """Whether module ``name`` is imported or can be. A module imported already counts as there: a second
    study in one process finds optuna_integration as its lazy module, whose missing ``__spec__`` makes
    ``find_spec`` raise."""
    return name in sys.modules or importlib.util.find_spec(name) is not None
