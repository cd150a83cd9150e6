"""Convergence: validation loss against training step and against wall time, and the time to a common
target loss, for MoME, iTransformer and the Time-MoE-style model, each from its P2 (or P3) recipe.

    OMP_NUM_THREADS=1 python benchmarks/convergence.py --domains HealthUS SocialGood --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/convergence.py --protocol p3 --domains Health_US --seeds 0 1 2
    python benchmarks/convergence.py --table [--protocol p3]

Every model's curve comes from its run's own logs (``logs/metrics.csv``: ``val_loss`` and
``elapsed_seconds`` after every epoch; the validation loss is the MSE of the window-normalised forecast,
so models compare). The common target of a domain is the highest of the models' best validation losses
(mean over seeds), so every model reaches it; the table gives, per model, the mean time and step at
which its run first reached it. Runs train without early stopping for a fixed number of epochs. The
MoME runs read cached text encodings (the encoder's one-off cost is not in the curve).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from tsmoe.config import load_config  # noqa: E402
from tsmoe.estimator import Estimator  # noqa: E402

MODELS = ("mome", "itransformer", "timemoe")
RECIPES = {"p2": "configs/{}-mome_timemmd.yaml", "p3": "configs/{}-time_mmd.yaml"}  # P3: each recipe's own
# lookback and horizon (Health_US: weekly, 24 -> 12)


def curve(recipe: str, domain: str, seed: int, epochs: int) -> list[dict]:
    overrides = [f"data.domain={domain}", f"seed={seed}", f"training.max_epochs={epochs}",
                 f"training.patience={epochs}"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        Estimator.from_config(load_config(recipe, overrides)).fit(run_dir=folder)
        logs = pd.read_csv(Path(folder) / "logs" / "metrics.csv")
    rows = logs.dropna(subset=["val_loss"])
    return [{"epoch": int(r.epoch), "step": int(r.step), "val_loss": float(r.val_loss),
             "seconds": float(r.elapsed_seconds)} for r in rows.itertuples()]  # fmt: skip


def first_reach(points: list[dict], target: float) -> dict | None:
    return next((p for p in points if p["val_loss"] <= target), None)


def table(payload: dict) -> str:
    lines = ["| domain | target loss | model | seconds to target | steps to target | best validation loss |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for domain, runs in payload["curves"].items():
        best = {m: statistics.fmean(min(p["val_loss"] for p in c) for c in seeds.values()) for m, seeds in runs.items()}
        target = max(best.values())
        for model, seeds in runs.items():
            reached = [first_reach(c, target) for c in seeds.values()]
            hit = [r for r in reached if r is not None]
            seconds = statistics.fmean(r["seconds"] for r in hit) if hit else float("nan")
            steps = statistics.fmean(r["step"] for r in hit) if hit else float("nan")
            note = "" if len(hit) == len(reached) else f" ({len(hit)} of {len(reached)} seeds)"
            lines.append(
                f"| {domain} | {target:.4f} | {model} | {seconds:.1f}{note} | {steps:.0f} | {best[model]:.4f} |"
            )
    return "\n".join(lines)


def plot(payload: dict, path: Path) -> None:
    domains = list(payload["curves"])
    fig, axes = plt.subplots(len(domains), 2, figsize=(10, 3.2 * len(domains)), squeeze=False)
    for row, domain in enumerate(domains):
        for model, seeds in payload["curves"][domain].items():
            for i, points in enumerate(seeds.values()):
                label = model if i == 0 else None
                color = f"C{list(MODELS).index(model)}"
                axes[row, 0].plot(
                    [p["step"] for p in points], [p["val_loss"] for p in points], color=color, label=label
                )
                axes[row, 1].plot([p["seconds"] for p in points], [p["val_loss"] for p in points], color=color)
        axes[row, 0].set(title=f"{domain}: validation loss by step", xlabel="training step", ylabel="val loss")
        axes[row, 1].set(title=f"{domain}: by wall time", xlabel="seconds (1 CPU thread)")
        axes[row, 0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=["HealthUS", "SocialGood"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--protocol", choices=list(RECIPES), default="p2")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/convergence-<protocol>.json")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    out = Path(args.out or f"benchmarks/results/convergence-{args.protocol}.json")
    if args.table:
        print(table(json.loads(out.read_text())))
        return
    payload = json.loads(out.read_text()) if out.exists() else {"epochs": args.epochs, "curves": {}}
    for domain in args.domains:
        for model in MODELS:
            recipe = RECIPES[args.protocol].format(model)
            for seed in args.seeds:
                runs = payload["curves"].setdefault(domain, {}).setdefault(model, {})
                if str(seed) in runs:
                    continue
                runs[str(seed)] = curve(recipe, domain, seed, payload["epochs"])
                out.write_text(json.dumps(payload, indent=2) + "\n")
                print(domain, model, seed, "best", min(p["val_loss"] for p in runs[str(seed)]), flush=True)
    plot(payload, out.with_suffix(".png"))
    print(table(payload))


if __name__ == "__main__":
    main()
