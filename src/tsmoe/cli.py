"""The ``tsmoe`` command: wires config -> data -> model -> trainer -> run folder, and nothing more.

tsmoe train CONFIG --out RUN_DIR [--set key=value ...]
tsmoe train --resume RUN_DIR
tsmoe evaluate RUN_DIR [--set data.root=DIR ...] [--split default|all] [--part test|validation] [--intervals 0.9]
               [--calibration validation|rolling] [--calibration-windows N] [--conformal residual|quantile]
tsmoe evaluate RUN_DIR RUN_DIR ... [--out ENSEMBLE.json [--overwrite]]   (a deep ensemble: mean probabilities or
               forecasts)
tsmoe predict RUN_DIR [RUN_DIR ...] INPUT -o OUTPUT.csv [--overwrite] [--set data.KEY=VALUE ...] [--per-step]
              [--every H [--align clock]] [--intervals 0.9] [--calibration validation|rolling] [--calibration-windows N]
              [--conformal residual|quantile]
tsmoe stream RUN_DIR [RUN_DIR ...] INPUT|- [-o OUTPUT.csv [--overwrite]] [--interval] [--set data.static=FILE]
             [--skip-bad-rows]
tsmoe report RUN_DIR [--set data.root=FILE]
tsmoe compare RUN_A RUN_B [--part test|validation] [--json]      (a side may be RUN+RUN+...: an ensemble)
tsmoe calibrate RUN_DIR [--method temperature|venn_abers]
tsmoe tune CONFIG --space SPACE --trials N --out DIR [--workers K] [--storage URL] [--study NAME] [--set ...]
tsmoe datasets
tsmoe models
tsmoe demo [--out RUN_DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from tsmoe.errors import ConfigError, TrainingInterrupted, TsmoeError
from tsmoe.paths import SHIPPED_CONFIGS

log = logging.getLogger("tsmoe")


def _number(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4f}"


def _print_metrics(metrics: dict[str, float | list], title: str) -> None:
    """One metric per line; a metric with an interval (``auroc_ci``) is shown beside it: ``0.8412 [0.80, 0.88]``."""
    print(title)
    shown = {k: v for k, v in metrics.items() if not isinstance(v, list)}
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        interval = metrics.get(f"{key}_ci")
        extra = f"  [{_number(interval[0])}, {_number(interval[1])}] (95 % bootstrap)" if interval else ""
        print(f"  {key:<{width}}  {_number(value)}{extra}")


def _summary_table(estimator, metrics: dict[str, float], where: str, split: str) -> str:
    """One readable table: the run, the data it was scored on, and the metrics as one row (early prediction's
    metrics at each time, ``auroc_at_24``, ..., are in the list above it and the metrics file only)."""
    meta = estimator.meta_
    cells = {
        "model": estimator.config.model["name"],
        "data": f"{estimator.config.data['name']} ({where}, split {split})",
        "params": f"{meta['n_parameters']:,}",
        "best epoch": str(meta["best_epoch"]),
        **{name: _number(v) for name, v in metrics.items() if not isinstance(v, list) and "_at_" not in name},
    }
    widths = {k: max(len(k), len(v)) for k, v in cells.items()}
    line = "+" + "+".join("-" * (w + 2) for w in widths.values()) + "+"
    head = "|" + "|".join(f" {k:<{widths[k]}} " for k in cells) + "|"
    row = "|" + "|".join(f" {v:<{widths[k]}} " for k, v in cells.items()) + "|"
    return "\n".join([line, head, line, row, line])


def cmd_train(args: argparse.Namespace) -> int:
    from tsmoe.analysis.callbacks import SPECTRAL_FILE, SpectralTracker
    from tsmoe.config import load_config
    from tsmoe.estimator import Estimator

    if args.resume is not None:
        if args.config or args.out or args.set:
            raise TsmoeError("--resume RUN_DIR takes no config, --out or --set: the run folder's config.yaml is used")
        out = Path(args.resume)
        estimator = Estimator.resume(out, callbacks=[SpectralTracker(out / SPECTRAL_FILE)])
        config = estimator.config
    else:
        if not args.config or not args.out:
            raise TsmoeError("train needs a CONFIG and --out RUN_DIR (or --resume RUN_DIR)")
        config = load_config(args.config, args.set)
        out = Path(args.out)
        estimator = Estimator.from_config(config).fit(
            run_dir=out, callbacks=[SpectralTracker(out / SPECTRAL_FILE)], overwrite=args.overwrite
        )
    if getattr(estimator, "is_global_zero_", True):
        meta = estimator.meta_
        print(
            f"trained {config.model['name']} on {config.data['name']}: best epoch {meta['best_epoch']} "
            f"({meta['monitor']} = {meta['best_score']:.4f}), {meta['train_seconds']:.1f} s, "
            f"{meta['n_parameters']:,} parameters"
        )
        if "refit" in meta:
            refit = meta["refit"]
            print(
                f"refit on {refit['items']:,} training + validation items for {refit['epochs']} epochs "
                f"({refit['seconds']:.1f} s); the saved model is the refit one"
            )
        _print_metrics(estimator.metrics_, f"test metrics (written to {out / 'metrics.json'}):")
    return 0


def _interval_levels(levels: list[float] | None) -> list[float]:
    """The checked ``--intervals`` levels (none: ``[]``)."""
    if not levels:
        return []
    from tsmoe.intervals import check_levels

    return check_levels(levels)


def _check_calibration(args: argparse.Namespace, levels: list[float]) -> None:
    """``--calibration`` and ``--calibration-windows`` as :func:`tsmoe.intervals.check_calibration` allows."""
    from tsmoe.intervals import check_calibration
    from tsmoe.quantile_intervals import check_conformal

    check_calibration(levels, args.calibration, args.calibration_windows)
    check_conformal(args.conformal, levels, args.calibration)


def _interval_options(parser: argparse.ArgumentParser, intervals: str, rolling: str, windows: str) -> None:
    """``--intervals``, ``--calibration`` and ``--calibration-windows``, with what each command's rolling means."""
    parser.add_argument("--intervals", type=float, nargs="+", metavar="LEVEL", help=intervals)
    parser.add_argument(
        "--calibration", choices=["validation", "rolling"], default="validation",
        help=f"the errors the intervals come from: the run's validation split's (default), or, rolling, {rolling}",
    )  # fmt: skip
    parser.add_argument("--calibration-windows", type=int, metavar="N", help=f"rolling calibration: {windows}")
    parser.add_argument(
        "--conformal", choices=["residual", "quantile"], default="residual",
        help="what is calibrated: the median forecast's residuals, an interval of even width around it (default); "
        "or quantile, a run trained with model.quantiles: its own band of quantiles, moved out or in until it "
        "covers the level on validation (conformalized quantile regression)",
    )  # fmt: skip


