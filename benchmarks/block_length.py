"""How the forecast intervals depend on the bootstrap's block length: a kept run's test windows resampled in
blocks of 1, horizon / 4, horizon, 2 horizons and 4 horizons, and the autocorrelation of its per-window
losses. ``tsmoe`` uses blocks of two horizons (``tsmoe.metrics.window_block``): the width levels off there.

    python benchmarks/block_length.py runs/p4-intervals/gru-0 runs/p4-exchange-intervals/gru-0 \\
        --out benchmarks/results/block-length.json

The runs are those ``benchmarks/experiments/p4-intervals.yaml`` and ``p4-exchange-intervals.yaml`` keep
(``run.py ... --runs``). Each interval is given relative to the run's test MSE.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tsmoe.estimator import Estimator
from tsmoe.experiments.results import machine
from tsmoe.io import write_json
from tsmoe.metrics import block_bootstrap_intervals, window_losses

BLOCKS = (0, 0.25, 1, 2, 4)  # in horizons; 0: single windows (the plain bootstrap)
LAG_HORIZONS = (0.5, 1, 2, 4)  # the losses' autocorrelation at one window and at these many horizons


def measure(run: Path) -> dict:
    estimator = Estimator.load(run)
    prepared = estimator.prepare_data()
    output, target = estimator.scored_outputs(prepared, prepared.test)
    losses = window_losses(output, target)["mse"]
    horizon, mean = int(output.shape[1]), float(losses.mean())
    blocks = {}
    for share in BLOCKS:
        block = max(1, round(share * horizon))
        low, high = block_bootstrap_intervals({"mse": losses}, block)["mse_ci"]
        blocks[str(share)] = {"block": block, "relative_interval": [low / mean, high / mean]}
    centred = losses - mean
    lags = sorted({1, *(round(share * horizon) for share in LAG_HORIZONS)})
    acf = {str(k): float(np.corrcoef(centred[:-k], centred[k:])[0, 1]) for k in lags}
    names = {"data": estimator.config.data["name"], "model": estimator.config.model["name"]}
    return {"run": str(run), **names, "horizon": horizon, "windows": len(losses), "mse": mean, "blocks": blocks,
            "autocorrelation": acf}  # fmt: skip


def markdown_table(result: dict) -> str:
    """Per run: the 95 % interval relative to the MSE at each block length, and the losses' autocorrelation."""
    head = " | ".join(f"block {float(s):g} h" if s != "0" else "single windows" for s in map(str, BLOCKS))
    lines = [f"| run | windows | {head} | autocorrelation at lag h, 2h |", "|---|---|" + "---|" * (len(BLOCKS) + 1)]
    for row in result["runs"]:
        cells = [f"[{b['relative_interval'][0]:.2f}, {b['relative_interval'][1]:.2f}]" for b in row["blocks"].values()]
        h = row["horizon"]
        acf = f"{row['autocorrelation'][str(h)]:.2f}, {row['autocorrelation'][str(2 * h)]:.2f}"
        lines.append(f"| {row['model']} on {row['data']} (h = {h}) | {row['windows']:,} | " + " | ".join(cells)
                     + f" | {acf} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="kept forecasting runs")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    command = "python benchmarks/block_length.py " + " ".join(map(str, args.runs)) + f" --out {args.out}"
    result = {"protocol": "block-length", "command": command, "machine": machine(),
              "runs": [measure(run) for run in args.runs]}  # fmt: skip
    write_json(args.out, result)
    print(markdown_table(result))


if __name__ == "__main__":
    main()
