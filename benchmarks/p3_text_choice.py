"""P3: what choosing text or no text on validation would give, from the stored P3 runs.

    python benchmarks/p3_text_choice.py
    python benchmarks/p3_text_choice.py --blocks     # the choice made on three validation blocks

For every raw Time-MMD domain, horizon and seed, P3 stores the MoME recipe trained with text and without
(``results/p3-timemmd.json``, rows ``mome`` and ``no_text``), each with its best validation loss. A recipe
that trains both and keeps the one with the lower validation loss (``model.text: auto`` is that recipe)
would score, on the test split, the kept run's MSE. The table gives, per case, the test MSE of text and of
that choice relative to no text (means over seeds), and how many seeds validation sent to text. The test
split chooses nothing.

``--blocks`` makes the choice once per case (or once per domain, all its horizons pooled) from seed 0 on
three validation blocks of the training span instead of one: rows 50-60 % and 60-70 % of each series
(``experiments/p3-text-folds.yaml``, trained on the rows before each block) and P3's own 70-80 %
(``results/p3-intervals.json``). Text is kept where the geometric mean of its validation loss over no
text's, across the blocks, is below 1; the choice is then scored on the stored seeds' test MSE.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STORED, FOLDS, OWN_BLOCK = RESULTS / "p3-timemmd.json", RESULTS / "p3-text-folds.json", RESULTS / "p3-intervals.json"
BLOCKS = ("val50", "val60", "val70")  # where each validation block starts, in % of the series


def by_case(runs: dict) -> dict[tuple[str, int], dict[str, dict]]:
    """``{(domain, horizon): {row: {seed: run}}}`` from P3's ``row/domain/horizon/seed`` keys."""
    cases: dict[tuple[str, int], dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    for key, run in runs.items():
        row, domain, horizon, seed = key.split("/")
        cases[(domain, int(horizon))][row][seed] = run
    return cases


def test_ratios(rows: dict[str, dict], to_text: set[str]) -> tuple[float, float, list[str]]:
    """Text's and the choice's test MSE over no text's (means over the stored seeds), and those seeds."""
    text, plain = rows["mome"], rows["no_text"]
    seeds = sorted(text.keys() & plain.keys())
    base = statistics.fmean(plain[s]["test"]["mse"] for s in seeds)
    with_text = statistics.fmean(text[s]["test"]["mse"] for s in seeds)
    chosen = statistics.fmean((text if s in to_text else plain)[s]["test"]["mse"] for s in seeds)
    return with_text / base, chosen / base, seeds


def choice_table(runs: dict) -> str:
    lines = ["| domain | horizon | text / no text | validation's choice / no text | seeds sent to text |",
             "|---|---|---|---|---|"]  # fmt: skip
    for (domain, horizon), rows in sorted(by_case(runs).items()):
        to_text = {s for s in rows["mome"] if s in rows["no_text"]
                   and rows["mome"][s]["val_loss"] < rows["no_text"][s]["val_loss"]}  # fmt: skip
        with_text, chosen, seeds = test_ratios(rows, to_text)
        lines.append(f"| {domain} | {horizon} | {with_text:.3f} | {chosen:.3f} | {len(to_text)} of {len(seeds)} |")
    return "\n".join(lines)


def block_log_ratios(folds: dict, own_block: dict) -> dict[tuple[str, int], list[float]]:
    """Per case, ``log(val_loss text / val_loss no text)`` of seed 0 on each validation block."""
    losses: dict[tuple[str, int, str], dict[str, float]] = defaultdict(dict)
    for key, run in folds.items():  # row/domain/horizon/valNN/seed
        row, domain, horizon, block, _ = key.split("/")
        losses[(domain, int(horizon), block)][row] = run["best_score"]
    for key, run in own_block.items():  # row/domain/horizon/seed
        row, domain, horizon, _ = key.split("/")
        losses[(domain, int(horizon), BLOCKS[-1])][row] = run["best_score"]
    ratios: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (domain, horizon, _), pair in sorted(losses.items()):
        if {"mome", "no_text"} <= pair.keys():
            ratios[(domain, horizon)].append(math.log(pair["mome"] / pair["no_text"]))
    return ratios


def blocks_table(stored: dict, folds: dict, own_block: dict) -> str:
    """Per case: the validation blocks' geometric-mean ratio (text / no text), and the test ratio of text and
    of the choice made per case and per domain (all horizons' blocks pooled)."""
    ratios = block_log_ratios(folds, own_block)
    per_domain: dict[str, list[float]] = defaultdict(list)
    for (domain, _), logs in ratios.items():
        per_domain[domain] += logs
    head = "| domain | horizon | validation text / none, by block | test: text | chosen per case | chosen per domain |"
    lines = [head, "|---|---|---|---|---|---|"]
    for (domain, horizon), rows in sorted(by_case(stored).items()):
        logs = ratios.get((domain, horizon), [])
        if len(logs) < len(BLOCKS):
            continue
        case_text, domain_text = statistics.fmean(logs) < 0, statistics.fmean(per_domain[domain]) < 0
        everything = set(rows["mome"])
        with_text, per_case, _ = test_ratios(rows, everything if case_text else set())
        _, pooled, _ = test_ratios(rows, everything if domain_text else set())
        blocks = ", ".join(f"{math.exp(v):.3f}" for v in logs)
        lines.append(f"| {domain} | {horizon} | {blocks} | {with_text:.3f} | {per_case:.3f}{' (text)' * case_text} "
                     f"| {pooled:.3f}{' (text)' * domain_text} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", action="store_true", help="choose on three validation blocks (seed 0)")
    args = parser.parse_args()
    stored = json.loads(STORED.read_text())["runs"]
    if args.blocks:
        folds, own = (json.loads(path.read_text())["runs"] for path in (FOLDS, OWN_BLOCK))
        print(blocks_table(stored, folds, own))
    else:
        print(choice_table(stored))


if __name__ == "__main__":
    main()
