"""The P1 ladder table (PhysioNet 2012 mortality) from the per-model results of ``run_recipe.py``.

    python benchmarks/p1_ladder.py            # prints the markdown table from benchmarks/results/p1-*.json

Each row is one recipe ``configs/<model>-physionet2012.yaml`` run over several seeds; the table says how
many. Rows whose results file is missing are listed as not run.
"""

from __future__ import annotations

import json
from pathlib import Path

LADDER = ["lstm", "gru", "ctrnn", "cfc", "ltc", "moe_same_rate", "mrmoe_no_attention", "mrmoe"]
RESULTS = Path(__file__).parent / "results"


def row(model: str) -> str:
    path = RESULTS / f"p1-{model}.json"
    if not path.exists():
        return f"| {model} | not run | | | | | |"
    result = json.loads(path.read_text())
    summary, runs = result["summary"], result["runs"]
    return (
        f"| {model} | {summary['auroc']['mean']:.3f} ± {summary['auroc']['std']:.3f} "
        f"| {summary['auprc']['mean']:.3f} ± {summary['auprc']['std']:.3f} | {len(runs)} "
        f"| {runs[0]['n_parameters']:,} | {result['seconds_per_epoch_mean']:.0f} | {result['peak_memory_mib']:.0f} |"
    )


def main() -> None:
    print("| model | test AUROC | test AUPRC | seeds | parameters | s / epoch | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for model in LADDER:
        print(row(model))


if __name__ == "__main__":
    main()
