"""Protocol P8: does a multi-rate mixture accelerate liquid network training? Validation score against
wall-clock seconds and against epochs, for MR-MoE, each single liquid network and the LSTM/GRU.

    OMP_NUM_THREADS=1 python benchmarks/p8_liquid_acceleration.py --on p1 --seeds 0 1 2 3 4 --workers 2
    OMP_NUM_THREADS=1 python benchmarks/p8_liquid_acceleration.py --on etth1 --seeds 0 1 2 3 4 --workers 2
    python benchmarks/p8_liquid_acceleration.py --table [--on etth1]

Every model trains from its published recipe for a fixed number of epochs (``--epochs``; no early
stopping), one thread per run, ``--workers`` runs at a time side by side; its curve is its run's own log
(``logs/metrics.csv``: the monitored validation score and ``elapsed_seconds`` after every epoch). The
common target is the best validation score of the single CfC (mean over its seeds); the table gives each
model's mean time and epoch to first reach it (over the seeds that do), that time over the CfC's mean time
to its own best (the CfC's wall time: every CfC seed reaches its own best, only some reach the mean), and
the time and epoch to its own best.

- ``p1`` (PhysioNet 2012 mortality, validation AUROC): MR-MoE (its P1 recipe), MR-MoE with the paper's
  quasi-steady fast expert, MR-MoE on the single networks' inputs (z-scores, no input decay or dropout),
  the same-rate mixture and MR-MoE without attention (what the rates and the attention buy), CfC, LTC,
  CT-RNN with Euler steps (as in the paper), LSTM and GRU.
- ``etth1`` (ETTh1 forecasting, validation MSE): MR-MoE, CfC and GRU from their ETTh1 recipes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAIN_INPUTS = ["data.value_scaling=zscore", "model.observation_decay=false", "model.observation_dropout=0.0"]
PROTOCOLS = {  # model -> (recipe, overrides); the monitored score and whether higher is better
    "p1": {
        "models": {
            "mrmoe": ("configs/mrmoe-physionet2012.yaml", []),
            "mrmoe_quasi_steady": ("configs/mrmoe-physionet2012.yaml", ["model.fast_expert=quasi_steady"]),
            "mrmoe_plain_inputs": ("configs/mrmoe-physionet2012.yaml", PLAIN_INPUTS),
            "moe_same_rate": ("configs/moe_same_rate-physionet2012.yaml", []),
            "mrmoe_no_attention": ("configs/mrmoe_no_attention-physionet2012.yaml", []),
            "cfc": ("configs/cfc-physionet2012.yaml", []),
            "ltc": ("configs/ltc-physionet2012.yaml", []),
            "ctrnn_euler": ("configs/ctrnn-physionet2012.yaml", ["model.ctrnn_integrator=euler"]),
            "lstm": ("configs/lstm-physionet2012.yaml", []),
            "gru": ("configs/gru-physionet2012.yaml", []),
        },
        "score": ("val_auroc", True),
        "epochs": 12,  # P1's recipes stop at 8 epochs without improvement; CfC and MR-MoE peak near 6 to 8
    },
    "etth1": {
        "models": {
            "mrmoe": ("configs/mrmoe-etth1.yaml", []),
            "cfc": ("configs/cfc-etth1.yaml", []),
            "gru": ("configs/gru-etth1.yaml", []),
        },
        "score": ("val_mse", False),
        "epochs": 10,
    },
}


def curve(recipe: str, overrides: list[str], seed: int, epochs: int, score: str) -> list[dict]:
    """Train one run for ``epochs`` epochs (one thread) and read its validation curve."""
    import pandas as pd
    import torch

    from tsmoe.config import load_config
    from tsmoe.estimator import Estimator

    torch.set_num_threads(1)
    sets = [*overrides, f"seed={seed}", f"training.max_epochs={epochs}", f"training.patience={epochs}",
            "trainer.accelerator=cpu"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        Estimator.from_config(load_config(str(HERE.parent / recipe), sets)).fit(run_dir=folder)
        logs = pd.read_csv(Path(folder) / "logs" / "metrics.csv")
    rows = logs.dropna(subset=[score])
    return [{"epoch": int(r.epoch) + 1, "score": float(getattr(r, score)), "seconds": float(r.elapsed_seconds)}
            for r in rows.itertuples()]  # fmt: skip


def better(a: float, b: float, higher: bool) -> bool:
    return a >= b if higher else a <= b


def summary(payload: dict) -> list[dict]:
    """Per model: its best score, and the time and epoch to the CfC's best and to its own best."""
    protocol = PROTOCOLS[payload["setting"]]
    higher = protocol["score"][1]
    best_of = (lambda points: max(p["score"] for p in points)) if higher else (
        lambda points: min(p["score"] for p in points))  # fmt: skip
    curves = payload["curves"]
    if "cfc" not in curves:
        raise SystemExit("no CfC curves yet: the target is the CfC's best validation score")
    target = statistics.fmean(best_of(c) for c in curves["cfc"].values())
    rows = []
    for model, seeds in curves.items():
        hits = [next((p for p in c if better(p["score"], target, higher)), None) for c in seeds.values()]
        reached = [h for h in hits if h is not None]
        own = [next(p for p in c if p["score"] == best_of(c)) for c in seeds.values()]
        rows.append({
            "model": model,
            "seeds": len(seeds),
            "best": statistics.fmean(best_of(c) for c in seeds.values()),
            "best_sd": statistics.stdev([best_of(c) for c in seeds.values()]) if len(seeds) > 1 else 0.0,
            "target": target,
            "reached": len(reached),
            "seconds_to_target": statistics.fmean(h["seconds"] for h in reached) if reached else math.nan,
            "epochs_to_target": statistics.fmean(h["epoch"] for h in reached) if reached else math.nan,
            "seconds_to_own_best": statistics.fmean(p["seconds"] for p in own),
            "epochs_to_own_best": statistics.fmean(p["epoch"] for p in own),
            "seconds_per_epoch": statistics.fmean(c[-1]["seconds"] / c[-1]["epoch"] for c in seeds.values()),
        })  # fmt: skip
    cfc = next(r for r in rows if r["model"] == "cfc")
    for row in rows:
        row["time_vs_cfc"] = row["seconds_to_target"] / cfc["seconds_to_own_best"]
    return rows


