"""Protocol P3: raw Time-MMD with its own text under the leakage rule: text by modulation (MoME) vs no
text vs token fusion, on the same windows.

    OMP_NUM_THREADS=1 python benchmarks/p3_timemmd.py --domains Health_US Energy --seeds 0
    python benchmarks/p3_timemmd.py --table

A variant of the text rows (``--text-set``) or of every row (``--set``), chosen on validation only
(``--validation`` tables the mean best validation loss; ``--first-horizon`` runs each domain's shortest
horizon alone, for a cheap search):

    OMP_NUM_THREADS=1 python benchmarks/p3_timemmd.py --rows mome token_fusion --first-horizon \
        --text-set model.text_dropout=0.5 --out benchmarks/results/search/p3-text_dropout0.5.json
    python benchmarks/p3_timemmd.py --validation --out benchmarks/results/search/p3-text_dropout0.5.json \
        --against benchmarks/results/p3-timemmd.json

``--text-lengths`` tables, per domain, the share of windows whose joined text is longer than MiniLM reads,
and the share of facts that are longer alone.

Each run is ``tsmoe train RECIPE --set data.domain=D --set data.lookback=L --set data.horizon=H --set
seed=S [--set ...]``, a row and a case of ``benchmarks/experiments/p3.yaml`` (lookback and horizons by each
domain's frequency, as P3 fixes them), trained by the one runner (``tsmoe.experiments``). Metrics are
MSE/MAE on the z-scored scale (training statistics). The JSON is rewritten after every run; a stopped run
continues where it stopped, and several processes (one per seed, say) may fill one file side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

from tsmoe.data.registry import get_dataset
from tsmoe.data.sources.time_mmd import TimeMMDParams
from tsmoe.data.text_windows import dated_tables
from tsmoe.experiments.results import read_results
from tsmoe.experiments.runner import run_experiment
from tsmoe.experiments.spec import read_experiment
from tsmoe.text.encoders import MiniLMEncoder

EXPERIMENT = Path(__file__).parent / "experiments" / "p3.yaml"
P3 = read_experiment(EXPERIMENT)
ROWS = [row.name for row in P3.rows]
TABLE_ROWS = [row.name for row in P3.rows if row.in_table]  # the rows P3 compares, run by default
DOMAINS = list(dict.fromkeys(case.split("/")[0] for case in P3.cases))  # the experiment's order
TEXT_ROWS = ("mome", "token_fusion")  # the rows that read text, to which --text-set applies


def first_horizons() -> dict[str, str]:
    """Each domain's case of its shortest horizon (``Health_US/12``)."""
    first: dict[str, str] = {}
    for case in P3.cases:
        domain, horizon = case.split("/")
        if domain not in first or int(horizon) < int(first[domain].split("/")[1]):
            first[domain] = case
    return first


def run(out: Path, domains: list[str], seeds: list[int], rows: list[str], text_sets: list[str],
        first_horizon: bool, sets_all: list[str]) -> None:  # fmt: skip
    """The experiment's ``rows`` on ``domains`` (their shortest horizon only with ``first_horizon``), with
    ``sets_all`` added to every row and ``text_sets`` to the rows that read text, trained by the one
    runner into ``out``."""
    wanted = set(first_horizons().values()) if first_horizon else set(P3.cases)
    cases = {name: sets for name, sets in P3.cases.items() if name in wanted and name.split("/")[0] in domains}
    chosen = [replace(row, set=[*row.set, *sets_all, *(text_sets if row.name in TEXT_ROWS else [])], cases=None)
              for row in P3.rows if row.name in rows]  # fmt: skip
    run_experiment(replace(P3, cases=cases, rows=chosen), str(EXPERIMENT), seeds=seeds, out=out)
    print(table(read_results(out)))


def best_validation(run: dict) -> float:
    """The run's best validation loss (``val_loss`` in the runs made before the one runner)."""
    return run["val_loss"] if "val_loss" in run else run["best_score"]


