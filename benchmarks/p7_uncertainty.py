"""Protocol P7: calibration of the P1 recipes, and conformal and quantile intervals of forecasters.

    OMP_NUM_THREADS=1 python benchmarks/p7_uncertainty.py            # trains what it lacks into runs/p7
    python benchmarks/p7_uncertainty.py --report                     # the tables from the results file

1. **Calibration** of the P1 recipes' runs (MR-MoE, GRU and LSTM, 5 seeds each; the whole-stay runs of
   P6, ``runs/p6``, which are P1's recipes): test Brier and ECE (10 equal-mass bins) as trained, and after
   a temperature fitted on each run's validation split (``Estimator.calibrate``). Goal: MR-MoE's ECE after
   scaling at most 0.02.
2. **Conformal intervals** on ETTh1 (lookback 96, horizon 96; the P4 recipes of DLinear, PatchTST and
   iTransformer, seed 0): test coverage and mean width of the 80 % and 90 % intervals from each run's
   validation residuals, and from rolling calibration (each test window's intervals from the latest
   windows whose targets were known when it was made: as many as validation holds, and 240, ten days).
   Goal: 90 % intervals covering 87 % to 93 % of the test targets.
3. **Quantiles against conformal** on the five P2 domains: MoME's P2 recipe with conformal 80 % intervals
   (its quantiles 0.1, 0.5, 0.9) against the same recipe trained for those quantiles (pinball loss), by
   the CRPS approximated from the same three levels, on the original scale. Goal: the quantile model's CRPS
   below the conformal one's on most domains. Seed 0.
4. **Quantiles calibrated** (``--parts cqr``): the quantile runs of part 3, and DLinear's ETTh1 recipe (P4)
   trained for the same quantiles, with their 80 % band moved on validation until it covers 80 % there
   (conformalized quantile regression, ``--conformal quantile``): test coverage, width and CRPS of the band
   as trained and as calibrated. Seed 0.
5. **Venn-Abers** on P6's runs (``--parts venn_abers``; ``--p6-rows`` picks them, each call adding its rows:
   whole-stay runs, as part 1, or per-step runs, whose risk after every step is what a stream gives): each
   run's map made from its validation split (its stays, or one labelled step per stay), in memory
   (``Estimator.calibrate(method="venn_abers")``); test AUROC, ECE, Brier and log loss of the merged
   probability beside the raw and the temperature-scaled ones, the mean width ``p1 - p0`` of the test
   items' intervals (all, and the tenth with the highest raw risks), and the test's death rate beside the
   mean ``p0`` and ``p1``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from tsmoe import Estimator  # noqa: E402
from tsmoe.config import load_config  # noqa: E402
from tsmoe.experiments.results import machine  # noqa: E402
from tsmoe.intervals import band_metrics, conformal_widths, interval_metrics  # noqa: E402
from tsmoe.metrics import equal_mass_bins, expected_calibration_error  # noqa: E402
from tsmoe.quantile_intervals import quantile_bands, quantile_corrections, quantile_pairs  # noqa: E402

P1_ROWS = ("mrmoe", "gru", "lstm")
ETTH1 = {"dlinear": "configs/dlinear-etth1.yaml", "patchtst": "configs/patchtst-etth1.yaml",
         "itransformer": "configs/itransformer-etth1.yaml"}  # fmt: skip
DOMAINS = ("HealthUS", "HealthAFR", "SocialGood", "Energy", "Environment")
LEVELS = [0.8, 0.9]
QUANTILES = [0.1, 0.5, 0.9]


def trained(recipe: str, overrides: list[str], folder: Path) -> Estimator:
    """The run in ``folder``, trained there first if it is not (its test split scored once, as any run)."""
    if not (folder / "meta.json").exists():
        Estimator.from_config(load_config(ROOT / recipe, overrides)).fit(run_dir=folder, overwrite=folder.exists())
    return Estimator.load(folder)


def ece_floor(prob: np.ndarray, draws: int = 1000) -> dict[str, float]:
    """The ECE a perfectly calibrated model would show on this many items: labels drawn from the scaled
    probabilities themselves (``y ~ Bernoulli(p)``, seeded), scored by the same 10-bin ECE. Its mean and
    95th percentile say how low a measured ECE can be told apart from zero on one test split."""
    rng = np.random.default_rng(0)
    values = [expected_calibration_error(prob, (rng.random(len(prob)) < prob).astype(int)) for _ in range(draws)]
    return {"ece_floor_mean": float(np.mean(values)), "ece_floor_p95": float(np.percentile(values, 95))}


def calibration(p6_runs: Path, seeds: list[int]) -> dict:
    rows = {}
    for row in P1_ROWS:
        for seed in seeds:
            estimator = Estimator.load(p6_runs / f"{row}_whole_stay-s{seed}")
            before = estimator.evaluate()
            record = estimator.calibrate()  # in memory: the run folder is left as it is
            after = estimator.evaluate()
            rows[f"{row}/{seed}"] = {"temperature": record["temperature"], "auroc": before["auroc"],
                                     "brier_before": before["brier"], "ece_before": before["ece"],
                                     "brier_after": after["brier"], "ece_after": after["ece"],
                                     "auroc_after": after["auroc"],
                                     **ece_floor(estimator.predict_proba()[:, 1])}  # fmt: skip
            print(row, seed, {k: round(v, 4) for k, v in rows[f"{row}/{seed}"].items()}, flush=True)
    return rows


def venn_abers(p6_runs: Path, rows: list[str], seeds: list[int]) -> dict:
    """Part 4 (module docstring): raw, temperature and Venn-Abers scores of P6 runs' test items (stays, or
    for a per-step run every labelled step)."""
    result = {}
    for row in rows:
        for seed in seeds:
            estimator = Estimator.load(p6_runs / f"{row.replace(' ', '_')}-s{seed}")
            raw_probability = estimator.predict_proba()[:, 1]
            record = {}
            for method in ("raw", "temperature", "venn_abers"):
                if method != "raw":
                    estimator.calibrate(method=method)  # in memory: the run folder is left as it is
                scores = estimator.evaluate()
                record |= {f"{key}_{method}": scores[key] for key in ("auroc", "ece", "brier", "log_loss")}
            prepared = estimator.prepare_data()
            _, target = estimator.scored_outputs(prepared, prepared.test)
            y = (target[:, 0] if target.dim() == 2 else target).numpy().astype(float)  # per step: label, record, time
            low, high = estimator.predict_proba_interval().T
            top = equal_mass_bins(raw_probability, 10)[-1]  # the tenth of the stays with the highest risks
            width = high - low
            record |= {"width_mean": float(width.mean()), "width_top_tenth": float(width[top].mean()),
                       "rate_mean": float(y.mean()), "low_mean": float(low.mean()), "high_mean": float(high.mean()),
                       "rate_top_tenth": float(y[top].mean()), "low_top_tenth": float(low[top].mean()),
                       "high_top_tenth": float(high[top].mean())}  # fmt: skip
            result[f"{row}/{seed}"] = record
            print(row, seed, {k: round(v, 4) for k, v in record.items()}, flush=True)
    return result


def conformal_etth1(runs: Path, calibration: str = "validation", windows: int | None = None) -> dict:
    rows = {}
    for name, recipe in ETTH1.items():
        estimator = trained(recipe, ["seed=0"], runs / f"etth1-{name}")
        prepared = estimator.prepare_data()
        output, target = estimator.scored_outputs(prepared, prepared.test)
        widths, used = conformal_widths(estimator, prepared, prepared.test, LEVELS, calibration, windows)
        rows[name] = {"mse": estimator.metrics_["mse"], "calibration_windows": used,
                      **interval_metrics(output, target, LEVELS, widths)}  # fmt: skip
        print(name, calibration, json.dumps(rows[name]), flush=True)
    return rows


def quantiles_p2(runs: Path) -> dict:
    rows = {}
    for domain in DOMAINS:
        sets = [f"data.domain={domain}", "seed=0"]
        point = trained("configs/mome_reference-mome_timemmd.yaml", sets, runs / f"p2-mome-{domain}")
        prepared = point.prepare_data()
        output, target = point.scored_outputs(prepared, prepared.test)
        conformal = interval_metrics(output, target, [0.8], conformal_widths(point, prepared, prepared.test, [0.8])[0])
        quantile = trained("configs/mome_reference-mome_timemmd.yaml", [*sets, f"model.quantiles={QUANTILES}"],
                           runs / f"p2-mome-quantiles-{domain}").metrics_  # fmt: skip
        kept = ("mse", "crps", "wql", "coverage_80", "width_80")
        rows[domain] = {"conformal": {"mse": point.metrics_["mse"], **conformal},
                        "quantile": {k: quantile[k] for k in kept}}  # fmt: skip
        print(domain, json.dumps(rows[domain]), flush=True)
    return rows


def cqr(runs: Path) -> dict:
    """Part 4: each quantile run's 80 % band as trained (its test metrics) and calibrated on validation."""
    recipes = {domain: ("configs/mome_reference-mome_timemmd.yaml", [f"data.domain={domain}", "seed=0"],
                        runs / f"p2-mome-quantiles-{domain}") for domain in DOMAINS}  # part 3's runs  # fmt: skip
    recipes["ETTh1 DLinear"] = ("configs/dlinear-etth1.yaml", ["seed=0"], runs / "etth1-dlinear-quantiles")
    rows = {}
    for name, (recipe, sets, folder) in recipes.items():
        run = trained(recipe, [*sets, f"model.quantiles={QUANTILES}"], folder)
        prepared = run.prepare_data()
        forecasts, _ = run.quantile_forecasts(prepared, prepared.test)
        bands = quantile_bands(forecasts, quantile_pairs(run, [0.8]), quantile_corrections(run, [0.8]))
        rows[name] = {"trained": {k: run.metrics_[k] for k in ("mse", "crps", "coverage_80", "width_80")},
                      "calibrated": band_metrics(*run.scored_outputs(prepared, prepared.test), [0.8], *bands)}
        print(name, json.dumps(rows[name]), flush=True)
    return rows


