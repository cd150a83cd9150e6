"""The claims of the benchmark tables as paired tests: two rows' seed-0 runs scored on the same test items,
the difference with its 95 % interval and p-value, as ``tsmoe compare`` computes them
(:func:`tsmoe.analysis.compare.compare_runs`): DeLong's test for AUROC and a paired bootstrap for AUPRC and
Brier (P1), the Diebold-Mariano test with a batch-means variance on the per-window losses (P2, P3, P4; the
results files made before it hold it with a Newey-West variance, their ``test`` says which).

    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p1-intervals.yaml --runs runs/p1-intervals
    python benchmarks/paired.py p1 --runs runs/p1-intervals --out benchmarks/results/p1-paired.json
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p4.yaml --seeds 0 \\
        --out p4-s0-again.json --runs runs/p4     # an --out that does not hold them yet: stored runs are skipped
    python benchmarks/paired.py p4 --runs runs/p4 --out benchmarks/results/p4-paired.json
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p4-horizons.yaml --seeds 0 --runs runs/p4-horizons
    python benchmarks/paired.py p4-horizons --runs runs/p4-horizons --out benchmarks/results/p4-horizons-paired.json
    (and p4-exchange-horizons.yaml the same way)
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p2-intervals.yaml --runs runs/p2-intervals
    python benchmarks/paired.py p2 --runs runs/p2-intervals --out benchmarks/results/p2-paired.json
    python benchmarks/paired.py p2-backbones --runs runs/p2-intervals --out benchmarks/results/p2-backbones-paired.json
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p3-intervals.yaml --runs runs/p3-intervals
    python benchmarks/paired.py p3 --runs runs/p3-intervals --out benchmarks/results/p3-paired.json
    python benchmarks/paired.py p3-fusion --runs runs/p3-intervals --out benchmarks/results/p3-fusion-paired.json
    OMP_NUM_THREADS=1 python benchmarks/run.py benchmarks/experiments/p3.yaml --rows mmlinear mmlinear_no_text \
        mitransformer mitransformer_no_text --runs runs/p3-backbones
    python benchmarks/paired.py p3-backbones --runs runs/p3-backbones --out benchmarks/results/p3-backbones-paired.json
    python benchmarks/paired.py p1 --out benchmarks/results/p1-paired.json --table
    python benchmarks/paired.py p1-inputs --runs runs/p1-intervals --out benchmarks/results/p1-inputs-paired.json
    OMP_NUM_THREADS=1 python benchmarks/seed_ensemble.py configs/mrmoe-physionet2012.yaml --runs runs/p1/mrmoe \
        --seeds 0 1 2 3 4 --out benchmarks/results/ensemble/p1-mrmoe.json      # and the GRU's (its results file)
    python benchmarks/paired.py p1-ensembles --runs runs/p1 --out benchmarks/results/p1-ensembles-paired.json

The runs are seed 0 of each row (the runner keeps their folders with ``--runs``). ``run.py`` skips the runs
its results file already holds, so on a checkout that has the results but not the folders, add ``--out`` with
a file that does not hold them (the folders are made, the stored results stay) and ``--compare`` to see how
the runs made again agree with the stored ones: exactly or to float rounding on the same CPU, and on another
CPU model some runs move further (``p2-intervals.yaml``'s note; P4's LSTM and MR-MoE by about 1 %). A test
on one seed's runs asks whether the split resolves that seed's difference; it does not test the difference
of the seeds' means. ``p1-ensembles`` compares deep ensembles of five seeds (``tsmoe compare A+B+... C+D+...``),
whose members ``seed_ensemble.py`` keeps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsmoe.analysis.compare import compare_runs
from tsmoe.experiments.results import machine
from tsmoe.experiments.spec import read_experiment
from tsmoe.io import write_json

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
P2_DOMAINS = tuple(read_experiment(EXPERIMENTS / "p2-intervals.yaml").cases)  # the kept runs' cases
P3_CASES = tuple(read_experiment(EXPERIMENTS / "p3-intervals.yaml").cases)
HORIZONS = tuple(read_experiment(EXPERIMENTS / "p4-horizons.yaml").cases)  # P4's longer horizons
# per setting: (row A, row B, the claim of the benchmark pages the pair tests[, the case both ran on])
PAIRS: dict[str, tuple[tuple[str, ...], ...]] = {
    "p1": (
        ("cfc", "lstm", "a single liquid network is below the LSTM"),
        ("ctrnn", "lstm", "a single liquid network is below the LSTM"),
        ("ltc", "lstm", "a single liquid network is below the LSTM"),
        ("moe_same_rate", "cfc", "a mixture at one rate adds nothing over one CfC"),
        ("mrmoe_no_attention", "cfc", "the multi-rate gate without attention adds nothing over one CfC"),
        ("mrmoe", "mrmoe_no_attention", "attention lifts MR-MoE"),
        ("mrmoe", "gru", "MR-MoE reaches the GRU's level"),
    ),
    "p1-inputs": (  # the P1 rows after the ladder: what an input or the training adds
        ("gru_observation_decay", "gru", "GRU-D's input decay lifts the GRU"),
        ("gru_od_quantile_dropout", "mrmoe", "the GRU with MR-MoE's inputs is level with MR-MoE"),
        ("mrmoe_distilled", "mrmoe", "distillation from its seeds and boosting lifts MR-MoE"),
    ),
    "p2": tuple(
        (a, b, claim, domain)
        for a, b, claim in (
            ("mome", "mome_no_text", "text by modulation lowers the error"),
            ("token_fusion", "mome", "token fusion is level with modulation"),
            ("mome_d64_last_anchor_original_loss_refit", "mome", "the shipped recipe against the paper's settings"),
        )
        for domain in P2_DOMAINS
    )
    + (
        ("patchtst", "mome", "PatchTST without text is below MoME's paper settings", "SocialGood"),
        ("patchtst", "mome", "PatchTST without text is below MoME's paper settings", "Energy"),
    ),
    "p2-backbones": tuple(
        (backbone, f"{backbone}_no_text", f"text by modulation lowers {backbone}'s error", domain)
        for backbone in ("mmlinear", "mitransformer")
        for domain in P2_DOMAINS
    ),
    "p3": tuple(("mome", "no_text", "text by modulation against no text", case) for case in P3_CASES),
    "p3-fusion": tuple(("mome", "token_fusion", "modulation against token fusion", case) for case in P3_CASES),
    "p3-backbones": tuple(
        (backbone, f"{backbone}_no_text", f"text by modulation against no text for {backbone}", case)
        for backbone in ("mmlinear", "mitransformer")
        for case in P3_CASES
    ),
    "p4": (
        ("gru", "itransformer", "the GRU is below every baseline"),
        ("lstm", "itransformer", "the LSTM is below every baseline"),
        ("mrmoe", "itransformer", "MR-MoE is within 1 % of the best baseline"),
        ("mrmoe", "gru", "the GRU is below MR-MoE"),
    ),
    "p4-exchange": (
        ("mrmoe", "dlinear", "MR-MoE is within 2.2 % of the best baseline"),
        ("gru", "dlinear", "the GRU is level with the best baseline"),
        ("mrmoe", "gru", "MR-MoE and the GRU"),
    ),
    **{
        setting: tuple(
            ("mrmoe", other, f"MR-MoE against {other} at the longer horizons", horizon)
            for horizon in HORIZONS
            for other in ("dlinear", "itransformer", "patchtst", "gru", "lstm")
        )
        for setting in ("p4-horizons", "p4-exchange-horizons")
    },
}
SEED = 0
# deep ensembles of five seeds (benchmarks/seed_ensemble.py keeps them as <recipe>-s<seed>): per setting,
# (side A, side B, claim), each side a list of run folders under --runs, scored as their ensemble
SEEDS = range(5)
ENSEMBLE_PAIRS: dict[str, tuple[tuple[list[str], list[str], str], ...]] = {
    "p1-ensembles": (
        ([f"mrmoe-s{s}" for s in SEEDS], [f"gru-od-q-do-s{s}" for s in SEEDS],
         "the MR-MoE and GRU (input decay, quantiles, observation dropout) ensembles are level"),
        ([f"mrmoe-s{s}" for s in SEEDS], ["mrmoe-s0"], "five seeds as one ensemble against seed 0 (MR-MoE)"),
        ([f"gru-od-q-do-s{s}" for s in SEEDS], ["gru-od-q-do-s0"], "five seeds as one ensemble against seed 0 (GRU)"),
    ),
}  # fmt: skip


def compare_pairs(setting: str, runs: Path) -> list[dict]:
    """Every pair of the setting, from the run folders ``runs/<row>-0`` the runner keeps (or, for
    ensembles, the seeds' folders ``seed_ensemble.py`` keeps)."""
    if setting in ENSEMBLE_PAIRS:
        return [_pair(_label(a), _label(b), claim, None, [runs / f for f in a], [runs / f for f in b])
                for a, b, claim in ENSEMBLE_PAIRS[setting]]  # fmt: skip
    compared = []
    for row_a, row_b, claim, *case in PAIRS[setting]:
        folder = "-".join([*case, str(SEED)]).replace("/", "-")  # the runner's folder: <row>-<case>-<seed>
        compared.append(_pair(row_a, row_b, claim, case[0] if case else None, runs / f"{row_a}-{folder}",
                              runs / f"{row_b}-{folder}"))  # fmt: skip
    return compared


def _label(folders: list[str]) -> str:
    """A side's name in the table: a run's folder, or an ensemble's recipe and size (``mrmoe x5``)."""
    return folders[0] if len(folders) == 1 else f"{folders[0].rsplit('-s', 1)[0]} x{len(folders)}"


def _pair(row_a: str, row_b: str, claim: str, case: str | None, side_a: Path | list[Path],
          side_b: Path | list[Path]) -> dict:  # fmt: skip
    """One pair compared on the test part (a side given as a list of runs: their ensemble)."""
    result = compare_runs(side_a, side_b, "test")
    first = next(iter(result["metrics"]))
    p_value = result["metrics"][first]["p_value"]
    print(f"{row_a} - {row_b} {case or ''}: {first} {result['metrics'][first]['difference']:+.4f} "
          f"p={'-' if p_value is None else f'{p_value:.3g}'}", flush=True)  # fmt: skip
    warning = {"warning": result["warning"]} if "warning" in result else {}  # too few windows for the test
    return {"a": row_a, "b": row_b, "claim": claim, "case": case, "items": result["items"], "task": result["task"],
            "metrics": result["metrics"], **warning}  # fmt: skip


def markdown_table(result: dict) -> str:
    """One line per pair: A - B with its 95 % interval and p-value, for AUROC and AUPRC (binary; the Brier
    score's are in the results file) or MSE and MAE (forecasts)."""
    binary = result["pairs"][0]["task"] == "binary"
    newey_west = "Newey-West" in result["pairs"][0]["metrics"].get("mse", {}).get("test", "")
    forecast_test = "DM, Newey-West" if newey_west else "DM, batch means"
    metrics, tests = (("auroc", "auprc"), ("DeLong", "bootstrap")) if binary else (("mse", "mae"), (forecast_test,) * 2)
    head = " | ".join(f"{m.upper()} [95 % interval] | p ({t})" for m, t in zip(metrics, tests, strict=True))
    lines = [f"| A - B | {head} |", "|---|" + "---|" * 2 * len(metrics)]
    digits = 3 if binary else 4
    for pair in result["pairs"]:
        cells = []
        for metric in metrics:
            m = pair["metrics"][metric]
            if "warning" in pair or m["interval"] is None:  # too few windows for the test: the difference alone
                cells += [f"{m['difference']:+.{digits}f} (too few windows to test)", "-"]
                continue
            low, high = m["interval"]
            cells += [f"{m['difference']:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]", f"{m['p_value']:.2g}"]
        case = f" ({pair['case']})" if pair.get("case") else ""
        lines.append(f"| {pair['a']} - {pair['b']}{case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", choices=[*PAIRS, *ENSEMBLE_PAIRS], help="whose claims: the pairs compared")
    parser.add_argument("--out", required=True, type=Path, help="results JSON to write (or, with --table, to read)")
    parser.add_argument("--runs", type=Path, help="the run folders benchmarks/run.py kept (--runs)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of an existing --out file")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.out.read_text())))
        return
    if args.runs is None:
        parser.error("--runs is needed to compare (or --table to print a stored result)")
    pairs = compare_pairs(args.setting, args.runs)
    command = f"python benchmarks/paired.py {args.setting} --runs {args.runs} --out {args.out}"
    write_json(args.out, {"protocol": "paired", "setting": args.setting, "command": command, "machine": machine(),
                          "seed": None if args.setting in ENSEMBLE_PAIRS else SEED, "pairs": pairs})  # fmt: skip
    print(markdown_table(json.loads(args.out.read_text())))


if __name__ == "__main__":
    main()
