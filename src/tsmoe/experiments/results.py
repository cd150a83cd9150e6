"""The one results format every benchmark writes: a JSON file of runs keyed ``row/case/seed``.

::

    {"protocol": "P4", "experiment": "benchmarks/experiments/p4.yaml",
     "runs": {"dlinear/0": {"command": "tsmoe train ...", "config": {...resolved...}, "machine": {...},
                            "test": {"mse": ...}, "validation": {...}, "best_epoch": 7, ...}}}

Several processes may fill one file side by side (one per seed, say): each adds its run under an
exclusive lock, rereading the file first, and the file is replaced atomically. Files written by the
scripts before this format (a ``runs`` list, one row per file) are read as that row's runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tsmoe.io import write_json


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (through ``path.lock`` beside it) while the block rereads and
    rewrites it, so no process overwrites what another has just added."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def machine() -> dict[str, Any]:
    """What a timing depends on: platform, CPU model, torch, threads, device."""
    import torch

    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)  # fmt: skip
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }


def read_results(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text()) if Path(path).exists() else {"runs": {}}


def runs_of(paths: list[Path], row: str) -> dict[str, dict[str, Any]]:
    """The runs of ``row`` stored in ``paths``, keyed ``row/case/seed`` (or ``row/seed``); a run stored in
    two files is an error."""
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        runs = read_results(path).get("runs", {})
        if isinstance(runs, list):  # the earlier one-row-per-file form: a list of runs with their seeds
            runs = {f"{row}/{run['seed']}": run for run in runs}
        mine = {key: run for key, run in runs.items() if key.split("/")[0] == row}
        twice = sorted(mine.keys() & found.keys())
        if twice:
            raise ValueError(f"run(s) {twice} of row '{row}' are stored twice, the second time in {path}")
        found |= mine
    return found


def add_run(path: Path, key: str, run: dict[str, Any], header: dict[str, Any]) -> None:
    """Store ``run`` under ``key`` (replacing a run of that key), keeping every other run in the file."""
    with locked(path):
        stored = read_results(path)
        if isinstance(stored.get("runs"), list):
            raise ValueError(f"{path} holds runs in the earlier list form; write new runs to another file")
        stored = {**stored, **header, "runs": {**stored.get("runs", {}), key: run}}
        write_json(path, stored)
