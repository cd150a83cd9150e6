"""Protocol P9: tsmoe's forecasting baselines against neuralforecast's, side by side.

    python benchmarks/p9_neuralforecast.py --out benchmarks/results/p9-neuralforecast.json --workers 2
    python benchmarks/p9_neuralforecast.py --report                 # the table from the results file
    python benchmarks/p9_neuralforecast.py --seeds 0 --workers 2 --out benchmarks/results/reproduced/p9-s0.json \
        --losses runs/p9-losses                                     # seed 0 again, each run's window losses kept
    python benchmarks/p9_neuralforecast.py --losses runs/p9-losses --paired benchmarks/results/p9-paired.json
                                                                    # tsmoe against neuralforecast, window by window

DLinear, PatchTST and iTransformer on ETTh1 (12/4/4-month split) and Exchange (70/10/20), lookback 96,
horizon 96, every stride-1 test window and channel, z-scored with training statistics, seeds 0-2. Both
libraries read the same scaled rows (tsmoe's loaders and split borders; neuralforecast gets them as a
long frame with ``scaler_type="identity"``) and are trained alike: MSE loss, Adam lr 1e-4, 10 epochs' worth
of steps, batches of 32 windows x all channels, early stopping after 3 validations without improvement,
the best validation weights restored. Model settings are tsmoe's recipes (``configs/*-etth1.yaml``);
neuralforecast's own defaults are kept for what the recipes do not name (its PatchTST normalises with
LayerNorm and subtracts the last value in RevIN). Training wall time is the Lightning ``fit`` of each,
one thread per run, ``--workers`` runs at a time. Rows ``tsmoe_patchtst_layernorm`` and
``tsmoe_patchtst_standard`` (ETTh1) measure what the official PatchTST encoder's parts buy: LayerNorm in
place of BatchNorm, and PyTorch's standard encoder layer (no residual attention, LayerNorm).

neuralforecast is not a tsmoe dependency; this script installs nothing. Install it beside tsmoe with
``pip install neuralforecast "ray[tune]"`` (the results here: neuralforecast 3.3.0).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATASETS = ("etth1", "exchange_rate")
MODELS = ("dlinear", "patchtst", "itransformer")
SEEDS = (0, 1, 2)
LOOKBACK = HORIZON = 96
BATCH_WINDOWS, LR, EPOCHS, PATIENCE = 32, 1e-4, 10, 3
# tsmoe-only rows on ETTh1: the official PatchTST encoder with one part replaced.
ABLATIONS = {
    "tsmoe_patchtst_layernorm": ["model.norm=layer"],
    "tsmoe_patchtst_standard": ["model.norm=layer", "model.residual_attention=false"],
}
P9_RESULTS = HERE / "results" / "p9-neuralforecast.json"  # the stored runs the paired ones must reproduce
INSTALL = 'P9 needs neuralforecast beside tsmoe: pip install neuralforecast "ray[tune]"'


def one_thread() -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def scaled_rows(dataset: str) -> dict[str, Any]:
    """The rows both libraries see: ``values (T, C)`` z-scored with training statistics, cut after the test
    part, and the row counts of the validation and test parts (tsmoe's own loader and borders)."""
    from tsmoe.data.registry import get_dataset
    from tsmoe.data.splits import borders_from_lengths, chronological_borders
    from tsmoe.data.windows import StandardScaler

    adapter = get_dataset(dataset)
    params = adapter.params()
    source = adapter.load(params)
    series = source.series
    if len(series) != 1:
        raise SystemExit(f"{dataset}: expected one multivariate series, found {len(series)}")
    values = series[0].values
    if params.split_lengths:
        borders = borders_from_lengths(len(values), tuple(params.split_lengths), LOOKBACK)
    else:
        borders = chronological_borders(len(values), tuple(params.split_fractions), LOOKBACK)
    (_, n_train), (_, val_end), (_, test_end) = borders
    scaler = StandardScaler.fit([values[:n_train]])
    return {
        "values": scaler.transform(values[:test_end]),
        "columns": list(source.columns),
        "n_train": n_train,
        "n_val": val_end - n_train,
        "n_test": test_end - val_end,
    }


def save_window_losses(folder: str | None, row: str, dataset: str, seed: int, squared: np.ndarray,
                       absolute: np.ndarray) -> None:  # fmt: skip
    """Each test window's MSE and MAE (over its horizon and channels), in time order, for the paired tests."""
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        np.savez(Path(folder) / f"{row}-{dataset}-{seed}.npz", mse=squared, mae=absolute)


def tsmoe_run(row: str, dataset: str, seed: int, losses: str | None = None) -> dict[str, Any]:
    """Train one tsmoe recipe through the one training path; test metrics on the z-scored scale."""
    one_thread()
    from tsmoe.config import load_config
    from tsmoe.estimator import Estimator
    from tsmoe.experiments.results import machine
    from tsmoe.metrics import window_losses

    model = "patchtst" if row in ABLATIONS else row.removeprefix("tsmoe_")
    overrides = [f"data.name={dataset}", f"seed={seed}", *ABLATIONS.get(row, [])]
    config = load_config(str(ROOT / "configs" / f"{model}-etth1.yaml"), overrides)
    with tempfile.TemporaryDirectory() as scratch:
        estimator = Estimator.from_config(config).fit(run_dir=scratch)
        if losses is not None:
            prepared = estimator.prepare_data()
            per_window = window_losses(*estimator.scored_outputs(prepared, prepared.test))
            save_window_losses(losses, row, dataset, seed, per_window["mse"], per_window["mae"])
    meta = estimator.meta_
    return {
        "command": f"tsmoe train configs/{model}-etth1.yaml " + " ".join(f"--set {o}" for o in overrides),
        "test": {"mse": estimator.metrics_["mse"], "mae": estimator.metrics_["mae"]},
        "train_seconds": meta["train_seconds"],
        "epochs_run": meta["epochs_run"],
        "best_epoch": meta["best_epoch"],
        "n_parameters": meta["n_parameters"],
        "machine": machine(),
    }


# Written by the callbacks below: neuralforecast deep-copies its models (and their callbacks) before fitting.
_FIT_RECORD: dict[str, Any] = {}


def neuralforecast_callbacks() -> list:
    """A timer of Lightning's ``fit`` and a keeper of the best validation weights (restored at the end)."""
    import pytorch_lightning as pl

    class FitTimer(pl.Callback):
        def on_fit_start(self, trainer, pl_module) -> None:
            _FIT_RECORD["started"] = time.perf_counter()

        def on_fit_end(self, trainer, pl_module) -> None:
            _FIT_RECORD["train_seconds"] = time.perf_counter() - _FIT_RECORD["started"]
            _FIT_RECORD["steps"] = trainer.global_step

    class RestoreBest(pl.Callback):
        def on_validation_end(self, trainer, pl_module) -> None:
            loss = trainer.callback_metrics.get("ptl/val_loss")
            if trainer.sanity_checking or loss is None:
                return
            if float(loss) < _FIT_RECORD.get("best_val_loss", math.inf):
                _FIT_RECORD["best_val_loss"] = float(loss)
                _FIT_RECORD["best_step"] = trainer.global_step
                _FIT_RECORD["best_state"] = copy.deepcopy(pl_module.state_dict())

        def on_fit_end(self, trainer, pl_module) -> None:
            if "best_state" in _FIT_RECORD:
                pl_module.load_state_dict(_FIT_RECORD.pop("best_state"))

    return [FitTimer(), RestoreBest()]


def neuralforecast_run(row: str, dataset: str, seed: int, losses: str | None = None) -> dict[str, Any]:
    """Train one neuralforecast model on the same scaled rows and score every stride-1 test window."""
    one_thread()
    import logging

    import neuralforecast
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.models import DLinear, PatchTST, iTransformer

    from tsmoe.experiments.results import machine

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = scaled_rows(dataset)
    values, n_series = rows["values"], rows["values"].shape[1]
    frame = pd.DataFrame({
        "unique_id": np.repeat(rows["columns"], len(values)),
        "ds": np.tile(np.arange(len(values)), n_series),
        "y": values.T.reshape(-1),
    })  # fmt: skip
    steps_per_epoch = math.ceil((rows["n_train"] - LOOKBACK - HORIZON + 1) / BATCH_WINDOWS)
    common = {
        "h": HORIZON,
        "input_size": LOOKBACK,
        "loss": MSE(),
        "valid_loss": MSE(),
        "learning_rate": LR,
        "max_steps": EPOCHS * steps_per_epoch,
        "val_check_steps": steps_per_epoch,
        "early_stop_patience_steps": PATIENCE,
        "scaler_type": "identity",
        "random_seed": seed,
        "batch_size": n_series,  # every channel in every batch ...
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "callbacks": neuralforecast_callbacks(),
    }
    univariate = {"windows_batch_size": BATCH_WINDOWS * n_series}  # ... and 32 windows of each
    model = {
        "nf_dlinear": lambda: DLinear(moving_avg_window=25, **univariate, **common),
        "nf_patchtst": lambda: PatchTST(
            patch_len=16,
            stride=8,
            hidden_size=16,
            n_heads=4,
            linear_hidden_size=128,
            encoder_layers=3,
            dropout=0.3,
            fc_dropout=0.3,
            head_dropout=0.0,
            **univariate,
            **common,
        ),  # fmt: skip
        "nf_itransformer": lambda: iTransformer(
            n_series=n_series,
            hidden_size=256,
            n_heads=8,
            e_layers=2,
            d_ff=256,
            dropout=0.1,
            windows_batch_size=BATCH_WINDOWS,
            **common,
        ),  # fmt: skip
    }[row]()
    _FIT_RECORD.clear()
    forecaster = NeuralForecast(models=[model], freq=1)
    predicted = forecaster.cross_validation(
        df=frame, val_size=rows["n_val"], test_size=rows["n_test"], n_windows=None, step_size=1, refit=False
    )
    column = next(c for c in predicted.columns if c not in {"unique_id", "ds", "cutoff", "y"})
    error = predicted["y"].to_numpy() - predicted[column].to_numpy()
    n_windows = rows["n_test"] - HORIZON + 1
    if len(error) != n_windows * HORIZON * n_series:
        raise RuntimeError(f"expected {n_windows} windows x {HORIZON} x {n_series}, got {len(error)} forecasts")
    by_window = pd.DataFrame({"cutoff": predicted["cutoff"].to_numpy(), "squared": error**2, "absolute": np.abs(error)})
    per_window = by_window.groupby("cutoff", sort=True).mean()  # cutoffs in time order: the windows in order
    save_window_losses(losses, row, dataset, seed, per_window["squared"].to_numpy(), per_window["absolute"].to_numpy())
    return {
        "test": {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))},
        "train_seconds": _FIT_RECORD["train_seconds"],
        "steps": _FIT_RECORD["steps"],
        "steps_per_epoch": steps_per_epoch,
        "best_step": _FIT_RECORD.get("best_step"),
        "neuralforecast": neuralforecast.__version__,
        "machine": machine(),
    }


