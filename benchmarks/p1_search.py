"""The validation searches around MR-MoE's P1 recipe: the rows of ``benchmarks/experiments/p1-search.yaml``,
each the recipe with a few overrides, ranked by the validation split only.

    OMP_NUM_THREADS=1 python benchmarks/p1_search.py --variants quantile-lr5e-4 --seeds 0 1
    python benchmarks/p1_search.py --table

Runs are trained by the one runner (``tsmoe.experiments``), one results file per variant, so a stopped
search keeps what it finished. ``--table`` ranks the variants by their mean best validation AUROC, each
beside the recipe's own on the same seeds. Test metrics are stored too, but never used to rank: the chosen
variant is then run over 5 seeds as its own recipe.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from tsmoe.experiments.results import runs_of
from tsmoe.experiments.runner import run_experiment
from tsmoe.experiments.spec import read_experiment

EXPERIMENT = Path(__file__).parent / "experiments" / "p1-search.yaml"
SEARCH = read_experiment(EXPERIMENT)


def validation_auroc(run: dict) -> float:
    """A run's best validation AUROC (``validation.val_auroc`` in the runs made before the one runner)."""
    return run["best_score"] if "best_score" in run else run["validation"]["val_auroc"]


def by_seed(name: str) -> dict[int, float]:
    """Seed -> best validation AUROC of one variant's stored runs."""
    row = SEARCH.row(name)
    return {
        int(key.split("/")[-1]): validation_auroc(run) for key, run in runs_of(SEARCH.results_files(row), name).items()
    }


def table() -> str:
    """The variants ranked by mean best validation AUROC, each beside the recipe's own mean over the same
    seeds (seed noise is about 0.005 here, so only a paired gain over several seeds says much)."""
    recipe = by_seed("base")
    rows = []
    for row in SEARCH.rows:
        runs = by_seed(row.name)
        if not runs:
            continue
        paired = [auroc - recipe[seed] for seed, auroc in runs.items() if seed in recipe]
        same = statistics.fmean(recipe[seed] for seed in runs if seed in recipe) if paired else None
        rows.append(
            (statistics.fmean(runs.values()), row.name, len(runs), same, statistics.fmean(paired) if paired else None)
        )
    lines = [
        "| variant | seeds | best validation AUROC | the recipe on the same seeds | paired gain |",
        "|---|---|---|---|---|",
    ]
    for val, name, n, same, gain in sorted(rows, key=lambda row: row[0], reverse=True):
        same_text = f"{same:.4f}" if same is not None and name != "base" else ""
        gain_text = f"{gain:+.4f}" if gain is not None and name != "base" else ""
        lines.append(f"| {name} | {n} | {val:.4f} | {same_text} | {gain_text} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=[row.name for row in SEARCH.rows])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--table", action="store_true", help="print the ranking of what has run")
    args = parser.parse_args()
    if not args.table:
        run_experiment(SEARCH, str(EXPERIMENT), args.variants, args.seeds)
    print(table())


if __name__ == "__main__":
    main()
