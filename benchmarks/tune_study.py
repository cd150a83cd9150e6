"""Tuning measured: an Optuna study of MR-MoE on P1 against the hand-chosen recipe, and trials per hour
with one and two worker processes.

    # the study (any number of sittings; each resumes):
    tsmoe tune configs/mrmoe-physionet2012.yaml --space configs/spaces/mrmoe-physionet2012.yaml \\
        --trials 40 --workers 2 --out runs/tune-p1
    # then: recipe (the study's trial 0) against the best trial, on validation; the test split once for both
    python benchmarks/tune_study.py p1 --study runs/tune-p1 --seeds 1 2 3 4
    # scaling: the same small study with 1 and with 2 workers, one after the other
    python benchmarks/tune_study.py workers --trials 8

``p1`` reads the study: its trials, their summed and wall-clock time, and the recipe's trial (trial 0, the
recipe's own values, enqueued first) beside the best. Picking the best of 40 on validation flatters it
(the maximum of noisy scores), so both recipes are also trained again on fresh seeds (``--seeds``; run
folders in ``runs/tune-p1-check``), compared on validation by seed. Only then is the test split scored,
once per run, with a paired stratified bootstrap over the test stays of the seed-averaged probabilities.
``workers`` runs ``tsmoe tune`` on a space whose values leave a trial's cost unchanged (learning rate,
dropouts, slowest time constant; 2 epochs each, no pruning), so both counts time the same work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from tsmoe import Estimator  # noqa: E402
from tsmoe.config import load_config  # noqa: E402
from tsmoe.experiments.results import machine  # noqa: E402

RECIPE = "configs/mrmoe-physionet2012.yaml"
SCALING_SPACE = {  # values that change what is learnt, not how long an epoch takes
    "params": {
        "training.lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
        "model.tau_max": {"type": "float", "low": 8.0, "high": 48.0, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.3},
        "model.observation_dropout": {"type": "float", "low": 0.0, "high": 0.4},
    },
    "pruner": {"name": "none"},
}


def load_study(folder: Path):
    import optuna

    record = json.loads((folder / "tune.json").read_text())
    return optuna.load_study(study_name=record["study"], storage=record["storage"])


def probabilities(run: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A run's test probabilities, labels and test metrics (the test split scored here, once)."""
    estimator = Estimator.load(run)
    prepared = estimator.prepare_data()
    metrics = estimator.score(prepared)
    proba = estimator.predict_proba()[:, 1]
    labels = np.array([int(prepared.test[i]["target"]) for i in range(len(prepared.test))])
    return proba, labels, metrics