def _data_overrides(pairs: list[str]) -> dict:
    from tsmoe.config import apply_overrides

    raw = apply_overrides({}, pairs)
    extra = set(raw) - {"data"}
    if extra:
        raise TsmoeError(f"evaluate/predict/report take only data.* overrides, got {sorted(extra)}")
    return raw.get("data", {})


def _ensemble_table(names: list[str], result: dict) -> str:
    """Members, their mean +- std, and the ensemble, one row each (``-`` for what only the ensemble has: its
    intervals' coverage and width)."""
    from statistics import fmean, stdev

    keys = [key for key, value in result["ensemble"].items() if not isinstance(value, list)]
    members = result["members"]
    rows = [[name, *(f"{m[k]:.4f}" if k in m else "-" for k in keys)] for name, m in zip(names, members, strict=True)]
    columns = [[m[k] for m in members] if all(k in m for m in members) else None for k in keys]
    rows.append(["members, mean +- std", *(f"{fmean(c):.4f} +- {stdev(c):.4f}" if c else "-" for c in columns)])
    rows.append([f"ensemble of {len(names)}", *(f"{result['ensemble'][k]:.4f}" for k in keys)])
    header = ["run", *keys]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def render(row: list[str]) -> str:
        return "|" + "|".join(f" {cell:<{w}} " for cell, w in zip(row, widths, strict=True)) + "|"

    return "\n".join([line, render(header), line, *map(render, rows), line])


