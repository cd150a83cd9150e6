"""Protocol P2's validation searches and tables, over the rows of ``benchmarks/experiments/p2.yaml``
(which ``benchmarks/run.py`` trains and ``benchmarks/tables.py`` tables).

    OMP_NUM_THREADS=1 python benchmarks/p2_timemmd.py --search     # optimiser per model, on validation only
    python benchmarks/p2_timemmd.py --validation                   # each row's validation metrics
    OMP_NUM_THREADS=1 python benchmarks/p2_timemmd.py --variants-of ROW --variant model.d_model=64 ... --seeds 0 1

``--search`` trains every model of the search (seed 0) with each (lr, batch size) of the grid on every
domain and ranks the settings by the mean of the best validation loss (MSE of the window-normalised
forecast, so domains are comparable); the chosen setting goes into the model's recipe by hand.
``--validation`` tables what may choose between rows: each row's mean best validation loss, and its
validation MSE on the original scale beside the last value's. ``--variants-of ROW`` searches around one
row on validation only: the row with each ``--variant`` override added, one at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tsmoe.config import load_config
from tsmoe.data.fixed_windows import TextWindows
from tsmoe.data.sources.mome_windows import load_mome_windows
from tsmoe.estimator import Estimator
from tsmoe.experiments.results import runs_of
from tsmoe.experiments.spec import read_experiment
from tsmoe.metrics import error_metrics

DOMAINS = ("HealthUS", "HealthAFR", "SocialGood", "Energy", "Environment")

EXPERIMENT = Path(__file__).parent / "experiments" / "p2.yaml"
P2 = read_experiment(EXPERIMENT)
ROWS: dict[str, tuple[str, list[str]]] = {row.name: (row.recipe, row.set) for row in P2.rows}
SEARCH = Path(__file__).parent / "results" / "search"
SEARCHED = ("mome", "token_fusion", "timemoe", "patchtst", "itransformer", "dlinear")
GRID = [(lr, batch) for lr in (1e-3, 3e-4) for batch in (8, 32)]


def fit(recipe: str, overrides: list[str], keep: Path | None = None) -> dict:
    """One run: its test metrics, its best validation loss (what it was selected on) and, at that epoch,
    the validation MSE on the original scale (the test metric's scale, whatever the training loss) and
    every validation metric (``validation``; stored by the runs made since it was added). The run folder
    is kept at ``keep`` if given (for ``seed_ensemble.py`` and ``p2_windows.py``), else thrown away."""
    config = load_config(recipe, overrides)
    if keep is not None and keep.exists():
        raise SystemExit(f"{keep} exists; remove it, or leave out --runs")
    with contextlib.nullcontext(str(keep)) if keep is not None else tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        estimator = Estimator.from_config(config).fit(run_dir=folder)
        wall = time.perf_counter() - started
        logged = pd.read_csv(Path(folder) / "logs" / "metrics.csv").dropna(subset=["val_mse"])
    meta = estimator.meta_
    val_mse = float(logged.loc[logged["epoch"] == meta["best_epoch"], "val_mse"].iloc[-1])
    result = {"test": estimator.metrics_, "val_loss": meta["best_score"], "val_mse": val_mse,
              "best_epoch": meta["best_epoch"], "epochs_run": meta["epochs_run"], "wall_seconds": wall,
              "n_parameters": meta["n_parameters"]}  # fmt: skip
    if "refit" in meta:  # the chosen model's validation metrics, from before the refit trained on those items
        result["validation"] = meta["refit"]["validation_before_refit"]
        result["refit_epochs"] = meta["refit"]["epochs"]
    else:  # the kept model's every metric on validation (MAPE included)
        prepared = estimator.prepare_data()
        result["validation"] = estimator.score_part(prepared, prepared.val)
    return result


def save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def machine() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def search(out: Path, models: list[str], domains: list[str]) -> None:
    payload = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    payload["grid"] = GRID
    for model in models:
        recipe, overrides = ROWS[model]
        for lr, batch in GRID:
            key = f"{model} lr={lr} batch={batch}"
            for domain in domains:
                if domain in payload["runs"].get(key, {}):
                    continue
                sets = [*overrides, f"data.domain={domain}", f"training.lr={lr}", f"training.batch_size={batch}"]
                result = fit(recipe, sets)
                payload["runs"].setdefault(key, {})[domain] = result["val_loss"]
                print(key, domain, round(result["val_loss"], 4), flush=True)
                save(out, {**payload, "machine": machine()})
    print(search_table(payload))


def search_table(payload: dict) -> str:
    lines = ["| model | lr | batch | mean best validation loss |", "|---|---|---|---|"]
    for model in SEARCHED:
        grid = {f"{model} lr={lr} batch={batch}" for lr, batch in GRID}
        scored = [(statistics.fmean(v.values()), k) for k, v in payload["runs"].items()
                  if k in grid and len(v) == len(DOMAINS)]  # fmt: skip
        for rank, (loss, key) in enumerate(sorted(scored)):
            _, lr, batch = key.split()
            mark = " (chosen)" if rank == 0 else ""
            lines.append(f"| {model}{mark} | {lr[3:]} | {batch[6:]} | {loss:.4f} |")
    return "\n".join(lines)


def fit_into(out: Path, payload: dict, key: str, recipe: str, sets: list[str], shown: str,
             keep: Path | None = None) -> None:  # fmt: skip
    """Train the run ``key`` unless ``payload`` holds it, store it with its command and rewrite ``out``
    (so a stopped run continues where it stopped); print its ``shown`` metrics (test or validation)."""
    if key in payload["runs"]:
        return
    result = fit(recipe, sets, keep)
    result["command"] = train_command(recipe, sets)
    payload["runs"][key] = result
    print(key, {k: round(v, 4) for k, v in result[shown].items()}, flush=True)
    save(out, {**payload, "machine": machine(), "script": "python " + " ".join(sys.argv)})


def variants(out: Path, row: str, sets: list[str], domains: list[str], seeds: list[int]) -> None:
    """A search around one row, on validation: the row, and the row with each variant of ``sets`` added
    (one at a time; a variant may join several overrides with commas), on every domain and seed. Runs are
    keyed ``ROW+VARIANT/DOMAIN/SEED``; their test metrics are stored with them, but the search's table
    shows validation only."""
    recipe, overrides = ROWS[row]
    payload = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    for variant in ["", *sets]:
        added = variant.split(",") if variant else []
        for domain in domains:
            for seed in seeds:
                key = f"{row}{'+' + variant if variant else ''}/{domain}/{seed}"
                fit_into(out, payload, key, recipe, [*overrides, *added, f"data.domain={domain}", f"seed={seed}"],
                         "validation")  # fmt: skip
    print(variants_table(payload))


def variants_table(payload: dict) -> str:
    """Variants x domains: the protocol's validation metric (MSE on the original scale; Environment's
    MAPE), mean over seeds, and the geometric mean over domains of each variant's ratio to the first row,
    both taken over the same seeds (those the variant has run)."""
    runs = payload["runs"]
    names = list(dict.fromkeys(key.split("/")[0] for key in runs))

    def value(name: str, domain: str, seed: str) -> float | None:
        result = runs.get(f"{name}/{domain}/{seed}")
        return None if result is None else result["validation"]["mape" if domain == "Environment" else "mse"]

    seeds = sorted({key.split("/")[2] for key in runs})
    lines = ["| variant (validation) | seeds | " + " | ".join(DOMAINS) + " | ratio to the first row |",
             "|---" * (len(DOMAINS) + 3) + "|"]  # fmt: skip
    for name in names:
        cells, ratios, used = [], [], set()
        for domain in DOMAINS:
            own = {s: v for s in seeds if (v := value(name, domain, s)) is not None}
            base = {s: b for s in own if (b := value(names[0], domain, s)) is not None}
            cells.append(f"{statistics.fmean(own.values()):.4g}" if own else "")
            if base:  # matched seeds only
                ratios.append(statistics.fmean(own[s] for s in base) / statistics.fmean(base.values()))
            used |= own.keys()
        ratio = f"{statistics.geometric_mean(ratios):.3f}" if ratios else ""
        lines.append(f"| {name} | {' '.join(sorted(used))} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


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
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--validation", action="store_true", help="table each row's validation metrics")
    parser.add_argument("--table", action="store_true", help="with --variants-of: table the search")
    parser.add_argument("--models", nargs="+", default=None, help="the models of --search")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", help="the results file of --variants-of (default: results/search/...)")
    parser.add_argument("--search-out", default="benchmarks/results/p2-search.json")
    parser.add_argument("--variants-of", metavar="ROW", help="search on validation around ROW: with each --variant")
    parser.add_argument("--variant", nargs="+", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="the overrides of each variant, joined by commas")  # fmt: skip
    args = parser.parse_args()
    if args.variants_of and args.table:  # every results file of the search (one per process run side by side)
        runs = {}
        for path in sorted(SEARCH.glob(f"p2-variants-{args.variants_of}*.json")):
            runs.update(json.loads(path.read_text())["runs"])
        print(variants_table({"runs": runs}))
        return
    if args.variants_of:  # a search never writes into the table's results
        out = Path(args.out) if args.out else SEARCH / f"p2-variants-{args.variants_of}.json"
        variants(out, args.variants_of, args.variant, args.domains, args.seeds)
        return
    if args.search:
        search(Path(args.search_out), args.models or list(SEARCHED), args.domains)
    if args.validation:
        if Path(args.search_out).exists():
            print(search_table(json.loads(Path(args.search_out).read_text())), end="\n\n")
        runs = stored_runs()
        print(validation_table({"runs": runs}), end="\n\n")
        print(validation_table({"runs": runs}, "val_mse"))


if __name__ == "__main__":
    main()
