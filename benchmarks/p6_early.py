"""P6: early prediction on PhysioNet 2012. How well is in-hospital death predicted from a stay's first
6, 12, 24, 36 and 48 hours?

Rows (the committed P1 split; each neural row 5 seeds, one thread per run):

- ``mrmoe per step``, ``gru per step``, ``lstm per step``: the P1 recipe (``configs/<model>-physionet2012.yaml``)
  trained once with per-step supervision (``data.per_step: true``: every step's target is the stay's
  outcome; early stopping on validation AUROC over all steps), then scored at each prefix ``H``: each test
  stay's output at its last step at or before ``H`` (``auroc_at_H`` of ``metrics.json``);
- ``mrmoe whole stay``, ``gru whole stay``, ``lstm whole stay``: the P1 recipe as it is (one label per
  stay), scored on the test stays cut to their first ``H`` hours
  (``Estimator.evaluate(data_overrides={"until": H})``);
- ``gbm``: gradient boosting on per-variable summaries (``p1_features.py``), trained on snapshots of every
  training stay at 6, 12, ..., 48 hours (the per-step supervision a summary model can take; learning rate
  and rounds chosen on the validation snapshots' AUROC), scored on the test stays' snapshots at each ``H``;
  ``gbm whole stay``: the same trained on whole stays only (P1's reference); deterministic, one run each.

    python benchmarks/p6_early.py --out benchmarks/results/p6-early.json --runs runs/p6 --workers 2
    python benchmarks/p6_early.py --out benchmarks/results/p6-early.json --paired     # the runs in --runs, again
    python benchmarks/p6_early.py --out benchmarks/results/p6-early.json --report benchmarks/results/p6-early.png
    python benchmarks/p6_early.py --runs runs/p6 --intervals benchmarks/results/p6-intervals.json  # seed 0's

Runs already in ``--out`` are kept (a killed benchmark resumes). ``--report`` prints the table (mean and
standard deviation over seeds) and draws AUROC against hours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HOURS = (6, 12, 24, 36, 48)
ROWS = {  # row -> (recipe, --set overrides)
    "mrmoe per step": ("configs/mrmoe-physionet2012.yaml", ["data.per_step=true"]),
    "mrmoe whole stay": ("configs/mrmoe-physionet2012.yaml", []),
    "gru per step": ("configs/gru-physionet2012.yaml", ["data.per_step=true"]),
    "gru whole stay": ("configs/gru-physionet2012.yaml", []),
    "lstm per step": ("configs/lstm-physionet2012.yaml", ["data.per_step=true"]),
    "lstm whole stay": ("configs/lstm-physionet2012.yaml", []),
}
GBM = ("gbm", "gbm whole stay")  # deterministic: one run each
ROOT = Path(__file__).resolve().parents[1]


def run_neural(row: str, seed: int, runs: Path) -> dict:
    """Train one row's recipe with one seed and score its test stays at every prefix."""
    import torch

    from tsmoe import Estimator
    from tsmoe.config import load_config

    torch.set_num_threads(1)
    recipe, overrides = ROWS[row]
    config = load_config(ROOT / recipe, [*overrides, f"seed={seed}", "trainer.accelerator=cpu"])
    estimator = Estimator.from_config(config)
    estimator.fit(run_dir=runs / f"{row.replace(' ', '_')}-s{seed}", overwrite=True)
    result = {"seconds_per_epoch": estimator.meta_["seconds_per_epoch"], "best_epoch": estimator.meta_["best_epoch"]}
    for hours in HOURS:
        if row.endswith("per step"):
            scores = {k: estimator.metrics_[f"{k}_at_{hours}"] for k in ("auroc", "auprc")}
        else:
            scores = estimator.evaluate(data_overrides={"until": float(hours)})
        result |= {f"auroc_at_{hours}": scores["auroc"], f"auprc_at_{hours}": scores["auprc"]}
    if row.endswith("whole stay"):
        result |= {"auroc": estimator.metrics_["auroc"], "auprc": estimator.metrics_["auprc"]}
    else:
        result |= {"auroc_all_steps": estimator.metrics_["auroc"], "auroc": estimator.metrics_["auroc_last"],
                   "auprc": estimator.metrics_["auprc_last"]}  # fmt: skip
    return result


