"""Run the rows of a benchmark experiment (``benchmarks/experiments/*.yaml``) and store their runs.

    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p4.yaml                 # every missing run
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p1.yaml --rows gru --seeds 0 1
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p3.yaml --rows mome --cases Health_US/12
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p2.yaml --rows mome --seeds 0 \\
        --out benchmarks/results/reproduced.json     # run stored rows again beside them, to compare

Each run is ``tsmoe train RECIPE --set ...`` through the one training path; the results file (one format
for every protocol, :mod:`tsmoe.experiments.results`) keeps its command, resolved config and machine.
Runs already stored are skipped, so a stopped benchmark continues where it stopped, and several
processes (one per seed, say) may fill one file side by side. ``--compare`` prints each run of ``--out``
beside the stored run of the same key. ``--rescore --runs DIR`` scores the stored runs kept in ``DIR`` again
with the current metrics code (metrics added since they were trained, such as intervals), keeping their
training facts.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tsmoe.experiments.results import read_results, runs_of
from tsmoe.experiments.runner import rescore_experiment, run_experiment
from tsmoe.experiments.spec import read_experiment


def compare(experiment_path: str, reproduced: Path) -> str:
    """Each reproduced run's test metrics beside the stored run of the same key, as a Markdown table."""
    experiment = read_experiment(experiment_path)
    lines = ["| run | metric | stored | reproduced | relative difference |", "|---|---|---|---|---|"]
    for key, run in read_results(reproduced)["runs"].items():
        row = experiment.row(key.split("/")[0])
        stored = runs_of(experiment.results_files(row), row.name).get(key)
        if stored is None:
            continue
        for metric, value in run["test"].items():
            before = stored["test"][metric]
            difference = abs(value - before) / abs(before) if before else abs(value)
            lines.append(f"| {key} | {metric} | {before:.6g} | {value:.6g} | {difference:.1e} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="an experiment file, e.g. benchmarks/experiments/p4.yaml")
    parser.add_argument("--rows", nargs="+", help="row names (default: every row)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: each row's own)")
    parser.add_argument("--cases", nargs="+", help="cases (default: every case of each row)")
    parser.add_argument("--out", type=Path, help="store the runs here instead of the rows' own results files")
    parser.add_argument("--runs", type=Path, help="keep each run's folder under this folder")
    parser.add_argument("--compare", action="store_true", help="print the runs of --out beside the stored ones")
    parser.add_argument("--rescore", action="store_true",
                        help="score the stored runs kept in --runs again with the current metrics code")  # fmt: skip
    args = parser.parse_args()
    if args.compare:
        if args.out is None:
            raise SystemExit("--compare reads the runs of --out")
        print(compare(args.experiment, args.out))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    experiment = read_experiment(args.experiment)
    if args.rescore:
        if args.runs is None:
            raise SystemExit("--rescore reads the run folders of --runs")
        keys = rescore_experiment(experiment, args.experiment, args.runs, args.rows, args.seeds, args.out, args.cases)
        print(json.dumps({"rescored": keys}))
        return
    trained = run_experiment(experiment, args.experiment, args.rows, args.seeds, args.out, args.runs, args.cases)
    print(json.dumps({"trained": trained}))


if __name__ == "__main__":
    main()
