"""Where the shipped data sets and the on-disk cache live.

``TSMOE_DATA`` overrides the shipped-data folder (default: ``datasets/`` of the source checkout);
``TSMOE_CACHE`` overrides the cache folder (default: ``~/.cache/tsmoe``).
"""

from __future__ import annotations

import os
from pathlib import Path

from tsmoe.errors import DataError

_REPO_DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def shipped_data_dir() -> Path:
    """The folder holding the vendored data sets."""
    override = os.environ.get("TSMOE_DATA")
    path = Path(override) if override else _REPO_DATASETS
    if not path.is_dir():
        raise DataError(
            f"the shipped data folder '{path}' does not exist; set TSMOE_DATA to a copy of the repository's "
            "datasets/ folder, or pass data.root explicitly"
        )
    return path


def cache_dir() -> Path:
    """The folder for parsed-data and text-embedding caches (created on demand)."""
    path = Path(os.environ.get("TSMOE_CACHE", Path.home() / ".cache" / "tsmoe"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def launch_rank() -> int:
    """This process's rank as the launcher set it (Lightning's DDP launcher, torchrun, SLURM), before any
    trainer exists; 0 for a plain run. Only rank 0 writes into the run folder before training starts."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0