def model_share(steps: int = 200) -> dict[str, dict[str, float]]:
    """How much of a tsmoe training step is the model itself, per model on ETTh1 (one thread, alone): the
    milliseconds of the model's forward, backward and Adam update on a batch of 32 windows of random numbers,
    against those of a whole training step of ``tsmoe train`` (2 epochs, data and validation included).
    No library can train the same model faster than its model-only step."""
    import torch

    from tsmoe.config import load_config
    from tsmoe.estimator import Estimator
    from tsmoe.models.registry import build_model

    one_thread()
    out = {}
    per_epoch = math.ceil((scaled_rows("etth1")["n_train"] - LOOKBACK - HORIZON + 1) / BATCH_WINDOWS)
    for model in MODELS:
        config = load_config(str(ROOT / "configs" / f"{model}-etth1.yaml"), ["training.max_epochs=2"])
        dims = {"lookback": LOOKBACK, "horizon": HORIZON, "n_channels": 7}
        network = build_model(config.model, dims, "forecast", "window")
        optimiser = torch.optim.Adam(network.parameters(), LR)
        x, y = torch.randn(BATCH_WINDOWS, LOOKBACK, 7), torch.randn(BATCH_WINDOWS, HORIZON, 7)
        for i in range(steps + 10):
            if i == 10:
                started = time.perf_counter()
            optimiser.zero_grad()
            torch.mean((network({"x": x}) - y) ** 2).backward()
            optimiser.step()
        alone = 1000 * (time.perf_counter() - started) / steps
        with tempfile.TemporaryDirectory() as scratch:
            meta = Estimator.from_config(config).fit(run_dir=scratch).meta_
        whole = 1000 * meta["train_seconds"] / (meta["epochs_run"] * per_epoch)
        out[model] = {"model_ms_per_step": alone, "training_ms_per_step": whole, "share": alone / whole}
        print(model, {k: round(v, 3) for k, v in out[model].items()}, flush=True)
    return out