def run_gbm(whole_stay: bool = False) -> dict:
    """Boosting on summaries of snapshots every 6 hours (module docstring); ``whole_stay``: on whole
    stays only (P1's reference), scored on the snapshots all the same."""
    from p1_features import LEARNING_RATES, boosting, fit_on_validation, stay_summaries
    from sklearn.metrics import average_precision_score, roc_auc_score

    from tsmoe.data.sources.physionet2012 import load_physionet2012, shipped_split_file
    from tsmoe.data.splits import IdSplit

    data = load_physionet2012()
    parts = IdSplit.read(shipped_split_file()).indices_in(data.record_ids, "PhysioNet 2012")
    snapshot_hours = tuple(range(6, 49, 6))
    features = {h: stay_summaries(data.until(float(h)))[0] for h in snapshot_hours}
    trained_on = (48,) if whole_stay else snapshot_hours  # every stay ends by 48 h: its snapshot is the stay

    def stacked(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([features[h][indices] for h in trained_on]),
                np.concatenate([data.labels[indices]] * len(trained_on)))  # fmt: skip

    train_x, train_y = stacked(parts[0])
    val_x, val_y = stacked(parts[1])
    x, y = np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])
    train, val = np.arange(len(train_x)), np.arange(len(train_x), len(x))
    trials = [(lr, *fit_on_validation(x, y, train, val, lr)) for lr in LEARNING_RATES]
    lr, rounds, val_auroc = max(trials, key=lambda t: t[2])
    model = boosting(lr, rounds).fit(train_x, train_y)
    result = {"learning_rate": lr, "rounds": rounds, "val_auroc_snapshots": val_auroc}
    test = parts[2]
    for hours in HOURS:
        probability = model.predict_proba(features[hours][test])[:, 1]
        result[f"auroc_at_{hours}"] = float(roc_auc_score(data.labels[test], probability))
        result[f"auprc_at_{hours}"] = float(average_precision_score(data.labels[test], probability))
    return result


def job(key: str, runs: Path) -> dict:
    if key in ("gbm", "gbm whole stay"):
        return run_gbm(whole_stay=key == "gbm whole stay")
    row, seed = key.rsplit("/", 1)
    return run_neural(row, int(seed), runs)


def run_all(out: Path, runs: Path, seeds: list[int], rows: list[str], workers: int) -> None:
    stored = json.loads(out.read_text()) if out.exists() else {"protocol": "P6", "runs": {}}
    keys = [f"{row}/{seed}" for seed in seeds for row in rows if row in ROWS] + [r for r in rows if r not in ROWS]
    todo = [key for key in keys if key not in stored["runs"]]
    print(f"{len(todo)} run(s) to do: {todo}", flush=True)

    def one(key: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, __file__, "--job", key, "--runs", str(runs)], env=env,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            print(f"{key} failed:\n{done.stderr[-3000:]}", flush=True)
            return
        result = json.loads(done.stdout.strip().splitlines()[-1])
        latest = json.loads(out.read_text()) if out.exists() else stored  # another worker may have written
        latest["runs"][key] = result
        latest["command"] = "python benchmarks/p6_early.py --out " + str(out)
        out.write_text(json.dumps(latest, indent=1, sort_keys=True) + "\n")
        print(f"{key}: " + ", ".join(f"{h} h {result[f'auroc_at_{h}']:.3f}" for h in HOURS), flush=True)

    with ThreadPoolExecutor(workers) as pool:  # each run is its own process; the threads only wait
        list(pool.map(one, todo))


def summary(stored: dict) -> dict[str, dict[str, tuple[float, float, int]]]:
    """row -> metric -> (mean, std over seeds, seeds)."""
    by_row: dict[str, list[dict]] = {}
    for key, result in stored["runs"].items():
        by_row.setdefault(key.rsplit("/", 1)[0] if "/" in key else key, []).append(result)
    table = {}
    for row, results in by_row.items():
        metrics = sorted(set.intersection(*(set(r) for r in results)))
        table[row] = {m: (float(np.mean([r[m] for r in results])),
                          float(np.std([r[m] for r in results], ddof=1)) if len(results) > 1 else 0.0,
                          len(results)) for m in metrics}  # fmt: skip
    return table


ORDER = ("mrmoe per step", "mrmoe whole stay", "gru per step", "gru whole stay", "lstm per step", "lstm whole stay",
         "gbm", "gbm whole stay")


