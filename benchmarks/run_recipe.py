"""Train one recipe over several seeds and store every run's test metrics, cost and the summary as JSON.

    python benchmarks/run_recipe.py configs/lstm-physionet2012.yaml --seeds 0 1 2 3 4 \
        --out benchmarks/results/p1-lstm.json

Model selection inside each run uses the validation split only; the test split is scored once per run.
Peak memory is the process's peak resident set size (CPU) or peak CUDA allocation (GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from tsmoe.config import load_config
from tsmoe.estimator import Estimator


def peak_memory_mib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    runs = []
    for seed in args.seeds:
        config = load_config(args.config, [*args.set, f"seed={seed}"])
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            estimator = Estimator.from_config(config).fit(run_dir=folder)
            wall = time.perf_counter() - started
        run = {
            "seed": seed,
            "test": estimator.metrics_,
            "best_epoch": estimator.meta_["best_epoch"],
            "validation": {estimator.meta_["monitor"]: estimator.meta_["best_score"]},
            "epochs_run": estimator.meta_["epochs_run"],
            "seconds_per_epoch": estimator.meta_["seconds_per_epoch"],
            "wall_seconds": wall,
            "n_parameters": estimator.meta_["n_parameters"],
        }
        runs.append(run)
        print(json.dumps(run), flush=True)
    keys = runs[0]["test"].keys()
    summary = {
        key: {
            "mean": statistics.fmean(r["test"][key] for r in runs),
            "std": statistics.stdev(r["test"][key] for r in runs) if len(runs) > 1 else 0.0,
        }
        for key in keys
    }
    result = {
        "command": "python " + " ".join(sys.argv),
        "config": load_config(args.config, args.set).to_dict(),
        "seeds": args.seeds,
        "summary": summary,
        "seconds_per_epoch_mean": statistics.fmean(r["seconds_per_epoch"] for r in runs),
        "peak_memory_mib": peak_memory_mib(),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        },
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
