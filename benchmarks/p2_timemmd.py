"""Protocol P2's validation tables, over the rows of ``benchmarks/experiments/p2.yaml`` (which
``benchmarks/run.py`` trains and ``benchmarks/tables.py`` tables).

    python benchmarks/p2_timemmd.py --validation                   # each row's validation metrics

``--validation`` tables what may choose between rows: each row's mean best validation loss, and its
validation MSE on the original scale beside the last value's. Searches around a row are Optuna studies
(``tsmoe tune configs/mome-mome_timemmd.yaml --space configs/spaces/mome-mome_timemmd.yaml --set
data.domain=D ...``); the hand-written grid and variant searches this script once ran are kept as history
in ``results/p2-search.json`` and ``results/search/p2-variants-*.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from tsmoe.data.fixed_windows import TextWindows
from tsmoe.data.sources.mome_windows import load_mome_windows
from tsmoe.experiments.results import runs_of
from tsmoe.experiments.spec import read_experiment
from tsmoe.metrics import error_metrics

DOMAINS = ("HealthUS", "HealthAFR", "SocialGood", "Energy", "Environment")

EXPERIMENT = Path(__file__).parent / "experiments" / "p2.yaml"
P2 = read_experiment(EXPERIMENT)
ROWS: dict[str, tuple[str, list[str]]] = {row.name: (row.recipe, row.set) for row in P2.rows}


def save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def machine() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def stored_runs() -> dict[str, dict]:
    """Every stored run of the experiment's rows, keyed ``row/domain/seed``."""
    return {k: r for row in P2.rows for k, r in runs_of(P2.results_files(row), row.name).items()}


def validation_table(payload: dict, key: str = "val_loss") -> str:
    """Rows x domains, mean over seeds of each run's ``key``: ``val_loss``, the best validation loss (what
    the run was selected on: the window-normalised MSE, or the original-scale MSE for the rows trained on
    it), or ``val_mse``, the validation MSE on the original scale at that epoch (stored by the runs made
    since it was added). What may choose between rows, since the test split may not."""
    def value(run: dict) -> float | None:  # runs of benchmarks/run.py keep the same under other names
        other = run.get("best_score") if key == "val_loss" else run.get("validation", {}).get("mse")
        return run.get(key, other)

    lines = ["| model | " + " | ".join(DOMAINS) + " |", "|---" * (len(DOMAINS) + 1) + "|"]
    for row in ROWS:
        cells = []
        for domain in DOMAINS:
            found = [v for k, r in payload["runs"].items() if k.startswith(f"{row}/{domain}/") and (v := value(r))]
            cells.append(f"{statistics.fmean(found):.4g}" if found else "")
        if any(cells):
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    if key == "val_mse":  # on the same scale as the last value's MSE
        naive = [naive_last_value(d, "validation")["mse"] for d in DOMAINS]
        lines.append("| last value (no model) | " + " | ".join(f"{n:.4g}" for n in naive) + " |")
    return "\n".join(lines)


def last_value_forecast(windows: TextWindows) -> np.ndarray:
    """``(N, H)``: each window's last input value repeated over its horizon."""
    return np.repeat(windows.inputs[:, -1:], windows.targets.shape[1], axis=1)


def naive_last_value(domain: str, part: str = "test") -> dict[str, float]:
    """Metrics of the last-value forecast on the ``test`` (or ``validation``) windows: the floor any model
    must beat."""
    windows = dict(zip(("train", "validation", "test"), load_mome_windows(domain), strict=True))[part]
    forecast = torch.from_numpy(last_value_forecast(windows)).unsqueeze(-1)
    return error_metrics(forecast, torch.from_numpy(windows.targets).unsqueeze(-1))


def train_command(recipe: str, sets: list[str]) -> str:
    """The ``tsmoe train`` command line that reproduces a run of ``recipe`` with ``sets``."""
    return f"tsmoe train {recipe} " + " ".join(f"--set {s}" for s in sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validation", action="store_true", help="table each row's validation metrics")
    args = parser.parse_args()
    if args.validation:
        runs = stored_runs()
        print(validation_table({"runs": runs}), end="\n\n")
        print(validation_table({"runs": runs}, "val_mse"))
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
