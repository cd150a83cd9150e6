"""Protocol P2: MoME, its ablations and the baselines on the MoME paper's Time-MMD windows.

    OMP_NUM_THREADS=1 python benchmarks/p2_timemmd.py --search     # optimiser per model, on validation only
    OMP_NUM_THREADS=1 python benchmarks/p2_timemmd.py --run --seeds 0 1 2 3 4
    python benchmarks/p2_timemmd.py --table
    OMP_NUM_THREADS=1 python benchmarks/p2_timemmd.py --variants-of ROW --variant model.d_model=64 ... --seeds 0 1

``--search`` trains every model of the search (seed 0) with each (lr, batch size) of the grid on every
domain and ranks the settings by the mean of the best validation loss (MSE of the window-normalised
forecast, so domains are comparable); the chosen setting goes into the model's recipe by hand. ``--run``
trains each row of the table from its recipe, on every domain and seed; its JSON is rewritten after every
run and a stopped run continues where it stopped. Each run is ``tsmoe train RECIPE --set data.domain=D
--set seed=S [--set ...]``. Test metrics are on the original scale. ``--variants-of ROW`` searches around
one row on validation only: the row with each ``--variant`` override added, one at a time.
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
from tsmoe.metrics import error_metrics
from tsmoe.tasks import get_task

DOMAINS = ("HealthUS", "HealthAFR", "SocialGood", "Energy", "Environment")
PAPER = {"HealthUS": ("mse", 0.379), "HealthAFR": ("mse", 0.103), "SocialGood": ("mse", 1.419),
         "Environment": ("mape", 15.434)}  # fmt: skip

# row -> (recipe, overrides); the ablations are MoME with less text
ROWS: dict[str, tuple[str, list[str]]] = {
    "mome": ("configs/mome-mome_timemmd.yaml", []),
    "mome_eilm_only": ("configs/mome-mome_timemmd.yaml", ["model.text=eilm"]),
    "mome_rm_only": ("configs/mome-mome_timemmd.yaml", ["model.text=rm"]),
    "mome_no_text": ("configs/mome-mome_timemmd.yaml", ["model.text=none", "data.text_encoder=none"]),
    "mome_last_anchor": ("configs/mome-mome_timemmd.yaml", ["model.anchor=last"]),  # a residual on the last value
    # trained on the original scale, the test metric's, instead of the window-normalised one
    "mome_last_anchor_original_loss": (
        "configs/mome-mome_timemmd.yaml",
        ["model.anchor=last", "training.forecast_loss=original"],
    ),
    "mome_no_text_last_anchor_original_loss": (
        "configs/mome-mome_timemmd.yaml",
        ["model.text=none", "data.text_encoder=none", "model.anchor=last", "training.forecast_loss=original"],
    ),
    # trained (and the epoch kept) on the MAPE, Environment's test metric; Environment only
    "mome_mape_loss": ("configs/mome-mome_timemmd.yaml", ["training.forecast_loss=mape"]),
    "mome_last_anchor_mape_loss": (
        "configs/mome-mome_timemmd.yaml",
        ["model.anchor=last", "training.forecast_loss=mape"],
    ),
    "token_fusion_mape_loss": ("configs/token_fusion-mome_timemmd.yaml", ["training.forecast_loss=mape"]),
    # MoME 64 wide: the variant the validation search around mome_last_anchor_original_loss chose
    # (--variants-of; results/search/p2-variants-*.json)
    "mome_d64_last_anchor_original_loss": (
        "configs/mome-mome_timemmd.yaml",
        ["model.d_model=64", "model.anchor=last", "training.forecast_loss=original"],
    ),
    "mome_d64_last_anchor_mape_loss": (
        "configs/mome-mome_timemmd.yaml",
        ["model.d_model=64", "model.anchor=last", "training.forecast_loss=mape"],
    ),
    "token_fusion": ("configs/token_fusion-mome_timemmd.yaml", []),
    "token_fusion_last_anchor": ("configs/token_fusion-mome_timemmd.yaml", ["model.anchor=last"]),
    "token_fusion_last_anchor_original_loss": (
        "configs/token_fusion-mome_timemmd.yaml",
        ["model.anchor=last", "training.forecast_loss=original"],
    ),
    # token fusion at MoME's chosen width, so that the two ways of using text are compared at one width
    "token_fusion_d64_last_anchor_original_loss": (
        "configs/token_fusion-mome_timemmd.yaml",
        ["model.d_model=64", "model.anchor=last", "training.forecast_loss=original"],
    ),
    "timemoe": ("configs/timemoe-mome_timemmd.yaml", []),
    "patchtst": ("configs/patchtst-mome_timemmd.yaml", []),
    "itransformer": ("configs/itransformer-mome_timemmd.yaml", []),
    "dlinear": ("configs/dlinear-mome_timemmd.yaml", []),
}
# every row again with training.refit: the epoch chosen on validation, then a model from the same seed
# trained on training + validation for that many epochs (the reference trains on the whole train file)
ROWS |= {f"{row}_refit": (recipe, [*sets, "training.refit=true"]) for row, (recipe, sets) in list(ROWS.items())}
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
        result["validation"] = get_task(prepared.task).metrics(*estimator.scored_outputs(prepared, prepared.val))
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


def run(out: Path, rows: list[str], domains: list[str], seeds: list[int], runs: Path | None = None) -> None:
    """Train each row on every domain and seed into ``out``; with ``runs``, keep each run folder as
    ``RUNS/ROW-DOMAIN-sSEED`` (the names ``seed_ensemble.py --runs RUNS/ROW-DOMAIN`` reads)."""
    payload = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    for row in rows:
        recipe, overrides = ROWS[row]
        for domain in domains:
            for seed in seeds:
                sets = [*overrides, f"data.domain={domain}", f"seed={seed}"]
                keep = runs / f"{row}-{domain}-s{seed}" if runs is not None else None
                fit_into(out, payload, f"{row}/{domain}/{seed}", recipe, sets, "test", keep)
    print(table(payload))


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


def table(payload: dict) -> str:
    """Rows x domains: test MSE (mean +- std over seeds); Environment also MAPE, as the paper reports it."""
    head = "| model | " + " | ".join(DOMAINS) + " | Environment MAPE |"
    lines = [head, "|---" * (len(DOMAINS) + 2) + "|"]
    for row in ROWS:
        cells = []
        for domain, metric in [*((d, "mse") for d in DOMAINS), ("Environment", "mape")]:
            values = [r["test"][metric] for k, r in payload["runs"].items() if k.startswith(f"{row}/{domain}/")]
            if not values:
                cells.append("")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(
                f"{statistics.fmean(values):.4g} ± {spread:.2g}" + ("" if len(values) == 5 else f" ({len(values)})")
            )
        if any(cells):
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
    naive = [naive_last_value(d) for d in DOMAINS]
    lines.append("| last value (no model) | " + " | ".join(f"{n['mse']:.4g}" for n in naive) +
                 f" | {naive[DOMAINS.index('Environment')]['mape']:.3f} |")  # fmt: skip
    paper = [f"{PAPER[d][1]}" if d in PAPER and PAPER[d][0] == "mse" else "" for d in DOMAINS]
    lines.append("| MoME paper | " + " | ".join(paper) + f" | {PAPER['Environment'][1]} |")
    return "\n".join(lines)


def validation_table(payload: dict, key: str = "val_loss") -> str:
    """Rows x domains, mean over seeds of each run's ``key``: ``val_loss``, the best validation loss (what
    the run was selected on: the window-normalised MSE, or the original-scale MSE for the rows trained on
    it), or ``val_mse``, the validation MSE on the original scale at that epoch (stored by the runs made
    since it was added). What may choose between rows, since the test split may not."""
    lines = ["| model | " + " | ".join(DOMAINS) + " |", "|---" * (len(DOMAINS) + 1) + "|"]
    for row in ROWS:
        cells = []
        for domain in DOMAINS:
            runs = [r for k, r in payload["runs"].items() if k.startswith(f"{row}/{domain}/") and key in r]
            cells.append(f"{statistics.fmean(r[key] for r in runs):.4g}" if runs else "")
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
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--models", nargs="+", default=None, help="rows (--run) or models (--search)")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="benchmarks/results/p2-timemmd.json")
    parser.add_argument("--search-out", default="benchmarks/results/p2-search.json")
    parser.add_argument("--runs", help="keep each --run's folder as RUNS/ROW-DOMAIN-sSEED (default: not kept)")
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
    if args.variants_of:
        out = Path(args.out)
        if args.out == parser.get_default("out"):  # a search never writes into the table's results
            out = SEARCH / f"p2-variants-{args.variants_of}.json"
        variants(out, args.variants_of, args.variant, args.domains, args.seeds)
        return
    if args.search:
        search(Path(args.search_out), args.models or list(SEARCHED), args.domains)
    if args.run:
        run(Path(args.out), args.models or list(ROWS), args.domains, args.seeds, args.runs and Path(args.runs))
    if args.table:
        if Path(args.search_out).exists():
            print(search_table(json.loads(Path(args.search_out).read_text())), end="\n\n")
        runs = {}  # the runs of every results file of P2 (several processes may have run rows side by side)
        for path in sorted(Path(args.out).parent.glob("p2-timemmd*.json")):
            runs.update(json.loads(path.read_text())["runs"])
        print(table({"runs": runs}), end="\n\n")
        print(validation_table({"runs": runs}), end="\n\n")
        print(validation_table({"runs": runs}, "val_mse"))


if __name__ == "__main__":
    main()