def markdown_table(stored: dict) -> str:
    """Test AUROC at each prefix and AUPRC at 24 h (mean ± standard deviation over seeds), and the
    paired difference of the two MR-MoE rows by seed."""
    table = summary(stored)
    auprc_hours = (24,)
    header = [f"AUROC at {h} h" for h in HOURS] + [f"AUPRC at {h} h" for h in auprc_hours]
    lines = ["| row | seeds | " + " | ".join(header) + " |", "|---|---|" + "---|" * len(header)]
    for row in [r for r in ORDER if r in table]:
        metrics = table[row]

        def cell(name: str, metrics: dict = metrics) -> str:
            mean, std, seeds = metrics[name]
            return f"{mean:.3f}" if seeds == 1 else f"{mean:.3f} ± {std:.3f}"

        cells = [cell(f"auroc_at_{h}") for h in HOURS] + [cell(f"auprc_at_{h}") for h in auprc_hours]
        lines.append(f"| {row} | {metrics[f'auroc_at_{HOURS[0]}'][2]} | " + " | ".join(cells) + " |")
    paired = paired_differences(stored)
    if paired:
        seeds = next(iter(paired.values()))[3]
        parts = "; ".join(f"{h} h {m:+.3f} ({lo:+.3f} to {hi:+.3f})" for h, (m, lo, hi, _) in paired.items())
        lines += ["", f"Per-step minus whole-stay MR-MoE, test AUROC by seed ({seeds} seeds; mean, range): {parts}."]
    if "paired" in stored:
        test = stored["paired"]
        floor = 1.0 / test["resamples"]

        def p_value(p: float) -> str:
            return f"p < {floor:g}" if p < floor else f"p = {p:.3f}"

        parts = "; ".join(
            f"{h} h {v['seed_mean']['difference']:+.3f} [{v['seed_mean']['interval'][0]:+.3f}, "
            f"{v['seed_mean']['interval'][1]:+.3f}], {p_value(v['seed_mean']['p_value'])}"
            for h, v in sorted(test["by_hours"].items(), key=lambda item: int(item[0]))
        )
        lines += ["", f"The same for the {len(test['seeds'])}-seed mean probabilities, paired bootstrap over the "
                  f"{test['test_stays']} test stays ({test['resamples']:,} resamples; 95 % interval, p): "
                  f"{parts}."]  # fmt: skip
    return "\n".join(lines)


def report(stored: dict, plot: Path | None) -> None:
    table = summary(stored)
    print(markdown_table(stored))
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 4))
        for row, metrics in table.items():
            means = [metrics[f"auroc_at_{h}"][0] for h in HOURS]
            stds = [metrics[f"auroc_at_{h}"][1] for h in HOURS]
            axis.errorbar(HOURS, means, yerr=stds, marker="o", capsize=3, label=row)
        axis.set_xlabel("hours of the stay seen")
        axis.set_ylabel("test AUROC (in-hospital death)")
        axis.set_xticks(HOURS)
        axis.grid(alpha=0.3)
        axis.legend()
        axis.set_title("P6: early prediction on PhysioNet 2012")
        figure.tight_layout()
        figure.savefig(plot, dpi=120)
        print(f"wrote {plot}")


def paired_differences(stored: dict) -> dict[int, tuple[float, float, float, int]]:
    """Per-step minus whole-stay MR-MoE AUROC at each prefix, paired by seed: (mean, min, max, seeds)."""
    runs = stored["runs"]
    seeds = [k.rsplit("/", 1)[1] for k in runs if k.startswith("mrmoe per step/")]
    seeds = [s for s in seeds if f"mrmoe whole stay/{s}" in runs]
    out = {}
    for hours in HOURS:
        diff = [runs[f"mrmoe per step/{s}"][f"auroc_at_{hours}"] - runs[f"mrmoe whole stay/{s}"][f"auroc_at_{hours}"]
                for s in seeds]  # fmt: skip
        if diff:
            out[hours] = (float(np.mean(diff)), float(min(diff)), float(max(diff)), len(diff))
    return out