ETTH1_PARTS = {"conformal_etth1": "validation", "rolling_etth1": "rolling",
               "rolling_etth1_240": "rolling"}  # the ETTh1 parts and their calibration  # fmt: skip
ROLLING_SHORT = 240  # windows: ten days of hourly targets, fixed in advance (not chosen on the test split)


def coverage(row: dict, level: str) -> str:
    """``coverage_<level>`` with its 95 % interval over the test windows, where the results hold one."""
    interval = row.get(f"coverage_{level}_ci")
    shown = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
    return f"{row[f'coverage_{level}']:.3f}{shown}"


def markdown_table(result: dict) -> str:
    """The three parts of P7, one table each, with the goals' verdicts."""
    cal = result.get("calibration", {})
    lines = ["| P1 recipe (5 seeds) | test AUROC | Brier | Brier, scaled | ECE | ECE, scaled | ECE of a calibrated "
             "model (mean, 95th pct.) | temperature |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in (r for r in P1_ROWS if cal):
        runs = [v for k, v in cal.items() if k.startswith(f"{row}/")]

        def cell(key: str, runs: list = runs) -> str:
            values = [r[key] for r in runs]
            return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"

        floor = (f"{statistics.fmean(r['ece_floor_mean'] for r in runs):.4f}, "
                 f"{statistics.fmean(r['ece_floor_p95'] for r in runs):.4f}")
        lines.append(f"| {row} | {cell('auroc')} | {cell('brier_before')} | {cell('brier_after')} | "
                     f"{cell('ece_before')} | {cell('ece_after')} | {floor} | {cell('temperature')} |")  # fmt: skip
    lines += venn_abers_table(result.get("venn_abers", {}))
    lines += ["", "| ETTh1, horizon 96 (seed 0) | calibration (windows) | test MSE | coverage 80 % | width 80 % | "
              "coverage 90 % | width 90 % | CRPS |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for part, calibration in ETTH1_PARTS.items():
        for name, row in result.get(part, {}).items():
            used = f" ({row['calibration_windows']})" if "calibration_windows" in row else ""
            lines.append(f"| {name} | {calibration}{used} | {row['mse']:.4f} | {coverage(row, '80')} | "
                         f"{row['width_80']:.3f} | {coverage(row, '90')} | {row['width_90']:.3f} | "
                         f"{row['crps']:.4f} |")  # fmt: skip
    lines += ["", "| P2 domain, MoME (seed 0) | conformal: MSE | coverage 80 % | CRPS | quantiles: MSE | "
              "coverage 80 % | CRPS |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for domain, row in result.get("quantiles_p2", {}).items():
        c, q = row["conformal"], row["quantile"]
        lines.append(f"| {domain} | {c['mse']:.4g} | {c['coverage_80']:.3f} | {c['crps']:.4g} | {q['mse']:.4g} | "
                     f"{q['coverage_80']:.3f} | {q['crps']:.4g} |")  # fmt: skip
    if result.get("cqr"):
        lines += ["", "| quantile run (seed 0) | test MSE | as trained: coverage 80 % | width 80 % | CRPS | "
                  "calibrated: coverage 80 % | width 80 % | CRPS |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, row in result["cqr"].items():
            t, c = row["trained"], row["calibrated"]
            lines.append(f"| {name} | {t['mse']:.4g} | {t['coverage_80']:.3f} | {t['width_80']:.4g} | {t['crps']:.4g} "
                         f"| {coverage(c, '80')} | {c['width_80']:.4g} | {c['crps']:.4g} |")  # fmt: skip
    return "\n".join(lines)


def venn_abers_table(runs: dict) -> list[str]:
    """Part 4's rows: mean ± std over each run's seeds (none: no rows)."""
    if not runs:
        return []
    lines = ["", "| P6 run (seeds) | AUROC: raw, Venn-Abers | ECE: raw, temperature, Venn-Abers | Brier: raw, "
             "temperature, Venn-Abers | log loss: raw, temperature, Venn-Abers | interval width: all, top tenth | "
             "test death rate in [mean p0, mean p1]: all, top tenth |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in dict.fromkeys(key.split("/")[0] for key in runs):
        seeds = [v for k, v in runs.items() if k.split("/")[0] == row]

        def cell(*keys: str, seeds: list = seeds) -> str:
            return ", ".join(f"{statistics.fmean(r[k] for r in seeds):.4f} ± "
                             f"{statistics.stdev(r[k] for r in seeds) if len(seeds) > 1 else 0:.4f}"
                             for k in keys)  # fmt: skip

        def bracket(part: str, seeds: list = seeds) -> str:
            mean = {k: statistics.fmean(r[f"{k}{part}"] for r in seeds) for k in ("low", "rate", "high")}
            return f"{mean['rate']:.3f} in [{mean['low']:.3f}, {mean['high']:.3f}]"

        methods = ("raw", "temperature", "venn_abers")
        lines.append(f"| {row} ({len(seeds)}) | {cell('auroc_raw', 'auroc_venn_abers')} | "
                     f"{cell(*(f'ece_{m}' for m in methods))} | {cell(*(f'brier_{m}' for m in methods))} | "
                     f"{cell(*(f'log_loss_{m}' for m in methods))} | {cell('width_mean', 'width_top_tenth')} | "
                     f"{bracket('_mean')}, {bracket('_top_tenth')} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/p7-uncertainty.json")
    parser.add_argument("--p6-runs", default="runs/p6", help="P6's whole-stay runs (P1's recipes), 5 seeds each")
    parser.add_argument("--runs", default="runs/p7")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--parts", nargs="+",
                        default=["calibration", *ETTH1_PARTS, "quantiles_p2", "cqr", "venn_abers"])
    parser.add_argument("--p6-rows", nargs="+", default=[f"{row} whole stay" for row in P1_ROWS],
                        help="P6's runs for venn_abers: 'mrmoe whole stay', 'mrmoe per step', ...")  # fmt: skip
    parser.add_argument("--report", action="store_true", help="print the tables of the stored results")
    args = parser.parse_args()
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {"protocol": "P7"}
    if not args.report:
        runs = Path(args.runs)
        for part in args.parts:
            runs_of_part = {"calibration": lambda: calibration(Path(args.p6_runs), args.seeds),
                            "conformal_etth1": lambda: conformal_etth1(runs),
                            "rolling_etth1": lambda: conformal_etth1(runs, "rolling"),
                            "rolling_etth1_240": lambda: conformal_etth1(runs, "rolling", ROLLING_SHORT),
                            "quantiles_p2": lambda: quantiles_p2(runs),
                            "cqr": lambda: cqr(runs),
                            "venn_abers": lambda: venn_abers(Path(args.p6_runs), args.p6_rows, args.seeds),
                            }[part]()  # fmt: skip
            # the Venn-Abers part gathers its rows over calls (each row with the seeds its runs have)
            result[part] = {**result.get(part, {}), **runs_of_part} if part == "venn_abers" else runs_of_part
            result["machine"] = machine()  # the last call's; each part's own below
            command = "python benchmarks/p7_uncertainty.py " + shlex.join(sys.argv[1:])
            result["command"] = command
            commands = result.setdefault("commands", {})
            known = commands[part].split("; ") if part == "venn_abers" and part in commands else []
            commands[part] = "; ".join(dict.fromkeys([*known, command]))  # each call that made its rows
            result.setdefault("machines", {})[part] = machine()["cpu"]
            out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result))


if __name__ == "__main__":
    main()