def cmd_evaluate_ensemble(args: argparse.Namespace, overrides: dict, split: str) -> int:
    from tsmoe import io as run_io
    from tsmoe.ensemble import Ensemble
    from tsmoe.output_files import check_replaceable

    if not args.no_plots:
        log.info("an ensemble writes no plots; evaluate one run for its gate and attention plots")
    ensemble = Ensemble.load(args.run_dir)
    result = ensemble.evaluate(
        split=split, data_overrides=overrides, part=args.part, intervals=args.intervals,
        calibration=args.calibration, calibration_windows=args.calibration_windows,
    )  # fmt: skip
    where = overrides.get("root") or overrides.get("observations") or "the training data"
    print(f"ensemble of {len(args.run_dir)} runs on {where} (split '{split}', {args.part} part):")
    print(_ensemble_table(args.run_dir, result))
    if args.out:
        record = {"runs": args.run_dir, "split": split, "part": args.part, "data": overrides, **result}
        check_replaceable(Path(args.out), None, args.overwrite)
        run_io.write_json(Path(args.out), record)
        print(f"written to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tsmoe import io as run_io
    from tsmoe.analysis.plots import write_interpretation_plots
    from tsmoe.estimator import Estimator

    overrides = _data_overrides(args.set)
    levels = _interval_levels(args.intervals)
    _check_calibration(args, levels)
    # other data (another root, another table of observations) is scored whole unless --split says otherwise
    split = args.split or ("all" if {"root", "observations"} & set(overrides) else "default")
    if split == "all" and args.part == "validation":
        raise TsmoeError("with split 'all' every item is scored as test; there is no validation part to score")
    if len(args.run_dir) > 1:
        if args.forecasts:
            raise ConfigError("--forecasts writes one run's windows; an ensemble's mean forecasts come from tsmoe "
                              "predict A B INPUT (or evaluate each run with --forecasts)")  # fmt: skip
        if levels and args.conformal == "quantile":
            raise ConfigError("--conformal quantile calibrates one run's own quantiles; several runs take the default")
        return cmd_evaluate_ensemble(args, overrides, split)
    if args.out:
        raise TsmoeError("--out is for an ensemble (several runs); one run writes its metrics into its own folder")
    run_dir = Path(args.run_dir[0])
    estimator = Estimator.load(run_dir)
    estimator.check_part_unseen(args.part, f"run '{run_dir}'")
    if args.forecasts and estimator.meta_["task"] != "forecast":
        raise ConfigError(f"--forecasts writes a forecaster's windows; this run's task is {estimator.meta_['task']} "
                          "(tsmoe predict RUN INPUT --per-step writes a classifier's predictions)")  # fmt: skip
    prepared = estimator.prepare_data(split=split, data_overrides=overrides)
    dataset = prepared.test if args.part == "test" else prepared.val
    if args.forecasts:  # refused before anything is scored
        _check_forecasts_file(Path(args.forecasts), estimator, dataset, overrides, args.overwrite)
    calibrated: dict = {}
    if levels and args.conformal == "quantile":  # the run's quantile band, calibrated on its validation split
        from tsmoe.quantile_intervals import quantile_corrections

        corrections = quantile_corrections(estimator, levels)
        calibrated = {"calibration": "validation", "conformal": "quantile"}
    elif levels:  # conformal intervals from the run's own held-out residuals (what is refused, before scoring)
        from tsmoe.intervals import conformal_widths

        widths, used = conformal_widths(
            estimator, prepared, dataset, levels, args.calibration, args.calibration_windows
        )
        calibrated = {"calibration": args.calibration, "calibration_windows": used}
    metrics = estimator.score_part(prepared, dataset)
    if levels and args.conformal == "quantile":
        from tsmoe.intervals import band_metrics
        from tsmoe.quantile_intervals import quantile_bands, quantile_pairs

        bands = quantile_bands(estimator.quantile_forecasts(prepared, dataset)[0], quantile_pairs(estimator, levels),
                               corrections)  # fmt: skip
        metrics |= band_metrics(*estimator.scored_outputs(prepared, dataset), levels, *bands)
    elif levels:
        from tsmoe.intervals import interval_metrics

        metrics |= interval_metrics(*estimator.scored_outputs(prepared, dataset), levels, widths)
    if args.forecasts:
        from tsmoe.backtest import backtest_part
        from tsmoe.output_files import write_table

        table = backtest_part(estimator, prepared, dataset, levels, args.calibration, args.calibration_windows,
                              args.conformal)  # fmt: skip
        write_table(Path(args.forecasts), table)
        print(f"wrote {len(table)} rows ({len(table) // max(table['step'].max(), 1)} windows) to {args.forecasts}")
    where = overrides.get("root") or overrides.get("observations") or "the training data"
    # the training data's own test split rewrites metrics.json in the form `tsmoe train` wrote it (the same
    # numbers); any other split, part or data goes beside it, recording what was scored
    on_training_test = not overrides and split == "default" and args.part == "test" and not levels
    name = "metrics.json" if on_training_test else "metrics-eval.json"
    record = {"split": split, "part": args.part, "data": overrides, **calibrated, **metrics}
    run_io.write_json(run_dir / name, metrics if on_training_test else record)
    _print_metrics(
        metrics,
        f"{estimator.config.model['name']} on {where} (split '{split}', {args.part} part), "
        f"written to {run_dir / name}:",
    )
    if not args.no_plots:
        for path in write_interpretation_plots(estimator.model_, prepared, run_dir / "plots"):
            print(f"plot: {path}")
    print(_summary_table(estimator, metrics, where, split))
    return 0


def _check_forecasts_file(out: Path, estimator: Any, dataset: Any, overrides: dict, overwrite: bool) -> None:
    """``evaluate --forecasts``: a path that may be written (not a folder, nor a file the data come from, even
    with ``overwrite``; a table of forecasts written before, or ``overwrite``), checked before anything is scored."""
    from tsmoe.backtest import key_names
    from tsmoe.output_files import check_output_file, check_replaceable

    named = {**estimator.config.data, **overrides}.values()  # the data's files: root, observations, ...
    check_output_file(out, [Path(value) for value in named if isinstance(value, str) and Path(value).is_file()],
                      "--forecasts")  # fmt: skip
    targets = [estimator.meta_["channel_names"][c] for c in estimator.meta_["target_channels"]] or ["value"]
    check_replaceable(out, [*key_names(estimator, dataset), *targets], overwrite)


def write_run_report(run_dir: str | Path, data_overrides: dict | None = None) -> Path:
    """Load a saved run and write its ``report.html`` (read-outs on its own test split, of its data set or of
    the data ``data_overrides`` name, such as the file a run trained on a frame came from); the page's path."""
    from tsmoe.analysis.report import write_report
    from tsmoe.estimator import Estimator

    run = Estimator.load(run_dir)
    prepared = run.prepare_data(data_overrides=data_overrides)
    return write_report(run_dir, run.model_, prepared, run.config, run.meta_, run.metrics_)


def cmd_report(args: argparse.Namespace) -> int:
    print(f"report: {write_run_report(args.run_dir, _data_overrides(args.set))}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tsmoe.ensemble import Ensemble
    from tsmoe.estimator import Estimator
    from tsmoe.forecast import key_columns
    from tsmoe.output_files import check_output_file, check_replaceable, write_table
    from tsmoe.predict import check_clock, mean_prediction, predict_table

    *runs, last = args.paths
    out = Path(args.output)
    check_output_file(out, [Path(p) for p in args.paths])  # before anything is read
    overrides = _data_overrides(args.set)
    if args.every is not None:  # a clock reads the per-step predictions
        check_clock(args.every)
        args.per_step = True
    elif args.align != "start":
        raise ConfigError("--align sets where --every's clock starts: give --every H too")
    levels = _interval_levels(args.intervals)
    if levels and args.per_step:
        raise ConfigError("--intervals are for forecasts; --per-step predicts records")
    _check_calibration(args, levels)
    if args.calibration == "rolling" and args.after_data:
        raise ConfigError("--calibration rolling calibrates on the input's own recent windows; --after-data has none")
    if args.per_step and (not runs or args.after_data):
        raise ConfigError("--per-step takes runs and an input table (RUN [RUN ...] INPUT)")
    if not args.after_data and not runs:
        raise ConfigError("tsmoe predict needs a run folder and an input (RUN INPUT), or --after-data")
    run_paths = args.paths if args.after_data else runs  # with --after-data every path is a run
    ensemble = Ensemble.load(run_paths) if len(run_paths) > 1 else None
    estimators = ensemble.members if ensemble else [Estimator.load(run_paths[0])]
    if levels and ensemble and args.conformal == "quantile":
        raise ConfigError("--conformal quantile calibrates one run's own quantiles; several runs take the default")
    if levels and ensemble:  # refused before any forecast: intervals of a mean need its members' errors
        ensemble.check_interval_members(args.calibration)
    elif levels and estimators[0].meta_["task"] != "forecast":  # before predicting, not after
        raise ConfigError(f"conformal intervals are for forecasters; this run's task is {estimators[0].meta_['task']}")
    elif levels and args.conformal == "quantile":
        from tsmoe.quantile_intervals import quantile_pairs

        quantile_pairs(estimators[0], levels)  # the run has each level's two quantiles, before predicting
    if args.after_data:  # forecast what follows each run's own data set
        frames = [estimator.forecast() for estimator in estimators]
        frame = mean_prediction(frames, estimators[0].meta_, "--after-data", key_columns(estimators[0]))
    else:  # one run, or an ensemble's mean; per entity or after every step
        frame = predict_table(estimators, Path(last), args.per_step, args.every, args.align, overrides)
    if levels and args.conformal == "quantile":  # the run's own band, calibrated on its validation split
        from tsmoe.quantile_intervals import with_quantile_interval_columns

        frame = with_quantile_interval_columns(frame, estimators[0], levels)
    elif levels:
        from tsmoe.intervals import conformal_quantiles, with_interval_columns
        from tsmoe.predict import rolling_interval_widths

        by_series = widths = None
        if args.calibration == "rolling":  # each series' widths from its own latest known errors in the input
            by_series = rolling_interval_widths(estimators, Path(last), levels, args.calibration_windows)
        elif ensemble:  # the mean forecast's errors on the members' validation split
            widths = conformal_quantiles(ensemble.validation_residuals(original=True), levels)
        frame = with_interval_columns(frame, estimators[0], levels, by_series, widths)
    check_replaceable(out, [str(column) for column in frame.columns], args.overwrite)
    write_table(out, frame)
    print(f"wrote {len(frame)} rows to {out}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    """Rows of observations read a line at a time (a file, or ``-``: standard input, a pipe), each answered by
    a line of predictions as soon as it is read (:mod:`tsmoe.stream_rows`)."""
    from contextlib import nullcontext

    from tsmoe.data.table_files import is_parquet
    from tsmoe.ensemble import Ensemble
    from tsmoe.estimator import Estimator
    from tsmoe.output_files import check_output_file, check_replaceable
    from tsmoe.stream_rows import answer_columns, layout_of, static_lookup, stream_rows

    *runs, source = args.paths
    if not runs:
        raise ConfigError("tsmoe stream needs run folders and an input (RUN [RUN ...] INPUT; - reads standard input)")
    overrides = _data_overrides(args.set)
    if set(overrides) - {"static"}:
        raise ConfigError(f"tsmoe stream takes --set data.static=FILE only, got {sorted(overrides)}")
    if source != "-" and not Path(source).is_file():
        raise ConfigError(f"input '{source}' is not a file (give a CSV file, or - to read standard input)")
    if source != "-":
        from tsmoe.data.csv_dialect import refuse_other_formats

        refuse_other_formats(Path(source))
    if args.output is not None:
        check_output_file(Path(args.output), [Path(source)] if source != "-" else [])
        if is_parquet(Path(args.output)):
            raise ConfigError(
                "tsmoe stream writes CSV, a line per answer as it comes (Parquet is written whole): give -o a .csv "
                "path, or write Parquet with tsmoe predict --per-step"
            )
    estimator = Estimator.load(runs[0])
    if estimator.config.data["name"] != "irregular":
        raise ConfigError(
            f"tsmoe stream reads rows of a table of observations: a run on data set 'irregular'; {runs[0]} is on "
            f"'{estimator.config.data['name']}' (from Python, Estimator.stream() streams any MR-MoE run)"
        )
    stream = Ensemble.load(runs).stream(args.interval) if len(runs) > 1 else estimator.stream(args.interval)
    layout = layout_of(estimator)
    columns = answer_columns(estimator.meta_, args.interval)
    static = static_lookup(overrides.get("static"), layout.id_col)
    if args.output is not None:  # before open() empties it
        check_replaceable(Path(args.output), [layout.id_col, layout.time_col, *columns], args.overwrite)
    with (  # standard input and output are the caller's: used, not closed
        nullcontext(sys.stdin) if source == "-" else open(source, newline="", encoding="utf-8-sig") as lines,
        nullcontext(sys.stdout) if args.output is None else open(args.output, "w", newline="") as out,
    ):
        try:
            counts = stream_rows(stream, lines, out, layout, columns, static, args.skip_bad_rows)
        except BrokenPipeError:  # the reader went away (| head): stop quietly, as a filter does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 0
    print(f"streamed {counts['answered']} answers for {counts['rows']} rows ({counts['without a reading']} without "
          f"a reading, {counts['skipped']} skipped)", file=sys.stderr)  # fmt: skip
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Calibrate a trained classifier on its validation split (a temperature, or a Venn-Abers map) and keep it
    in the run."""
    from tsmoe.estimator import Estimator

    record = Estimator.load(args.run_dir).calibrate(args.run_dir, args.method)
    fitted = f"temperature {record['temperature']:.4f}" if args.method == "temperature" else "Venn-Abers map"
    print(f"{fitted} fitted on the validation split of {args.run_dir}: ECE "
          f"{record['validation_ece_before']:.4f} -> {record['validation_ece_after']:.4f}, log loss "
          f"{record['validation_log_loss_before']:.4f} -> {record['validation_log_loss_after']:.4f}")  # fmt: skip
    if args.method == "venn_abers":
        print("(on the items the map was made from; tsmoe predict now adds probability_low and probability_high)")
    print(f"tsmoe predict and tsmoe evaluate apply it from now on (tsmoe evaluate {args.run_dir} rescores the test)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Two runs on the same items: each metric's difference, its interval and p-value (DeLong, paired
    bootstrap, Diebold-Mariano)."""
    import json

    from tsmoe.analysis.compare import compare_runs, comparison_table

    result = compare_runs(args.run_a, args.run_b, args.part)
    print(json.dumps(result, indent=2) if args.json else comparison_table(result))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """A hyperparameter search on Optuna over a YAML space; the same command continues a stopped study."""
    from tsmoe.tuning import check_installed

    check_installed()
    from tsmoe.tuning.tune import run_study, settings_for, summary

    command = "tsmoe " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["tune"] else "tsmoe tune (from Python)"
    settings = settings_for(
        args.config, args.space, args.trials, args.out, study=args.study, storage=args.storage,
        workers=args.workers, objectives=args.objectives, overrides=args.set, heartbeat=args.heartbeat,
        command=command,
    )  # fmt: skip
    print(f"study '{settings.study_name}' in {settings.storage_url}: {settings.trials} trials, "
          f"{settings.workers} worker(s), objective(s) {', '.join(settings.objectives)} (validation)")  # fmt: skip
    print(summary(run_study(settings)))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from tsmoe.data.registry import shipped_summary
    from tsmoe.paths import shipped_data_dir

    print(f"shipped data in {shipped_data_dir()}:")
    for name, description, size in shipped_summary():
        print(f"  {name:<15} {size / 2**20:6.1f} MiB  {description}")
    print("  csv             (yours)     long-format series, CSV or Parquet: --set data.name=csv --set data.root=FILE")
    print("  irregular       (yours)     a table of irregular observations (id, time, variable, value) and labels:")
    print(
        "                              tsmoe train configs/mrmoe-irregular.yaml --set data.observations=FILE "
        "--set data.labels=FILE"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from tsmoe.models import MODELS, get_model

    get_model("lstm")
    print(f"  {'name':<18} {'reads':<16} {'tasks':<49} description")
    for name, entry in sorted(MODELS.items()):
        kinds = ",".join(entry.input_kinds)
        tasks = ",".join(sorted({task.removesuffix("_per_step") for task in entry.tasks}))
        if any(task.endswith("_per_step") for task in entry.tasks):
            tasks += " (and per step)"
        print(f"  {name:<18} {kinds:<16} {tasks:<49} {entry.description}")
    return 0


DEMO_RUNS = (  # (recipe, run folder, overrides that keep the demo short)
    ("mome-mome_timemmd.yaml", "mome", []),  # the whole P2 recipe, refit included: seconds once texts are encoded
    ("mrmoe-physionet2012.yaml", "mrmoe", ["training.max_epochs=3"]),  # 3 of the P1 recipe's 40 epochs
)


def cmd_demo(args: argparse.Namespace) -> int:
    """Train both systems on shipped data: MoME on Time-MMD HealthUS with its text (the frozen MiniLM), and a
    3-epoch MR-MoE on PhysioNet 2012. Each is reloaded from its files, scored, plotted and reported.
    ``--set`` applies to both recipes."""
    from tsmoe.analysis.callbacks import SPECTRAL_FILE, SpectralTracker
    from tsmoe.analysis.plots import write_interpretation_plots
    from tsmoe.analysis.report import write_report
    from tsmoe.config import load_config
    from tsmoe.estimator import Estimator

    for recipe, folder, short in DEMO_RUNS:
        config = load_config(SHIPPED_CONFIGS / recipe, [*short, *args.set])
        out = Path(args.out) / folder
        print(" ".join(["demo: tsmoe train", f"configs/{recipe}", *[f"--set {s}" for s in short], f"--out {out}"]))
        estimator = Estimator.from_config(config).fit(
            run_dir=out, callbacks=[SpectralTracker(out / SPECTRAL_FILE)], overwrite=args.overwrite
        )
        _print_metrics(estimator.metrics_, f"{config.model['name']} test metrics:")
        reloaded = Estimator.load(out)
        prepared = reloaded.prepare_data()
        metric, value = next(iter(reloaded.score(prepared).items()))
        trained = estimator.metrics_[metric]
        if abs(value - trained) > 1e-6:
            raise TsmoeError(f"the run reloaded from {out} scores {metric} {value}, not the {trained} it trained to")
        print(f"reloaded from {out}: {metric} {value:.4f} (same weights, same numbers)")
        for path in write_interpretation_plots(reloaded.model_, prepared, out / "plots"):
            print(f"plot: {path}")
        page = write_report(out, reloaded.model_, prepared, reloaded.config, reloaded.meta_, reloaded.metrics_)
        print(f"report: {page}")
    print("next: tsmoe train configs/mrmoe-physionet2012.yaml --out runs/mrmoe   (the whole P1 recipe)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsmoe", description="Mixture-of-experts models of time series.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show info logs")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a YAML recipe")
    train.add_argument("config", nargs="?")
    train.add_argument("--out", help="run folder to write")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train.add_argument("--overwrite", action="store_true", help="replace the run in a used run folder")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="score a saved run (or the ensemble of several), on its test split or on other data"
    )
    evaluate.add_argument("run_dir", nargs="+", help="one run folder, or several to score as an ensemble")
    evaluate.add_argument(
        "--part",
        choices=["test", "validation"],
        default="test",
        help="the split's part to score: test (default), or validation (to choose between runs without the test)",
    )
    evaluate.add_argument("--out", help="ensembles: a JSON file for the members' and the ensemble's metrics")
    evaluate.add_argument(
        "--forecasts",
        metavar="FILE",
        help="forecasters: every scored window's forecast beside what came, a row per window and step (<id>, cutoff, "
        "<time>, step, <target>, <target>_actual, quantiles, intervals), as CSV or Parquet: a backtest",
    )
    evaluate.add_argument(
        "--overwrite", action="store_true", help="replace --out or --forecasts even if it holds something else"
    )
    evaluate.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE")
    evaluate.add_argument(
        "--split",
        choices=["default", "all"],
        default=None,
        help="default: the run's test split; all: every item (the default when data.root or data.observations is set)",
    )
    evaluate.add_argument("--no-plots", action="store_true", help="skip the gate/attention plots")
    _interval_options(
        evaluate,
        "forecasters: conformal intervals at these levels (e.g. 0.8 0.9): coverage_80, width_80, crps, wql",
        "each window's latest windows whose targets were known when it was made (validation's, then the scored "
        "part's own)",
        "how many of the latest windows (default: all the validation split holds)",
    )
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="predict from a file or folder with a saved run (or an ensemble)")
    predict.add_argument(
        "paths",
        nargs="+",
        metavar="RUN [RUN ...] INPUT",
        help="one run folder, or several (their mean prediction), then the input: a table of observations (a run "
        "on data set 'irregular'); a PhysioNet-format folder (a run on PhysioNet 2012); a CSV of series, long or "
        "wide, with a 'text' column for a model that reads text; or a CSV of windows, 'input_seq' (+ 'text'), one "
        "per row (forecasters). With --after-data, runs only",
    )
    predict.add_argument(
        "--after-data",
        action="store_true",
        help="forecast the horizon after each series of the run's own data set (raw Time-MMD: with its reports)",
    )
    predict.add_argument("-o", "--output", required=True, help="CSV to write (Parquet where it ends .parquet or .pq)")
    predict.add_argument(
        "--overwrite", action="store_true", help="replace -o even if it holds another table (not these predictions)"
    )
    _interval_options(
        predict,
        "forecasters: conformal intervals at these levels: columns <target>_lo_90, <target>_hi_90, ...",
        "each series' own latest windows in the input whose targets it holds",
        "how many of each series' latest windows (default: as many as the shortest holds)",
    )
    predict.add_argument(
        "--per-step",
        action="store_true",
        help="irregular data: the prediction after every step of every record (what was known then)",
    )
    predict.add_argument(
        "--every",
        type=float,
        metavar="H",
        help="irregular data: the per-step predictions on a clock, a row per record at every H of the run's time "
        "unit (e.g. 1: every hour) holding the prediction after the latest step by then; implies --per-step",
    )
    predict.add_argument(
        "--align",
        choices=("start", "clock"),
        default="start",
        help="--every's times: start (default), multiples of H from each record's start; clock, multiples of H "
        "of the table's own times (every hour on the hour, UTC, for timestamps)",
    )
    predict.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="data.KEY=VALUE",
        help="runs on a table of observations: how to read INPUT (e.g. data.static=FILE, data.until=6)",
    )
    predict.set_defaults(func=cmd_predict)

    stream = sub.add_parser(
        "stream", help="predict after every row of observations as it is read (a file, or - for a pipe)"
    )
    stream.add_argument(
        "paths",
        nargs="+",
        metavar="RUN [RUN ...] INPUT",
        help="one run folder on data set 'irregular', or several (their mean), then a CSV of observations in the "
        "run's columns and layout, or - to read standard input (e.g. tail -f log.csv | tsmoe stream RUN -)",
    )
    stream.add_argument("-o", "--output", help="CSV to write (default: standard output, a line per answer)")
    stream.add_argument(
        "--overwrite", action="store_true", help="replace -o even if it holds another table (not these answers)"
    )
    stream.add_argument(
        "--interval", action="store_true", help="a Venn-Abers run: probability_low and probability_high too"
    )
    stream.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="skip a row the stream refuses (a time going back, an unknown variable), with a warning naming its "
        "line, instead of stopping",
    )
    stream.add_argument(
        "--set", action="append", default=[], metavar="data.static=FILE", help="the entities' static descriptors"
    )
    stream.set_defaults(func=cmd_stream)

    report = sub.add_parser("report", help="write report.html: training, experts, routing, attention")
    report.add_argument("run_dir")
    report.add_argument(
        "--set", action="append", default=[], metavar="data.KEY=VALUE",
        help="where the run's data are now (e.g. data.root=FILE for a run trained on a frame); its test split is read",
    )  # fmt: skip
    report.set_defaults(func=cmd_report)

    calibrate = sub.add_parser("calibrate", help="calibrate a trained classifier's risks on its validation split")
    calibrate.add_argument("run_dir")
    calibrate.add_argument(
        "--method",
        choices=["temperature", "venn_abers"],
        default="temperature",
        help="one temperature for the logits (default), or a Venn-Abers map: binary risks with an interval",
    )
    calibrate.set_defaults(func=cmd_calibrate)

    compare = sub.add_parser("compare", help="two runs on the same items: differences, intervals, p-values")
    side = "a run folder, or several joined by + (runs/a-s0+runs/a-s1): their deep ensemble"
    compare.add_argument("run_a", help=side)
    compare.add_argument("run_b", help=side)
    compare.add_argument("--part", choices=["test", "validation"], default="test")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(func=cmd_compare)

    tune = sub.add_parser("tune", help="search hyperparameters on Optuna over a YAML space (validation only)")
    tune.add_argument("config", help="the recipe to tune (a YAML file or a shipped recipe's name)")
    tune.add_argument("--space", required=True, help="the search space (YAML; configs/spaces/ has examples)")
    tune.add_argument("--trials", type=int, required=True, help="trials to complete or prune, over all sittings")
    tune.add_argument("--out", required=True, help="the study's folder: trials/, study.db, best.yaml, tune.html")
    tune.add_argument("--study", help="the study's name (default: the --out folder's name)")
    tune.add_argument("--storage", help="an Optuna database URL shared by several machines (default: DIR/study.db)")
    tune.add_argument("--workers", type=int, default=1, help="local worker processes on the study (default 1)")
    tune.add_argument(
        "--objectives", nargs="+", metavar="NAME",
        help="several objectives (a Pareto front), e.g. val_auroc seconds_per_epoch; default: the run's monitor",
    )  # fmt: skip
    tune.add_argument("--heartbeat", type=int, default=60, help="seconds; a silent trial is redrawn after two")
    tune.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key")
    tune.set_defaults(func=cmd_tune)

    sub.add_parser("datasets", help="list the shipped data sets").set_defaults(func=cmd_datasets)
    sub.add_parser("models", help="list the registered models").set_defaults(func=cmd_models)

    demo = sub.add_parser("demo", help="train, reload and report MoME and a short MR-MoE on shipped data")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--overwrite", action="store_true", help="replace the demo's runs in a used --out")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except TrainingInterrupted as error:  # Ctrl-C: the shell's convention, 128 + SIGINT
        print(f"tsmoe: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("tsmoe: interrupted", file=sys.stderr)
        return 130
    except TsmoeError as error:
        print(f"tsmoe: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a folder that cannot be made or written (permissions, a read-only disk, ...)
        where = f"'{error.filename}'" if error.filename else "a file"
        print(f"tsmoe: error: cannot write {where}: {error.strerror or error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