def table(payload: dict, score: str = "test") -> str:
    """Domain x horizon rows; per model the test MSE (or, with ``score="val"``, the best validation loss),
    mean over seeds; the mean over horizons per domain. Only the rows present in ``payload`` are shown."""
    runs = payload["runs"]
    cells: dict[tuple[str, str, str], list[float]] = {}
    for key, result in runs.items():
        row, domain, horizon, _ = key.split("/")
        cells.setdefault((domain, horizon, row), []).append(
            result["test"]["mse"] if score == "test" else best_validation(result)
        )
    present = {r for _, _, r in cells}
    rows = [r for r in ROWS if r in present]
    lines = ["| domain | horizon | " + " | ".join(rows) + " | best |", "|---" * (len(rows) + 3) + "|"]
    domains = sorted({d for d, _, _ in cells}, key=DOMAINS.index)
    wins = {row: 0 for row in rows}
    for domain in domains:
        horizons = sorted({int(h) for d, h, _ in cells if d == domain})
        means: dict[str, list[float]] = {row: [] for row in rows}
        for horizon in [*map(str, horizons), "mean"]:
            if horizon == "mean":
                values = {row: statistics.fmean(v) for row, v in means.items() if len(v) == len(horizons)}
            else:
                values = {row: statistics.fmean(cells[(domain, horizon, row)]) for row in rows
                          if (domain, horizon, row) in cells}  # fmt: skip
                for row, value in values.items():
                    means[row].append(value)
            best = min(values, key=values.get) if len(values) == len(rows) else ""  # only among complete rows
            if horizon == "mean" and best:
                wins[best] += 1
            shown = " | ".join(f"{values[r]:.4f}" if r in values else "" for r in rows)
            lines.append(f"| {domain} | {horizon} | {shown} | {best} |")
    lines.append("")
    lines.append("Domains won (mean over horizons): " + ", ".join(f"{row} {n}" for row, n in wins.items()))
    return "\n".join(lines)


def text_lengths(domains: list[str]) -> str:
    """Per domain, at its shortest horizon: the share of windows (all three parts) whose visible text,
    its facts joined, is longer than MiniLM reads (its ``max_tokens`` word pieces), so that the end of the
    newest fact is cut when the facts are joined oldest first; and the share of the domain's facts that
    are longer alone, the only text ``data.text_each_fact`` cuts."""
    encoder = MiniLMEncoder()
    limit = encoder.max_tokens
    lines = [f"| domain, horizon | windows | joined, longer than {limit} word pieces | facts | a fact alone, "
             f"longer than {limit} |", "|---|---|---|---|---|"]  # fmt: skip
    for domain in domains:
        values = dict(item.split("=") for item in P3.cases[first_horizons()[domain]])
        lookback, horizon = int(values["data.lookback"]), int(values["data.horizon"])
        params = TimeMMDParams(domain=domain, lookback=lookback, horizon=horizon, text_encoder="hashing")
        source = get_dataset("time_mmd").load(params)
        prepared = get_dataset("time_mmd").prepare(params, source, 0)
        texts = [text for part in (prepared.train, prepared.val, prepared.test) for text in part.texts]
        over = sum(n > limit for n in encoder.token_counts(texts))
        facts = sorted({fact for table in dated_tables(source).values() for fact in table.texts})
        long_facts = sum(n > limit for n in encoder.token_counts(facts))
        lines.append(f"| {domain} {horizon} | {len(texts)} | {over / len(texts):.1%} | {len(facts)} | "
                     f"{long_facts / len(facts):.1%} |")  # fmt: skip
    return "\n".join(lines)


def against(payload: dict, base: dict) -> str:
    """Per row: the geometric mean, over the runs both files hold, of this file's best validation loss
    divided by the base file's (a scale-free summary across domains; below 1 means lower loss)."""
    lines = []
    for row in ROWS:
        ratios = [best_validation(run) / best_validation(base["runs"][key]) for key, run in payload["runs"].items()
                  if key.startswith(row + "/") and key in base["runs"]]  # fmt: skip
        if ratios:
            geometric = math.exp(statistics.fmean(math.log(r) for r in ratios))
            lines.append(f"{row}: validation loss x{geometric:.3f} of the base's, over {len(ratios)} runs")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=DOMAINS, choices=DOMAINS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="benchmarks/results/p3-timemmd.json")
    parser.add_argument("--rows", nargs="+", default=TABLE_ROWS, choices=ROWS)
    parser.add_argument("--text-set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides for the text rows only (mome, token_fusion)")  # fmt: skip
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="sets",
                        help="overrides for every row (e.g. model.anchor=last)")  # fmt: skip
    parser.add_argument("--first-horizon", action="store_true", help="each domain's shortest horizon only")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--text-lengths", action="store_true", help="how many windows' text MiniLM cuts")
    parser.add_argument("--validation", action="store_true", help="table the best validation loss instead")
    parser.add_argument("--against", metavar="JSON", help="with --validation: the ratio of validation losses to "
                        "the same runs in this file (e.g. benchmarks/results/p3-timemmd.json)")  # fmt: skip
    args = parser.parse_args()
    if args.text_lengths:
        print(text_lengths(args.domains))
        return
    if args.table or args.validation:
        payload = json.loads(Path(args.out).read_text())
        print(table(payload, "val" if args.validation else "test"))
        if args.against:
            print(against(payload, json.loads(Path(args.against).read_text())))
        return
    run(Path(args.out), args.domains, args.seeds, args.rows, args.text_set, args.first_horizon, args.sets)


if __name__ == "__main__":
    main()
