"""``tune.html``: one self-contained page for a study (plots inline as PNG): the optimisation history, the
per-epoch curves that pruning read, parameter importances (fANOVA), slice and parallel-coordinate plots,
the Pareto front of a multi-objective study, and the trials table. Drawn by Optuna's matplotlib plots."""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

from tsmoe.analysis.report import PAGE, figure_html, table_html  # noqa: E402
from tsmoe.io import atomic_write_bytes  # noqa: E402
from tsmoe.tuning.space import space_summary  # noqa: E402
from tsmoe.tuning.study import TuneSettings  # noqa: E402

PAGE_NAME = "tune.html"


def _plot(draw: Callable[[], object], alt: str) -> str:
    """One Optuna plot as an inline image, or a line saying why it could not be drawn (too few trials,
    a parameter that never varied)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            drawn = draw()
            axes = drawn.flat[0] if hasattr(drawn, "flat") else drawn
            fig = axes.get_figure()
            wide = 3.2 * len(fig.axes) if len(fig.axes) > 2 else 7.0  # a slice plot: one panel per parameter
            fig.set_size_inches(max(fig.get_size_inches()[0], wide, 7.0), max(fig.get_size_inches()[1], 4.0))
            fig.tight_layout()
    except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as error:
        plt.close("all")
        return f"<p>Not drawn: {html.escape(str(error) or type(error).__name__)}</p>"
    return figure_html(fig, alt)


def _sections(study: optuna.Study, settings: TuneSettings, table: pd.DataFrame) -> list[tuple[str, str, str]]:
    names = settings.objectives
    first = names[0]
    target = None if len(names) == 1 else (lambda t: t.values[0])
    counts = table["state"].value_counts().to_dict() if len(table) else {}
    facts = [
        ["study", settings.study_name], ["storage", settings.storage_url],
        ["objective(s)", ", ".join(f"{n} ({d})" for n, d in zip(names, settings.directions, strict=True))],
        ["trials", ", ".join(f"{v} {k}" for k, v in counts.items()) or "none yet"],
        ["pruner", settings.space.pruner.name if len(names) == 1 else "none (several objectives)"],
        ["command", settings.command],
    ]  # fmt: skip
    summary = table_html(["", ""], facts)
    summary += "<h3>Search space</h3>" + table_html(
        ["key", "range"], [[p["key"], ", ".join(f"{k}={v}" for k, v in p.items() if k != "key")]
                           for p in space_summary(settings.space)]
    )  # fmt: skip
    sections = [("summary", "Study", summary)]
    history = _plot(lambda: optuna_plots.plot_optimization_history(study, target=target, target_name=first),
                    f"{first} by trial")  # fmt: skip
    sections.append(("history", "Optimisation history", history))
    if len(names) == 1 and any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        curves = _plot(lambda: optuna_plots.plot_intermediate_values(study), f"{first} by epoch, every trial")
        sections.append(("epochs", "Validation by epoch (what pruning read)", curves))
    importance = _plot(lambda: optuna_plots.plot_param_importances(study, target=target, target_name=first),
                       "parameter importances")  # fmt: skip
    sections.append(("importance", f"Parameter importances for {first} (fANOVA)", importance))
    slices = _plot(lambda: optuna_plots.plot_slice(study, target=target, target_name=first), "slice plot")
    sections.append(("slice", "Each parameter against the objective", slices))
    parallel = _plot(lambda: optuna_plots.plot_parallel_coordinate(study, target=target, target_name=first),
                     "parallel coordinates")  # fmt: skip
    sections.append(("parallel", "Parallel coordinates", parallel))
    if len(names) > 1:
        front = _plot(lambda: optuna_plots.plot_pareto_front(study, target_names=names[:3]), "Pareto front")
        sections.append(("pareto", "Pareto front", front))
    rows = table.where(table.notna(), "").values.tolist()
    sections.append(("trials", "Trials", table_html(list(table.columns), rows)))
    return sections


def write_page(study: optuna.Study, settings: TuneSettings, table: pd.DataFrame) -> Path:
    """Write ``tune.html`` into the study's folder; its path."""
    sections = _sections(study, settings, table)
    title = f"tsmoe tune: {settings.recipe['model']['name']} on {settings.recipe['data']['name']}"
    nav = " | ".join(f'<a href="#{sid}">{html.escape(name)}</a>' for sid, name, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{html.escape(name)}</h2>{content}</section>'
                     for sid, name, content in sections)  # fmt: skip
    page = PAGE.format(title=html.escape(title), nav=nav, sections=body)
    path = settings.out / PAGE_NAME
    atomic_write_bytes(path, lambda handle: handle.write(page.encode()))
    return path