def markdown_table(payload: dict) -> str:
    """The table of a results file (what ``--table`` prints and ``benchmarks/tables.py`` puts in the docs)."""
    score = PROTOCOLS[payload["setting"]]["score"][0]
    rows = summary(payload)
    lines = [f"Target: the single CfC's best {score}, {rows[0]['target']:.4f} (mean over its seeds).", "",
             f"| model | best {score} | seeds reaching the target | seconds to target | epochs to target | "
             "time to target / CfC's time to its best | seconds to own best | epochs to own best | s / epoch |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['best']:.4f} ± {r['best_sd']:.4f} | {r['reached']} of {r['seeds']} | "
            f"{r['seconds_to_target']:.0f} | {r['epochs_to_target']:.1f} | {r['time_vs_cfc']:.2f} | "
            f"{r['seconds_to_own_best']:.0f} | {r['epochs_to_own_best']:.1f} | {r['seconds_per_epoch']:.1f} |"
        )
    return "\n".join(lines)


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    score = PROTOCOLS[payload["setting"]]["score"][0]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, (model, seeds) in enumerate(payload["curves"].items()):
        for j, points in enumerate(seeds.values()):
            label = model if j == 0 else None
            axes[0].plot([p["epoch"] for p in points], [p["score"] for p in points], color=f"C{i}", label=label)
            axes[1].plot([p["seconds"] for p in points], [p["score"] for p in points], color=f"C{i}")
    axes[0].set(title=f"P8 {payload['setting']}: {score} by epoch", xlabel="epoch", ylabel=score)
    axes[1].set(title="by wall time", xlabel="seconds (1 CPU thread per run)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(out: Path, protocol: str, models: list[str], seeds: list[int], epochs: int, workers: int) -> None:
    from tsmoe.experiments.results import machine

    spec = PROTOCOLS[protocol]
    payload = (
        json.loads(out.read_text())
        if out.exists()
        else {
            "protocol": "P8",
            "setting": protocol,
            "epochs": epochs,
            "curves": {},
            "machine": machine(),
            "command": "OMP_NUM_THREADS=1 python benchmarks/" + " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
        }
    )
    if payload["epochs"] != epochs:
        raise SystemExit(f"{out} holds runs of {payload['epochs']} epochs; pass --epochs {payload['epochs']}")
    # seed by seed, so that a run stopped early holds whole seeds of every model
    todo = [(m, s) for s in seeds for m in models if str(s) not in payload["curves"].get(m, {})]
    os.environ["OMP_NUM_THREADS"] = "1"
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        futures = {pool.submit(curve, *spec["models"][m], s, epochs, spec["score"][0]): (m, s) for m, s in todo}
        for future in as_completed(futures):
            model, seed = futures[future]
            payload["curves"].setdefault(model, {})[str(seed)] = future.result()
            payload["curves"] = {m: payload["curves"][m] for m in spec["models"] if m in payload["curves"]}
            out.write_text(json.dumps(payload, indent=1) + "\n")
            print(model, seed, "done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--on", choices=list(PROTOCOLS), default="p1", help="P1 mortality or ETTh1 forecasting")
    parser.add_argument("--models", nargs="+", default=None, help="default: every model of the protocol")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None, help="default: the protocol's")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, one thread each")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/p8-<on>.json")
    parser.add_argument("--table", action="store_true", help="print the table (and draw the plot) of --out")
    args = parser.parse_args()
    out = args.out or HERE / "results" / f"p8-{args.on}.json"
    if not args.table:
        models = args.models or list(PROTOCOLS[args.on]["models"])
        run(out, args.on, models, args.seeds, args.epochs or PROTOCOLS[args.on]["epochs"], args.workers)
    payload = json.loads(out.read_text())
    plot(payload, out.with_suffix(".png"))
    print(markdown_table(payload))


if __name__ == "__main__":
    main()