def run_job(row: str, dataset: str, seed: int, losses: str | None = None) -> dict[str, Any]:
    return (neuralforecast_run if row.startswith("nf_") else tsmoe_run)(row, dataset, seed, losses)


def planned(models: list[str], datasets: list[str], seeds: list[int]) -> list[tuple[str, str, int]]:
    """Every run, longest first (neuralforecast's PatchTST), so parallel workers finish together."""
    jobs = [(f"{lib}_{m}", d, s) for lib in ("nf", "tsmoe") for m in models for d in datasets for s in seeds]
    if "patchtst" in models and "etth1" in datasets:
        jobs += [(row, "etth1", s) for row in ABLATIONS for s in seeds]
    order = {"nf_patchtst": 0, "nf_itransformer": 1, "nf_dlinear": 2}
    return sorted(jobs, key=lambda job: (order.get(job[0], 3), job[1] != "etth1"))


def run(out: Path, models: list[str], datasets: list[str], seeds: list[int], workers: int,
        losses: str | None = None) -> None:  # fmt: skip
    from tsmoe.experiments.results import add_run, read_results

    try:
        import neuralforecast  # noqa: F401
    except ImportError:
        raise SystemExit(INSTALL) from None
    stored = read_results(out).get("runs", {})
    jobs = [job for job in planned(models, datasets, seeds) if "/".join(map(str, job)) not in stored]
    header = {"protocol": "P9", "script": "python benchmarks/p9_neuralforecast.py --workers 2"}
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_job, *job, losses): job for job in jobs}
        for future in as_completed(futures):
            key = "/".join(map(str, futures[future]))
            result = future.result()
            add_run(out, key, result, header)
            print(f"{key}: test MSE {result['test']['mse']:.4f}, {result['train_seconds']:.0f} s", flush=True)


