"""P3: what choosing text or no text on validation would give, from the stored P3 runs.

    python benchmarks/p3_text_choice.py

For every raw Time-MMD domain, horizon and seed, P3 stores the MoME recipe trained with text and without
(``results/p3-timemmd.json``, rows ``mome`` and ``no_text``), each with its best validation loss. A recipe
that trains both and keeps the one with the lower validation loss would score, on the test split, the
kept run's MSE. The table gives, per case, the test MSE of text and of that choice relative to no text
(means over seeds), and how many seeds validation sent to text. The test split chooses nothing.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "p3-timemmd.json"


def choice_table(runs: dict) -> str:
    cases: dict[tuple[str, int], dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    for key, run in runs.items():
        row, domain, horizon, seed = key.split("/")
        cases[(domain, int(horizon))][row][seed] = run
    lines = ["| domain | horizon | text / no text | validation's choice / no text | seeds sent to text |",
             "|---|---|---|---|---|"]  # fmt: skip
    for (domain, horizon), rows in sorted(cases.items()):
        text, plain = rows["mome"], rows["no_text"]
        seeds = sorted(text.keys() & plain.keys())
        to_text = [s for s in seeds if text[s]["val_loss"] < plain[s]["val_loss"]]
        base = statistics.fmean(plain[s]["test"]["mse"] for s in seeds)
        with_text = statistics.fmean(text[s]["test"]["mse"] for s in seeds)
        chosen = statistics.fmean((text if s in to_text else plain)[s]["test"]["mse"] for s in seeds)
        lines.append(f"| {domain} | {horizon} | {with_text / base:.3f} | {chosen / base:.3f} | "
                     f"{len(to_text)} of {len(seeds)} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(choice_table(json.loads(RESULTS.read_text())["runs"]))
