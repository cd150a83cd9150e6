"""The P1 ladder table (PhysioNet 2012 mortality) from the per-model results of ``run_recipe.py``.

    python benchmarks/p1_ladder.py            # prints the markdown table from benchmarks/results/p1-*.json

Each row is one recipe ``configs/<model>-physionet2012.yaml`` run over several seeds; the table says how
many. The runs of a row may be spread over several files, ``p1-<model>.json`` and ``p1-<model>-*.json``
(processes that ran seeds side by side); a seed stored twice, or files whose configs differ (seed aside,
keys added to tsmoe later aside), is an error. Rows with no results are listed as not run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

LADDER = ["lstm", "gru", "ctrnn", "cfc", "ltc", "moe_same_rate", "mrmoe_no_attention", "mrmoe"]
RESULTS = Path(__file__).parent / "results"
# rows beside the ladder that separate what the input (or the training) adds from what the model adds
INPUT_ROWS = {
    "gru + observation decay": "search/p1-gru-observation_decay.json",
    "gru + observation decay, quantile scaling, observation dropout 0.2":
        "search/p1-gru-observation_decay-quantile-observation_dropout0.2.json",
    "mrmoe, z-scores, no observation dropout (the recipe before)": "search/p1-mrmoe-observation_decay.json",
    "mrmoe without observation decay": "search/p1-mrmoe-no_observation_decay.json",
    # two-stage: distilled from the five seeds of its own row and a cross-fitted boosting teacher (the
    # seventh search); time per epoch is the student's alone
    "mrmoe distilled from its seeds and boosting, with the observation summary":
        "search/p1-mrmoe-quantile-distill5gbm-weight0.9-observation_summary.json",
    "gru + observation decay, quantile scaling, observation dropout 0.2, observation summary, distilled likewise":
        "search/p1-gru-observation_decay-quantile-observation_dropout0.2-distill5gbm-weight0.9-observation_summary.json",
}


def same_config(first: dict, other: dict) -> bool:
    """Both configs agree on every key they share, the seed aside (a key one lacks is an option added to
    tsmoe between the runs, at the default that reproduces the older runs)."""
    for section in first.keys() & other.keys() - {"seed"}:
        a, b = first[section], other[section]
        if isinstance(a, dict) and isinstance(b, dict):
            if any(a[key] != b[key] for key in a.keys() & b.keys()):
                return False
        elif a != b:
            return False
    return True


def row_files(model: str) -> list[Path]:
    """The result files of one ladder row: ``p1-<model>.json`` and ``p1-<model>-*.json``."""
    return [RESULTS / f"p1-{model}.json", *sorted(RESULTS.glob(f"p1-{model}-*.json"))]


def row(model: str, candidates: list[Path] | None = None) -> str:
    if candidates is None:
        candidates = row_files(model)
    paths = [path for path in candidates if path.exists()]
    results = [json.loads(path.read_text()) for path in paths]
    if not results:
        return f"| {model} | not run | | | | | |"
    for path, result in zip(paths[1:], results[1:], strict=True):
        if not same_config(results[0]["config"], result["config"]):
            raise SystemExit(f"{model}: {path.name} was made with another config than {paths[0].name}")
    runs = [run for result in results for run in result["runs"]]
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"{model}: a seed is stored twice across {[p.name for p in paths]}")
    cells = []
    for metric in ("auroc", "auprc"):
        values = [run["test"][metric] for run in runs]
        spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else " (one seed)"
        cells.append(f"{statistics.fmean(values):.3f}{spread}")
    seconds = statistics.fmean(run["seconds_per_epoch"] for run in runs)
    peak = max(result["peak_memory_mib"] for result in results)
    size = f"{runs[0]['n_parameters']:,}"
    return f"| {model} | {cells[0]} | {cells[1]} | {len(runs)} | {size} | {seconds:.0f} | {peak:.0f} |"


def main() -> None:
    print("| model | test AUROC | test AUPRC | seeds | parameters | s / epoch | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for model in LADDER:
        print(row(model))
    for label, path in INPUT_ROWS.items():
        print(row(label, [RESULTS / path]))


if __name__ == "__main__":
    main()
