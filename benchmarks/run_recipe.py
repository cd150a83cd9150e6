"""Train one recipe over several seeds and store every run's test metrics, cost and the summary as JSON.

    python benchmarks/run_recipe.py configs/lstm-physionet2012.yaml --seeds 0 1 2 3 4 \
        --out benchmarks/results/p1-lstm.json

Several processes may fill one file side by side with ``--append`` (e.g. ``--seeds 0 1`` in one and
``--seeds 2 3 4`` in another): each rereads the file under a lock before it writes. Each run stores the
command that reproduces it alone.

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
from results_file import locked  # benchmarks/ is the script's folder, so on sys.path

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
    parser.add_argument("--append", action="store_true", help="keep the runs already in --out; run only new seeds")
    args = parser.parse_args()

    out = Path(args.out)
    previous = json.loads(out.read_text()) if args.append and out.exists() else None
    runs = list(previous["runs"]) if previous else []
    if previous and not same_settings(previous["config"], load_config(args.config, args.set).to_dict()):
        raise SystemExit(f"{out} was made with another config; it cannot be appended to")
    done = {run["seed"] for run in runs}
    for seed in (s for s in args.seeds if s not in done):
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
        run["command"] = seed_command(args, seed)
        runs.append(run)
        print(json.dumps(run), flush=True)
        # rewritten after every seed, so a long benchmark that is stopped keeps what it finished; with
        # --append, the runs other processes have added to the file meanwhile are kept
        with locked(out):
            if args.append and out.exists():
                stored = json.loads(out.read_text())
                if not same_settings(stored["config"], load_config(args.config, args.set).to_dict()):
                    raise SystemExit(f"{out} was rewritten with another config meanwhile")
                mine = {r["seed"] for r in runs}
                runs = [r for r in stored["runs"] if r["seed"] not in mine] + runs
                previous = stored
            write_result(out, runs, args, previous)
    print(json.dumps(json.loads(out.read_text())["summary"], indent=2))


def seed_command(args: argparse.Namespace, seed: int) -> str:
    """The command that reproduces one seed's run on its own."""
    sets = "".join(f" --set {item}" for item in args.set)
    return f"python benchmarks/run_recipe.py {args.config}{sets} --seeds {seed} --out {args.out}"


def same_settings(stored: dict, current: dict) -> bool:
    """Every key of the stored config has the same value now (seeds aside). Keys added to tsmoe since
    the stored runs are allowed: a new option's default is the old behaviour."""
    for section, values in stored.items():
        if section == "seed":
            continue
        if isinstance(values, dict):
            if any(current.get(section, {}).get(key) != value for key, value in values.items()):
                return False
        elif current.get(section) != values:
            return False
    return True


def write_result(out: Path, runs: list[dict], args: argparse.Namespace, previous: dict | None) -> None:
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
        "seeds": sorted(r["seed"] for r in runs),
        "summary": summary,
        "seconds_per_epoch_mean": statistics.fmean(r["seconds_per_epoch"] for r in runs),
        "peak_memory_mib": max(peak_memory_mib(), previous["peak_memory_mib"] if previous else 0.0),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        },
        "runs": sorted(runs, key=lambda r: r["seed"]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