def paired_bootstrap(p: np.ndarray, q: np.ndarray, labels: np.ndarray, resamples: int = 2000) -> dict:
    """AUROC(p) - AUROC(q) on the same stays: its 95 % interval and two-sided p-value by a paired, stratified
    bootstrap over stays (seeded)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    diffs = []
    for _ in range(resamples):
        d = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        diffs.append(roc_auc_score(labels[d], p[d]) - roc_auc_score(labels[d], q[d]))
    diffs = np.array(diffs)
    return {
        "difference": float(roc_auc_score(labels, p) - roc_auc_score(labels, q)),
        "interval": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
        "p_value": float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))),
        "resamples": resamples,
    }


def train(recipe: Path, seed: int, out: Path) -> Path:
    """Train ``recipe`` at ``seed`` into ``out`` (kept; reused when it holds a finished run), test unscored."""
    if not (out / "meta.json").exists():
        config = load_config(recipe, [f"seed={seed}"])
        Estimator.from_config(config).fit(run_dir=out, overwrite=out.exists(), score_test=False)
    return out


def p1(study_dir: Path, seeds: list[int], out: Path, checks: Path, train_only: bool = False) -> None:
    from optuna.trial import TrialState

    study = load_study(study_dir)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    recipe_trial, best = trials[0], study.best_trial
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    result = {
        "protocol": "P1-tune",
        "study": study.study_name,
        "trials": {s: sum(t.state.name.lower() == s for t in trials) for s in ("complete", "pruned", "fail")},
        "trial_seconds": sum(t.duration.total_seconds() for t in trials if t.duration),
        "first_to_last_seconds": (max(ends) - min(starts)).total_seconds(),
        "epochs_trained": sum(len(t.intermediate_values) for t in trials),
        "recipe": {"trial": recipe_trial.number, "val_auroc": recipe_trial.value, "params": recipe_trial.params},
        "best": {"trial": best.number, "val_auroc": best.value, "params": best.params},
        "complete_val_auroc_median": statistics.median(t.value for t in complete),
        "seeds": seeds,
        "machine": machine(),
        "command": "python benchmarks/tune_study.py " + " ".join(sys.argv[1:]),
    }  # fmt: skip
    best_recipe = study_dir / "best.yaml"
    checks.mkdir(parents=True, exist_ok=True)
    rows = {"recipe": [Path(recipe_trial.user_attrs["run"])], "best": [Path(best.user_attrs["run"])]}
    for seed in seeds:  # fresh seeds: the validation comparison without the best-of-N selection
        rows["recipe"].append(train(ROOT / RECIPE, seed, checks / f"recipe-s{seed}"))
        rows["best"].append(train(best_recipe, seed, checks / f"best-s{seed}"))
    if train_only:  # several processes train the seeds side by side; one last call scores them
        return
    validation = {name: [json.loads((run / "meta.json").read_text())["best_score"] for run in runs]
                  for name, runs in rows.items()}  # fmt: skip
    result["validation_by_seed"] = validation
    fresh = [b - r for b, r in zip(validation["best"][1:], validation["recipe"][1:], strict=True)]
    if fresh:
        result["fresh_seed_validation_gain"] = {"mean": statistics.fmean(fresh), "min": min(fresh), "max": max(fresh)}
    scored = {name: [probabilities(run) for run in runs] for name, runs in rows.items()}  # the test split, once
    labels = scored["recipe"][0][1]
    result["test_by_seed"] = {name: [s[2] for s in runs] for name, runs in scored.items()}
    mean = {name: np.mean([s[0] for s in runs], axis=0) for name, runs in scored.items()}
    result["test_seed_mean_paired"] = paired_bootstrap(mean["best"], mean["recipe"], labels)
    result["test_stays"] = int(len(labels))
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result))


def workers(trials: int, counts: list[int], out: Path, runs: Path) -> None:
    import yaml

    runs.mkdir(parents=True, exist_ok=True)
    space = runs / "scaling-space.yaml"
    space.write_text(yaml.safe_dump(SCALING_SPACE))
    rows = []
    for count in counts:
        folder = runs / f"tune-workers-{count}"
        if folder.exists():
            raise SystemExit(f"{folder} exists; remove it first (a study there would resume, not be timed)")
        command = [sys.executable, "-m", "tsmoe.cli", "tune", str(ROOT / RECIPE), "--space", str(space),
                   "--trials", str(trials), "--workers", str(count), "--out", str(folder),
                   "--set", "training.max_epochs=2"]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - started
        per_hour = 3600 * trials / seconds
        rows.append({"workers": count, "trials": trials, "seconds": seconds, "trials_per_hour": per_hour})
        print(rows[-1], flush=True)
    result = {"protocol": "tune-workers", "recipe": RECIPE, "epochs_per_trial": 2, "space": SCALING_SPACE, "rows": rows,
              "machine": machine(), "command": "python benchmarks/tune_study.py " + " ".join(sys.argv[1:])}  # fmt: skip
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(workers_table(result))


def markdown_table(result: dict) -> str:
    """Recipe against the best trial: validation (the study's seed, fresh seeds), test once, the paired test."""
    val, test = result["validation_by_seed"], result["test_by_seed"]
    counts = result["trials"]
    lines = [
        f"{counts['complete']} trials complete, {counts['pruned']} pruned, {counts['fail']} failed; "
        f"{result['epochs_trained']} epochs in {result['trial_seconds'] / 3600:.1f} worker-hours "
        f"({result['first_to_last_seconds'] / 3600:.1f} h from the first trial's start to the last one's end)",
        "",
        "| recipe | validation AUROC, the study's seed | validation AUROC, fresh seeds (mean) | "
        "test AUROC, all seeds (mean ± sd) | test AUPRC (mean) |",
        "|---|---|---|---|---|",
    ]
    for name, title in (("recipe", f"hand-chosen (trial {result['recipe']['trial']})"),
                        ("best", f"tuned (trial {result['best']['trial']})")):  # fmt: skip
        fresh = f"{statistics.fmean(val[name][1:]):.4f}" if val[name][1:] else ""
        aurocs = [m["auroc"] for m in test[name]]
        spread = f" ± {statistics.stdev(aurocs):.4f}" if len(aurocs) > 1 else ""
        auroc, auprc = statistics.fmean(aurocs), statistics.fmean(m["auprc"] for m in test[name])
        lines.append(f"| {title} | {val[name][0]:.4f} | {fresh} | {auroc:.4f}{spread} | {auprc:.4f} |")
    paired = result["test_seed_mean_paired"]
    gain = result.get("fresh_seed_validation_gain")
    text = f"Validation gain of the tuned recipe: {val['best'][0] - val['recipe'][0]:+.4f} on the study's seed"
    if gain:
        text += (f", {gain['mean']:+.4f} on {len(result['seeds'])} fresh seeds (range {gain['min']:+.4f} to "
                 f"{gain['max']:+.4f})")  # fmt: skip
    low, high = paired["interval"]
    text += (f". Test AUROC of the seed-averaged probabilities, tuned minus hand-chosen: {paired['difference']:+.4f} "
             f"[{low:+.4f}, {high:+.4f}], paired bootstrap p = {paired['p_value']:.2f} ({result['test_stays']:,} "
             "test stays).")  # fmt: skip
    lines += ["", text]
    return "\n".join(lines)


def workers_table(result: dict) -> str:
    lines = ["| workers | trials | wall seconds | trials per hour | speed-up |", "|---|---|---|---|---|"]
    base = result["rows"][0]["trials_per_hour"]
    for row in result["rows"]:
        lines.append(f"| {row['workers']} | {row['trials']} | {row['seconds']:.0f} | {row['trials_per_hour']:.0f} | "
                     f"{row['trials_per_hour'] / base:.2f}x |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    first = sub.add_parser("p1")
    first.add_argument("--study", default="runs/tune-p1")
    first.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4])
    first.add_argument("--checks", default="runs/tune-p1-check")
    first.add_argument("--out", default="benchmarks/results/p1-tune.json")
    first.add_argument("--train-only", action="store_true", help="train the fresh seeds' runs, score nothing")
    second = sub.add_parser("workers")
    second.add_argument("--trials", type=int, default=8)
    second.add_argument("--counts", type=int, nargs="+", default=[1, 2])
    second.add_argument("--runs", default="runs")
    second.add_argument("--out", default="benchmarks/results/tune-workers.json")
    args = parser.parse_args()
    if args.mode == "p1":
        p1(Path(args.study), args.seeds, Path(args.out), Path(args.checks), args.train_only)
    else:
        workers(args.trials, args.counts, Path(args.out), Path(args.runs))


if __name__ == "__main__":
    main()
