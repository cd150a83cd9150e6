"""Where the shipped data sets and the on-disk cache live.

The data sets and recipes ship inside the package (``shipped_datasets/`` and ``shipped_configs/``; in a
source checkout these link to ``datasets/`` and ``configs/``), so an installed tsmoe finds them anywhere.
``TSMOE_DATA`` overrides the shipped-data folder; ``TSMOE_CACHE`` the cache folder (default:
``~/.cache/tsmoe``).
"""

from __future__ import annotations

import os
from pathlib import Path

from tsmoe.errors import DataError

_PACKAGE = Path(__file__).resolve().parent
SHIPPED_DATASETS = _PACKAGE / "shipped_datasets"
SHIPPED_CONFIGS = _PACKAGE / "shipped_configs"


def shipped_data_dir() -> Path:
    """The folder holding the vendored data sets."""
    override = os.environ.get("TSMOE_DATA")
    path = Path(override) if override else SHIPPED_DATASETS
    if not path.is_dir():
        raise DataError(
            f"the shipped data folder '{path}' does not exist; set TSMOE_DATA to a copy of the repository's "
            "datasets/ folder, or pass data.root explicitly"
        )
    return path


def shipped_recipe(name: str | Path) -> Path | None:
    """The shipped recipe a name means (``dlinear-etth1``, ``dlinear-etth1.yaml`` or ``configs/dlinear-etth1.yaml``),
    or ``None`` where no shipped recipe has that file name."""
    stem = Path(name).name.removesuffix(".yaml")
    path = SHIPPED_CONFIGS / f"{stem}.yaml"
    return path if path.is_file() else None


def shipped_space(name: str | Path) -> Path | None:
    """The shipped search space a name means (``mrmoe-physionet2012``, or ``configs/spaces/...yaml``), or
    ``None`` where no shipped space has that file name."""
    stem = Path(name).name.removesuffix(".yaml")
    path = SHIPPED_CONFIGS / "spaces" / f"{stem}.yaml"
    return path if path.is_file() else None


def shipped_recipes() -> list[str]:
    """The names of the shipped recipes."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


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