def paired_bootstrap(runs: Path, seeds: list[int], resamples: int = 1000) -> dict:
    """Per-step against whole-stay MR-MoE on the same test stays at each prefix: the AUROC difference of
    the seed-averaged probabilities, with a paired, stratified bootstrap over stays (``resamples``,
    seeded): its 95 % interval and two-sided p-value; and the same per seed."""
    from sklearn.metrics import roc_auc_score

    from tsmoe import Estimator

    def probabilities(row: str, seed: int, hours: int) -> tuple[np.ndarray, np.ndarray]:
        estimator = Estimator.load(runs / f"{row.replace(' ', '_')}-s{seed}")
        prepared = estimator.prepare_data(data_overrides={"until": float(hours)})
        outputs, records, _ = estimator.predict_every_step(prepared.test, prepared.collate)
        last = np.r_[np.flatnonzero(np.diff(records)), len(records) - 1]  # each stay's last step by then
        labels = np.array([int(prepared.test[i]["target"]) for i in range(len(prepared.test))])
        return torch_sigmoid(outputs[last]), labels

    rng = np.random.default_rng(0)
    result = {}
    for hours in HOURS:
        per_step, whole, labels = [], [], None
        for seed in seeds:
            p, labels = probabilities("mrmoe per step", seed, hours)
            q, _ = probabilities("mrmoe whole stay", seed, hours)
            per_step.append(p)
            whole.append(q)
        positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        draws = [np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
                 for _ in range(resamples)]  # fmt: skip

        def compare(p: np.ndarray, q: np.ndarray, labels: np.ndarray = labels, draws: list = draws) -> dict:
            diffs = np.array([roc_auc_score(labels[d], p[d]) - roc_auc_score(labels[d], q[d]) for d in draws])
            return {"difference": float(roc_auc_score(labels, p) - roc_auc_score(labels, q)),
                    "interval": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
                    "p_value": float(min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())))}  # fmt: skip

        result[str(hours)] = {"seed_mean": compare(np.mean(per_step, 0), np.mean(whole, 0)),
                              "by_seed": [compare(p, q) for p, q in zip(per_step, whole, strict=True)]}  # fmt: skip
    return {"resamples": resamples, "seeds": seeds, "test_stays": len(labels), "by_hours": result}


def seed_intervals(runs: Path, seed: int = 0) -> dict:
    """Each neural row's seed-0 test AUROC at every prefix with its stratified bootstrap 95 % interval (as
    ``metrics.json`` gives it: ``auroc_at_H_ci`` per step, ``auroc_ci`` of the stays cut at ``H``)."""
    from tsmoe import Estimator

    result = {}
    for row in ROWS:
        estimator = Estimator.load(runs / f"{row.replace(' ', '_')}-s{seed}")
        per_step = estimator.evaluate() if row.endswith("per step") else None
        result[row] = {}
        for hours in HOURS:
            if per_step is not None:
                auroc, interval = per_step[f"auroc_at_{hours}"], per_step[f"auroc_at_{hours}_ci"]
            else:
                scores = estimator.evaluate(data_overrides={"until": float(hours)})
                auroc, interval = scores["auroc"], scores["auroc_ci"]
            result[row][str(hours)] = {"auroc": auroc, "auroc_ci": interval}
    return result


def intervals_table(stored: dict) -> str:
    """Seed 0 of each neural row: test AUROC at each prefix with its 95 % interval."""
    lines = ["| row, seed 0 | " + " | ".join(f"AUROC at {h} h [95 %]" for h in HOURS) + " |",
             "|---|" + "---|" * len(HOURS)]  # fmt: skip
    for row, by_hours in stored["rows"].items():
        cells = [f"{v['auroc']:.3f} [{v['auroc_ci'][0]:.3f}, {v['auroc_ci'][1]:.3f}]" for v in by_hours.values()]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def torch_sigmoid(logits) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.double().numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/p6-early.json")
    parser.add_argument("--runs", default="runs/p6", help="run folders (kept: score them again with tsmoe evaluate)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rows", nargs="+", default=[*ROWS, *GBM], choices=[*ROWS, *GBM])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--report", nargs="?", const="", default=None, help="print the table; a path: also plot")
    parser.add_argument("--paired", action="store_true", help="the paired bootstrap of the two MR-MoE rows")
    parser.add_argument("--intervals", metavar="FILE", help="seed 0's AUROC intervals from the kept runs, to FILE")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # one run, in its own process
    args = parser.parse_args()
    if args.job:
        print(json.dumps(job(args.job, Path(args.runs))))
        return
    out = Path(args.out)
    if args.intervals:
        command = f"python benchmarks/p6_early.py --runs {args.runs} --intervals {args.intervals}"
        result = {"protocol": "P6-intervals", "command": command, "rows": seed_intervals(Path(args.runs))}
        Path(args.intervals).write_text(json.dumps(result, indent=1) + "\n")
        print(intervals_table(result))
        return
    if args.paired:
        stored = json.loads(out.read_text())
        stored["paired"] = paired_bootstrap(Path(args.runs), args.seeds)
        out.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        print(json.dumps(stored["paired"], indent=1))
        return
    if args.report is not None:
        report(json.loads(out.read_text()), Path(args.report) if args.report else None)
        return
    run_all(out, Path(args.runs), args.seeds, args.rows, args.workers)


if __name__ == "__main__":
    main()
