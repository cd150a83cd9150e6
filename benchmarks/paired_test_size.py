"""How often the paired tests of two forecasters reject a true null, and how often the block bootstrap's 95 %
interval covers the true mean, at the sizes of the benchmarks' test splits.

    OMP_NUM_THREADS=1 python benchmarks/paired_test_size.py --out benchmarks/results/paired-test-size.json

Overlapping forecast windows share targets: a loss differential of windows ``h`` steps long behaves like the
mean of ``h`` consecutive shocks (a moving average of order ``h - 1``), plus noise of each window's own. This
script draws such differentials with mean zero (``d_t = mean(e_t .. e_{t+h-1}) + 0.5 u_t``, standard normal
``e`` and ``u``), ``--draws`` times per size, and counts at the 5 % level the rejections of

- the Diebold-Mariano statistic with a Newey-West variance, Bartlett weights up to lag ``h - 1``, normal
  reference (what ``tsmoe compare`` used before: written out here, it is no longer in the package);
- the same statistic with a batch-means variance over batches of two horizons and a t reference
  (:func:`tsmoe.analysis.paired_tests.diebold_mariano`, what ``tsmoe compare`` uses now);

and the coverage of the mean by the moving-block bootstrap interval with blocks of two horizons
(:func:`tsmoe.metrics.block_bootstrap_intervals`, the ``mse_ci`` of every forecast run). A well-sized test
rejects 5 % of the time; a valid interval covers 95 % of the time.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from tsmoe.analysis.paired_tests import diebold_mariano
from tsmoe.experiments.results import machine
from tsmoe.io import write_json
from tsmoe.metrics import block_bootstrap_intervals, window_block

# (label, test windows, horizon): P4's test splits (ETTh1, Exchange) and a P2-sized one
SIZES = (("ETTh1 96", 2785, 96), ("ETTh1 192", 2689, 192), ("ETTh1 336", 2545, 336), ("Exchange 96", 1423, 96),
         ("Exchange 192", 1327, 192), ("P2-sized", 200, 12))  # fmt: skip


def newey_west_p(d: np.ndarray, lag: int) -> float:
    """Diebold and Mariano's two-sided p-value with a Newey-West variance (Bartlett weights up to ``lag``)."""
    t, centred = len(d), d - d.mean()
    variance = float(centred @ centred) / t
    for k in range(1, min(lag, t - 1) + 1):
        variance += 2 * (1 - k / (lag + 1)) * float(centred[k:] @ centred[:-k]) / t
    return float(2 * stats.norm.sf(abs(d.mean()) / math.sqrt(max(variance, 1e-300) / t)))


def one_size(windows: int, horizon: int, draws: int, rng: np.random.Generator) -> dict[str, float]:
    rejected_nw = rejected_batch = covered = 0
    block = window_block(horizon)
    for _ in range(draws):
        shocks = rng.standard_normal(windows + horizon - 1)
        d = np.convolve(shocks, np.ones(horizon) / horizon, mode="valid") + 0.5 * rng.standard_normal(windows)
        rejected_nw += newey_west_p(d, horizon - 1) < 0.05
        rejected_batch += diebold_mariano(d, np.zeros(windows), block)["p_value"] < 0.05
        interval = block_bootstrap_intervals({"d": d}, block, resamples=400)["d_ci"]
        covered += interval[0] <= 0 <= interval[1]
    return {"windows": windows, "horizon": horizon, "blocks": windows / block,
            "newey_west_rejects": rejected_nw / draws, "batch_means_rejects": rejected_batch / draws,
            "bootstrap_covers": covered / draws}  # fmt: skip


def markdown_table(result: dict) -> str:
    lines = ["| test split | windows | horizon | blocks of two horizons | Diebold-Mariano, Newey-West: rejects a "
             "true null (5 % level) | Diebold-Mariano, batch means: rejects | block bootstrap 95 % interval: covers |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, row in result["sizes"].items():
        lines.append(f"| {label} | {row['windows']:,} | {row['horizon']} | {row['blocks']:.1f} | "
                     f"{row['newey_west_rejects']:.3f} | {row['batch_means_rejects']:.3f} | "
                     f"{row['bootstrap_covers']:.3f} |")  # fmt: skip
    lines.append(f"\n{result['draws']:,} draws per size (seed {result['seed']}); a rate near 5 % or 95 % has a "
                 f"sampling error of about {math.sqrt(0.05 * 0.95 / result['draws']):.3f}.")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rng = np.random.default_rng(args.seed)
    sizes = {}
    for label, windows, horizon in SIZES:
        sizes[label] = one_size(windows, horizon, args.draws, rng)
        print(label, sizes[label], flush=True)
    command = "python benchmarks/paired_test_size.py " + " ".join(sys.argv[1:])
    result = {"protocol": "paired-test-size", "command": command, "draws": args.draws, "seed": args.seed,
              "machine": machine(), "sizes": sizes}  # fmt: skip
    write_json(args.out, result)
    print(markdown_table(result))


if __name__ == "__main__":
    main()
