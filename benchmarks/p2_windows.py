"""Protocol P2, window by window: where on the test split a row's MSE comes from, against the last value.

    OMP_NUM_THREADS=1 python benchmarks/p2_windows.py --row mome_d64_last_anchor_original_loss_refit \
        --domains SocialGood --seeds 0 1 2 3 4
    python benchmarks/p2_windows.py --table

Each run is the P2 run of that row, domain and seed (``tsmoe train RECIPE --set data.domain=D --set
seed=S [--set ...]``, the recipe and overrides of ``p2_timemmd.ROWS``), so its test MSE is the one
``p2_timemmd.py --table`` reports for it. Its folder ``RUNS/ROW-DOMAIN-sSEED`` is reused when there
(``p2_timemmd.py --run --runs RUNS`` keeps them), else trained. Its test windows are then put in three
groups, by a rule on the data alone (the threshold is the largest one-step change in any input window
of the train file, so nothing is chosen by looking at test errors):

- ``jump ahead``: the horizon (from the last input value on) holds a one-step change larger than any in
  the train file's inputs: no input shows it coming;
- ``jump in input``: the input window holds such a change: the model extrapolates from a pattern its
  training never showed at that size;
- ``other``: the rest.

Each group's MSE is over its own windows; its share is its part of the whole test MSE. Nothing here is
used to choose a model: it explains test numbers chosen on validation elsewhere.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from p2_timemmd import DOMAINS, ROWS, last_value_forecast, machine, save, train_command  # benchmarks/ is on sys.path
from seed_ensemble import trained_run

from tsmoe.data.sources.mome_windows import load_mome_split, load_mome_windows
from tsmoe.estimator import Estimator

GROUPS = ("jump ahead", "jump in input", "other")
OUT = Path(__file__).parent / "results" / "p2-windows.json"


def window_groups(domain: str) -> tuple[float, list[str]]:
    """The threshold (largest one-step change in the train file's inputs) and each test window's group."""
    threshold = float(np.abs(np.diff(load_mome_split(domain, "train").inputs, axis=1)).max())
    test = load_mome_windows(domain)[2]
    ahead = np.abs(np.diff(np.concatenate([test.inputs[:, -1:], test.targets], axis=1), axis=1)).max(1)
    inside = np.abs(np.diff(test.inputs, axis=1)).max(1)
    groups = ["jump ahead" if a > threshold else "jump in input" if i > threshold else "other"
              for a, i in zip(ahead, inside, strict=True)]  # fmt: skip
    return threshold, groups


def squared_errors(forecast: np.ndarray, domain: str) -> list[float]:
    """Per test window, the MSE over its horizon of ``forecast (N, H)``."""
    targets = load_mome_windows(domain)[2].targets
    return ((forecast - targets) ** 2).mean(1).tolist()


def run(out: Path, row: str, domains: list[str], seeds: list[int], runs: Path) -> None:
    payload = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    recipe, overrides = ROWS[row]
    for domain in domains:
        for seed in seeds:
            key = f"{row}/{domain}/{seed}"
            if key in payload["runs"]:
                continue
            sets = [*overrides, f"data.domain={domain}"]
            folder = trained_run(recipe, sets, seed, runs / f"{row}-{domain}-s{seed}")
            forecast = np.asarray(Estimator.load(folder).predict())[:, :, 0]
            test_mse = json.loads((folder / "metrics.json").read_text())["mse"]
            payload["runs"][key] = {
                "window_mse": squared_errors(forecast, domain),
                "test_mse": test_mse,
                "command": train_command(recipe, [*sets, f"seed={seed}"]),
            }
            print(key, round(test_mse, 4), flush=True)
            save(out, {**payload, "machine": machine(), "script": "python " + " ".join(sys.argv)})
    print(table(payload))


def table(payload: dict) -> str:
    """Per row and domain: each group's windows, the last value's MSE and the row's (mean ± std over
    seeds) on them, and the group's share of the row's whole test MSE."""
    by_row_domain: dict[tuple[str, str], list[list[float]]] = {}
    for key, result in payload["runs"].items():
        row, domain, _ = key.split("/")
        by_row_domain.setdefault((row, domain), []).append(result["window_mse"])
    lines = ["| row | domain | windows | count | last value MSE | row MSE (seeds) | share of the row's MSE |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (row, domain), runs in sorted(by_row_domain.items()):
        threshold, groups = window_groups(domain)
        naive = squared_errors(last_value_forecast(load_mome_windows(domain)[2]), domain)
        totals = [sum(errors) for errors in runs]
        for group in (*GROUPS, "all"):
            members = [i for i, g in enumerate(groups) if group in (g, "all")]
            if not members:
                continue
            values = [statistics.mean(errors[i] for i in members) for errors in runs]
            shares = [value * len(members) / total for value, total in zip(values, totals, strict=True)]
            spread = f" ± {statistics.stdev(values):.3g}" if len(values) > 1 else ""
            name = f"{group} (change > {threshold:.3g})" if group in GROUPS[:2] else group
            lines.append(f"| {row} | {domain} | {name} | {len(members)} | "
                         f"{statistics.mean(naive[i] for i in members):.4g} | "
                         f"{statistics.mean(values):.4g}{spread} | {statistics.mean(shares):.0%} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=sorted(ROWS), help="train this row's seeds and store each window's MSE")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--runs", default="runs/p2", help="the folder of the run folders (reused or trained)")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.row:
        run(Path(args.out), args.row, args.domains, args.seeds, Path(args.runs))
    elif args.table:
        print(table(json.loads(Path(args.out).read_text())))
    else:
        parser.error("give --row ROW (train and store) or --table")


if __name__ == "__main__":
    main()
