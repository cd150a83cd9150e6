"""The P1 ladder table (PhysioNet 2012 mortality) from the per-model results of ``run_recipe.py``.

    python benchmarks/p1_ladder.py            # prints the markdown table from benchmarks/results/p1-*.json

Each row is one recipe ``configs/<model>-physionet2012.yaml`` run over several seeds; the table says how
many. The runs of a row may be spread over several files, ``p1-<model>.json`` and ``p1-<model>-*.json``
(processes that ran seeds side by side); a seed stored twice is an error. Rows with no results are
listed as not run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

LADDER = ["lstm", "gru", "ctrnn", "cfc", "ltc", "moe_same_rate", "mrmoe_no_attention", "mrmoe"]
RESULTS = Path(__file__).parent / "results"


def row(model: str) -> str:
    paths = [RESULTS / f"p1-{model}.json", *sorted(RESULTS.glob(f"p1-{model}-*.json"))]
    results = [json.loads(path.read_text()) for path in paths if path.exists()]
    if not results:
        return f"| {model} | not run | | | | | |"
    runs = [run for result in results for run in result["runs"]]
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"{model}: a seed is stored twice across {[p.name for p in paths if p.exists()]}")
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


if __name__ == "__main__":
    main()