LABELS = {"dlinear": "DLinear", "patchtst": "PatchTST", "itransformer": "iTransformer"}


def paired(losses: Path, stored: dict[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """Each model and data set: tsmoe's test windows against neuralforecast's, by the paired t-test on batch
    means of the per-window MSE and MAE (batches of two horizons, as ``tsmoe compare``), with each side's
    mean loss beside the stored run's (the runs made again must be the stored ones)."""
    from tsmoe.analysis.paired_tests import diebold_mariano
    from tsmoe.metrics import window_block

    pairs = []
    for model in MODELS:
        for dataset in DATASETS:
            ours, theirs = (np.load(losses / f"{lib}_{model}-{dataset}-{seed}.npz") for lib in ("tsmoe", "nf"))
            if len(ours["mse"]) != len(theirs["mse"]):
                raise SystemExit(f"{model} on {dataset}: {len(ours['mse'])} tsmoe windows, {len(theirs['mse'])} nf")
            tests = {m: diebold_mariano(ours[m], theirs[m], window_block(HORIZON)) for m in ("mse", "mae")}
            stored_mse = {lib: stored.get(f"{lib}_{model}/{dataset}/{seed}", {}).get("test", {}).get("mse")
                          for lib in ("tsmoe", "nf")}  # fmt: skip
            pairs.append({"model": model, "data": dataset, "seed": seed, "windows": int(len(ours["mse"])),
                          "tsmoe_mse": float(ours["mse"].mean()), "nf_mse": float(theirs["mse"].mean()),
                          "stored_mse": stored_mse, "tests": tests})  # fmt: skip
    return pairs


def paired_table(pairs: list[dict[str, Any]]) -> str:
    """tsmoe - neuralforecast per model and data set: the MSE and MAE differences with 95 % intervals and p."""
    lines = ["| data | model | tsmoe MSE | neuralforecast MSE | MSE difference [95 % interval] | p | MAE difference "
             "[95 % interval] | p |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for pair in pairs:
        cells = []
        for metric in ("mse", "mae"):
            test = pair["tests"][metric]
            low, high = test["interval"]
            cells += [f"{test['difference']:+.4f} [{low:+.4f}, {high:+.4f}]", f"{test['p_value']:.2g}"]
        lines.append(f"| {pair['data']} | {LABELS[pair['model']]} | {pair['tsmoe_mse']:.4f} | {pair['nf_mse']:.4f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def markdown_table(result: dict[str, Any]) -> str:
    """P9's table: per data set and model, both libraries' test MSE/MAE, training seconds and milliseconds per
    training step (mean ± std over seeds; tsmoe's steps are its epochs run times the steps of an epoch), the
    MSE goal (tsmoe's mean at most neuralforecast's mean plus the std of both libraries' runs pooled), and
    the PatchTST encoder rows."""
    runs = result["runs"]

    def of(row: str, dataset: str, key: str, metric: str | None = None) -> list[float]:
        found = [r for k, r in sorted(runs.items()) if k.split("/")[:2] == [row, dataset]]
        return [r[key][metric] if metric else r[key] for r in found]

    def pm(values: list[float], digits: int) -> str:
        mean, std = mean_std(values)
        return f"{mean:.{digits}f} ± {std:.{digits}f}"

    lines = [
        "| data | model | test MSE, tsmoe | test MSE, neuralforecast | test MAE, tsmoe | test MAE, neuralforecast "
        "| train s, tsmoe | train s, neuralforecast | speed-up | ms / step, tsmoe | ms / step, neuralforecast "
        "| MSE goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        for model in MODELS:
            ours, theirs = f"tsmoe_{model}", f"nf_{model}"
            if not of(ours, dataset, "test", "mse") or not of(theirs, dataset, "test", "mse"):
                continue
            mse_ours, mse_theirs = of(ours, dataset, "test", "mse"), of(theirs, dataset, "test", "mse")
            bound = mean_std(mse_theirs)[0] + statistics.stdev(mse_ours + mse_theirs)
            seconds_ours, seconds_theirs = of(ours, dataset, "train_seconds"), of(theirs, dataset, "train_seconds")
            per_epoch = of(theirs, dataset, "steps_per_epoch")[0]
            step_ours = [
                1000 * s / (e * per_epoch) for s, e in zip(seconds_ours, of(ours, dataset, "epochs_run"), strict=True)
            ]
            step_theirs = [1000 * s / n for s, n in zip(seconds_theirs, of(theirs, dataset, "steps"), strict=True)]
            speed_up = mean_std(seconds_theirs)[0] / mean_std(seconds_ours)[0]
            verdict = "met" if mean_std(mse_ours)[0] <= bound else "not met"
            lines.append(
                f"| {dataset} | {LABELS[model]} | {pm(mse_ours, 4)} | {pm(mse_theirs, 4)} "
                f"| {pm(of(ours, dataset, 'test', 'mae'), 4)} | {pm(of(theirs, dataset, 'test', 'mae'), 4)} "
                f"| {pm(seconds_ours, 0)} | {pm(seconds_theirs, 0)} | {speed_up:.1f}x | {pm(step_ours, 1)} "
                f"| {pm(step_theirs, 1)} | {verdict} (≤ {bound:.4f}) |"
            )
    ablation = ["", "| ETTh1 PatchTST encoder (tsmoe) | test MSE | test MAE | train s |", "|---|---|---|---|"]
    for row, label in (
        ("tsmoe_patchtst", "official: residual attention, BatchNorm"),
        ("tsmoe_patchtst_layernorm", "residual attention, LayerNorm"),
        ("tsmoe_patchtst_standard", "PyTorch's encoder layer (LayerNorm, no residual attention)"),
    ):
        if of(row, "etth1", "test", "mse"):
            mse, mae, seconds = (of(row, "etth1", "test", "mse"), of(row, "etth1", "test", "mae"),
                                 of(row, "etth1", "train_seconds"))  # fmt: skip
            ablation.append(f"| {label} | {pm(mse, 4)} | {pm(mae, 4)} | {pm(seconds, 0)} |")
    share = result.get("model_share", {})
    shares = [
        f"{LABELS[m]} {v['model_ms_per_step']:.1f} of {v['training_ms_per_step']:.1f} ms ({100 * v['share']:.0f} %)"
        for m, v in share.items()
    ]
    note = ["", "The model alone (forward, backward, Adam; ETTh1, one thread, nothing else running) in a tsmoe "
            "training step: " + "; ".join(shares) + "."] if shares else []  # fmt: skip
    return "\n".join(lines + (ablation if len(ablation) > 3 else []) + note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=P9_RESULTS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--data", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, one thread each")
    parser.add_argument("--report", action="store_true", help="print the table from --out and stop")
    parser.add_argument("--model-share", action="store_true", help="measure the model's share of a tsmoe step")
    parser.add_argument("--losses", help="a folder to keep each run's per-window test losses in (for --paired)")
    parser.add_argument("--paired", type=Path, help="write the paired tests of seed 0 to this file, from --losses")
    args = parser.parse_args()
    if args.paired is not None:
        from tsmoe.experiments.results import machine
        from tsmoe.io import write_json

        if args.losses is None:
            parser.error("--paired reads the per-window losses of --losses")
        pairs = paired(Path(args.losses), json.loads(P9_RESULTS.read_text())["runs"])
        command = f"python benchmarks/p9_neuralforecast.py --losses {args.losses} --paired {args.paired}"
        write_json(args.paired, {"protocol": "P9-paired", "command": command, "machine": machine(), "pairs": pairs})
        print(paired_table(pairs))
        return
    if args.model_share:
        from tsmoe.experiments.results import locked, machine, read_results
        from tsmoe.io import write_json

        share = model_share()
        with locked(args.out):
            write_json(args.out, {**read_results(args.out), "model_share": share, "model_share_machine": machine()})
        return
    if args.report:
        print(markdown_table(json.loads(args.out.read_text())))
        return
    run(args.out, args.models, args.data, args.seeds, args.workers, args.losses)


if __name__ == "__main__":
    sys.exit(main())
