"""Deep ensembles: the seeds of one recipe, averaged, against the seeds alone (P1, P2, any recipe).

    python benchmarks/seed_ensemble.py configs/mrmoe-physionet2012.yaml --runs runs/p1/mrmoe \
        --seeds 0 1 2 3 4 --out benchmarks/results/ensemble/p1-mrmoe.json
    python benchmarks/seed_ensemble.py configs/mome_reference-mome_timemmd.yaml --set data.domain=HealthUS \
        --runs runs/p2/mome-HealthUS --out benchmarks/results/ensemble/p2-mome-HealthUS.json
    python benchmarks/seed_ensemble.py --table

Each seed is trained as ``tsmoe train CONFIG [--set ...] --set seed=S --out RUNS-sS`` would train it,
into that run folder; a folder already there is reused when its config is the one asked for (so the
seeds may be trained beforehand, side by side, with ``tsmoe train``). The ensemble
(``tsmoe.ensemble.Ensemble``: the mean of the members' probabilities, or of their forecasts) is scored
on the validation part, which alone says whether ensembling is worth choosing, and on the test part.
Members refit on their validation items (``training.refit``) are scored on the test part only; their
validation metrics are those of the models chosen before the refit.
The ensembles of the first k seeds, k = 2 .. M, show how the score grows with the members. The test
numbers are those of ``tsmoe evaluate RUNS-s0 RUNS-s1 ...``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

from tsmoe import io as run_io
from tsmoe.config import load_config, resolve
from tsmoe.ensemble import Ensemble
from tsmoe.estimator import Estimator

RESULTS = Path(__file__).parent / "results" / "ensemble"
REPORTED = ("auroc", "auprc", "mse", "mape")  # the table's metrics, where a result has them


def trained_run(config_path: str, sets: list[str], seed: int, folder: Path) -> Path:
    """The run folder of one seed: reused when it holds a finished run of this config, else trained."""
    config = load_config(config_path, [*sets, f"seed={seed}"])
    if (folder / run_io.WEIGHTS).exists():
        stored = resolve(run_io.read_config_yaml(folder / run_io.CONFIG))
        if stored.to_dict() != config.to_dict():
            raise SystemExit(f"{folder} holds a run of another config; remove it or choose another --runs")
        print(f"reusing {folder}", flush=True)
        return folder
    Estimator.from_config(config).fit(run_dir=folder)
    return folder


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def run(args: argparse.Namespace) -> None:
    folders = [trained_run(args.config, args.set, seed, Path(f"{args.runs}-s{seed}")) for seed in args.seeds]
    ensemble = Ensemble.load(folders)
    # refit members (training.refit) were trained on their validation items: only their test part is
    # scored; their validation metrics are those of the models chosen before the refit (meta.json)
    refit = all("refit" in member.meta_ for member in ensemble.members)
    parts = ("test",) if refit else ("validation", "test")
    outputs = {part: ensemble.member_outputs(part=part) for part in parts}
    test = ensemble.scores(*outputs["test"])
    if refit:
        chosen = [member.meta_["refit"]["validation_before_refit"] for member in ensemble.members]
        validation = {"members": chosen, "ensemble": None}
    else:
        validation = ensemble.scores(*outputs["validation"])
    growing = {  # the ensemble of the first k members, from the same outputs
        str(k): {part: ensemble.scores(members[:k], target)["ensemble"] for part, (members, target) in outputs.items()}
        for k in range(2, len(folders) + 1)
    }
    metrics = [k for k, v in test["ensemble"].items() if isinstance(v, int | float)]  # intervals are not averaged
    result = {
        "command": "python " + " ".join(sys.argv),
        "config": load_config(args.config, args.set).to_dict(),
        "seeds": args.seeds,
        "runs": [str(folder) for folder in folders],
        "validation": {
            "members": validation["members"],
            "members_mean": {k: mean_std([m[k] for m in validation["members"]]) for k in metrics},
            "ensemble": validation["ensemble"],
        },
        "test": {
            "members": test["members"],
            "members_mean": {k: mean_std([m[k] for m in test["members"]]) for k in metrics},
            "ensemble": test["ensemble"],
        },
        "first_k_seeds": growing,
        "machine": {"platform": platform.platform(), "torch": torch.__version__},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({part: result[part]["ensemble"] for part in ("validation", "test")}, indent=2))


def table() -> None:
    print("| result | metric | seeds | validation: seeds / ensemble | test: seeds / ensemble |")
    print("|---|---|---|---|---|")
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())

        def cell(part: dict, key: str) -> str:
            spread, combined = part["members_mean"][key], part["ensemble"]
            together = "refit members: not scored" if combined is None else f"**{combined[key]:.4g}**"
            return f"{spread['mean']:.4g} ± {spread['std']:.2g} / {together}"

        for key in (k for k in REPORTED if k in result["test"]["ensemble"]):
            v, t = result["validation"], result["test"]
            print(f"| {path.stem} | {key} | {len(result['seeds'])} | {cell(v, key)} | {cell(t, key)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?")
    parser.add_argument("--runs", help="run folders are RUNS-s0, RUNS-s1, ...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out")
    parser.add_argument("--table", action="store_true", help="print the table of the stored results")
    args = parser.parse_args()
    if args.table:
        table()
        return
    if not (args.config and args.runs and args.out):
        parser.error("give CONFIG, --runs and --out (or --table)")
    run(args)


if __name__ == "__main__":
    main()
