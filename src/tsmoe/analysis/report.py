"""One self-contained HTML page per run: what was trained, how it trained, and what its experts did.

``write_report(run_dir, model, prepared, config, meta, metrics)`` takes a loaded run (the caller loads it,
e.g. with ``Estimator.load``), recomputes the read-outs on the test part of ``prepared``, reads the
training logs of ``run_dir``, and writes ``report.html`` with every plot inlined as a PNG (no external files, so
the page can be mailed or archived). Sections depend on the model: every run has the summary and
training curves; forecasters add their test error by step ahead and forecasts over a test period (and a
quantile forecaster its fans); sparse-MoE forecasters add expert usage, specialisation, the effect of text, the top-K
truncation bound and the spectra of the expert weights; MR-MoE adds gate usage over the stay, feature
attention and temporal attention.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from tsmoe import io as run_io  # noqa: E402
from tsmoe.analysis.callbacks import SPECTRAL_FILE  # noqa: E402
from tsmoe.analysis.moe_readout import is_sparse_moe  # noqa: E402
from tsmoe.config import RunConfig  # noqa: E402
from tsmoe.data.prepared import PreparedData  # noqa: E402
from tsmoe.io import atomic_write_bytes  # noqa: E402
from tsmoe.training.venn_abers import VennAbers  # noqa: E402

Section = tuple[str, str, str]  # (id, title, html body)


def figure_html(fig: plt.Figure, alt: str) -> str:
    """The figure as an inline PNG ``<img>`` (the page needs no other file)."""
    from tsmoe.analysis.plots import figure_png

    data = base64.b64encode(figure_png(fig, dpi=90)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(header: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _interval(values: list | None) -> str:
    if not values or any(v is None for v in values):
        return ""
    return f"[{values[0]:.4f}, {values[1]:.4f}]"


def summary_section(config: RunConfig, meta: dict[str, Any], metrics: dict[str, float] | None) -> Section:
    intervals = {k.removesuffix("_ci"): v for k, v in (metrics or {}).items() if isinstance(v, list) and len(v) == 2}
    metrics = {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float)}
    facts = [
        ["model", config.model["name"]], ["data", config.data["name"]], ["task", meta["task"]],
        ["parameters", f"{meta['n_parameters']:,}"], ["epochs run", meta["epochs_run"]],
        ["best epoch (validation)", f"{meta['best_epoch']} ({meta['monitor']} = {meta['best_score']:.4f})"],
        ["training time", f"{meta['train_seconds']:.1f} s"],
    ]  # fmt: skip
    if "refit" in meta:  # training.refit: the kept model is a second one, trained on validation items too
        refit = meta["refit"]
        facts.append(["refit (the kept model)", f"{refit['epochs']} epochs on {refit['items']:,} training + "
                      f"validation items, {refit['seconds']:.1f} s"])  # fmt: skip
    body = table_html(["", ""], facts)
    if intervals:
        rows = [[k, float(v), _interval(intervals.get(k))] for k, v in metrics.items()]
        body += "<h3>Test metrics</h3>" + table_html(["metric", "value", "95 % bootstrap interval"], rows)
    else:
        body += "<h3>Test metrics</h3>" + table_html(["metric", "value"], [[k, float(v)] for k, v in metrics.items()])
    body += f"<h3>Resolved config</h3><pre>{html.escape(config.to_yaml())}</pre>"
    return "summary", "Summary", body


def curves_section(folder: Path) -> Section:
    path = folder / "logs" / "metrics.csv"
    if not path.exists():
        return "training", "Training curves", "<p>No CSV log in this run folder.</p>"
    logs = pd.read_csv(path)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for column in ("train_loss", "val_loss"):
        if column in logs:
            rows = logs.dropna(subset=[column])
            ax.plot(rows["epoch"], rows[column], marker="o", label=column)
    ax.set(xlabel="epoch", ylabel="loss", title="Loss by epoch (the kept epoch is chosen on validation)")
    ax.legend()
    return "training", "Training curves", figure_html(fig, "training and validation loss by epoch")


def moe_sections(model, prepared, folder: Path) -> list[Section]:
    from tsmoe.analysis.moe_readout import FEATURES, read_out, topk_bound

    readout = read_out(model, prepared.test, prepared.collate)
    sections: list[Section] = []

    rows, body = [], ""
    for i, layer in enumerate(readout.layers):
        usage = layer.usage
        rows.append([i, " ".join(f"{x:.2f}" for x in usage.load), usage.load_cv, usage.entropy,
                     ", ".join(map(str, usage.dead)) or "none"])  # fmt: skip
    body += table_html(["layer", "load per expert", "load CV", "routing entropy (nats)", "dead experts"], rows)
    fig, axes = plt.subplots(1, len(readout.layers), figsize=(4 * len(readout.layers), 2.8), squeeze=False)
    for i, layer in enumerate(readout.layers):
        axes[0, i].bar(range(len(layer.usage.load)), layer.usage.load, color="#3b6ea8")
        axes[0, i].axhline(1 / len(layer.usage.load), color="grey", linestyle="--", linewidth=0.8)
        axes[0, i].set(title=f"layer {i}: share of assignments", xlabel="expert")
    body += figure_html(fig, "load per expert")
    sections.append(("usage", "Expert usage (test split)", body))

    fig, axes = plt.subplots(1, len(FEATURES), figsize=(4 * len(FEATURES), 3.0))
    for ax, feature in zip(axes, FEATURES, strict=True):
        table, edges = readout.specialisation(0, feature)
        ax.imshow(table, aspect="auto", cmap="viridis", vmin=0, vmax=max(table.max(), 1e-9))
        ax.set(title=f"by {feature}", xlabel="expert", ylabel="quantile bin (low to high)")
        ax.set_yticks(range(len(table)))
    body = (
        "<p>Share of each quantile bin's assignments that each expert takes (layer 0); an expert that "
        "specialises shows a column that changes down the bins.</p>" + figure_html(fig, "specialisation heatmaps")
    )
    for feature in FEATURES:
        table, edges = readout.specialisation(0, feature)
        rows = [[f"{edges[b]:.3g} to {edges[b + 1]:.3g}", *[float(x) for x in table[b]]] for b in range(len(table))]
        header = [f"{feature} bin", *[f"expert {e}" for e in range(table.shape[1])]]
        body += f"<h3>By {feature}</h3>" + table_html(header, rows)
    sections.append(("specialisation", "Specialisation", body))

    if readout.text_changes_routing is not None:
        rows = [[i, changed, " ".join(f"{x:+.3f}" for x in shift)]
                for i, (changed, shift) in enumerate(zip(readout.text_changes_routing, readout.text_load_shift,
                                                         strict=True))]  # fmt: skip
        body = "<p>The same test windows routed with their text and with the null text.</p>"
        body += table_html(["layer", "share of tokens whose top-K set changes", "load with text minus without"], rows)
        sections.append(("text", "What text does to routing", body))

    bound = topk_bound(model, readout)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(bound.actual, bound.theorem, s=4, alpha=0.5, label="theorem's bound")
    ax.scatter(bound.actual, bound.rayleigh, s=4, alpha=0.5, label="Rayleigh (exact lambda_max)")
    top = max(float(bound.theorem.max()), 1e-12)
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
    ax.set(xlabel="actual error of dropping the other experts", ylabel="bound", title="Top-K truncation bound")
    ax.legend()
    body = table_html(["tokens", "bound holds", "mean actual", "mean Rayleigh", "mean Gershgorin", "mean theorem"],
                      [[len(bound.actual), bound.holds(), float(bound.actual.mean()), float(bound.rayleigh.mean()),
                        float(bound.gershgorin.mean()), float(bound.theorem.mean())]])  # fmt: skip
    sections.append(("bound", "Top-K truncation bound (MoME Theorem 4.2)", body + figure_html(fig, "bound vs actual")))

    body = "<p>Estimates of ||W||^2 (the largest eigenvalue of W^T W) per expert, now.</p>"
    rows = [
        [
            name,
            " ".join(f"{e.rayleigh_max:.3f}" for e in estimates),
            " ".join(f"{e.gershgorin_max:.3f}" for e in estimates),
        ]
        for name, estimates in readout.spectra.items()
    ]
    body += table_html(["weights", "Rayleigh quotient (per expert)", "Gershgorin bound (per expert)"], rows)
    tracked = folder / SPECTRAL_FILE
    if tracked.exists():
        history = json.loads(tracked.read_text())
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for name in history[0]["rayleigh_max"]:
            values = np.array([h["rayleigh_max"][name] for h in history])
            ax.plot([h["epoch"] for h in history], values.max(1), label=f"{name} (largest expert)")
        ax.set(xlabel="epoch", ylabel="Rayleigh estimate of ||W||^2", title="Spectra across training")
        ax.legend(fontsize=7)
        body += figure_html(fig, "spectra across training")
    sections.append(("spectral", "Spectral stability", body))
    return sections


def mrmoe_sections(model, prepared, folder: Path) -> list[Section]:
    from tsmoe.analysis.interpret import collect_extras
    from tsmoe.analysis.plots import feature_attention_figure, sequences_figure
    from tsmoe.analysis.routing import expert_usage

    extras = collect_extras(model, prepared.test, prepared.collate)
    sections: list[Section] = []
    if "gate" in extras.extras:
        gates = np.concatenate(extras.extras["gate"])  # (steps, K)
        usage = expert_usage(gates.argmax(1)[:, None], gates)
        times = np.concatenate(extras.times)
        hours = np.clip(times.astype(int), 0, 47)
        by_hour = np.array([gates[hours == h].mean(0) if (hours == h).any() else np.full(gates.shape[1], np.nan)
                            for h in range(48)])  # fmt: skip
        fig, ax = plt.subplots(figsize=(6.5, 3.0))
        ax.stackplot(range(48), np.nan_to_num(by_hour).T, labels=[f"expert {k + 1}" for k in range(gates.shape[1])])
        ax.set(xlabel="hour of the stay", ylabel="mean gate weight", title="Gate weights across the 48 hours")
        ax.legend(fontsize=7)
        body = table_html(["mean gate weight per expert", "CV of arg-max load", "gate entropy (nats)"],
                          [[" ".join(f"{x:.2f}" for x in gates.mean(0)), usage.load_cv, usage.entropy]])  # fmt: skip
        sections.append(("usage", "Expert usage over the stay", body + figure_html(fig, "gate weights by hour")))
    if "feature_attention" in extras.extras:
        figure = feature_attention_figure(extras, prepared.channel_names)
        sections.append(("features", "Feature attention: which clinical variables mattered",
                         figure_html(figure, "feature attention")))  # fmt: skip
    if {"gate", "temporal_attention"} & set(extras.extras):
        lengths = np.array([len(t) for t in extras.times])
        chosen = np.argsort(lengths)[::-1][:3].tolist()
        sections.append(("stays", "Gate and temporal attention for the longest test stays",
                         figure_html(sequences_figure(extras, chosen), "stays")))  # fmt: skip
    if hasattr(model, "experts") and hasattr(model.experts, "cell"):
        sections.append(liquid_section(model, prepared))
    return sections


@torch.no_grad()
def _test_logits(model, prepared) -> tuple[np.ndarray, np.ndarray]:
    """``(logits (N,), labels (N,))`` of a binary classifier over the test part."""
    from torch.utils.data import DataLoader

    from tsmoe.models.output import unpack

    logits, labels = [], []
    for batch in DataLoader(prepared.test, batch_size=256, collate_fn=prepared.collate):
        logits.append(unpack(model(batch))[0].double().numpy())
        labels.append(batch["target"].numpy())
    return np.concatenate(logits), np.concatenate(labels)


def calibration_section(model, prepared, meta: dict[str, Any], folder: Path) -> Section:
    """The reliability diagram on the test split (observed rate against mean predicted probability, per
    equal-mass bin), before and after the run's calibration where it has one (a temperature, or a
    Venn-Abers map, read from ``folder``, whose intervals' mean width is shown too)."""
    from tsmoe.metrics import expected_calibration_error, reliability_bins

    logits, labels = _test_logits(model, prepared)
    raw = 1 / (1 + np.exp(-logits))
    calibration = meta.get("calibration", {})
    curves = [("raw", raw)]
    if calibration.get("temperature"):
        temperature = calibration["temperature"]
        curves.append((f"temperature {temperature:.2f}", 1 / (1 + np.exp(-logits / temperature))))
        note = "<p>Temperature fitted on the validation split (<code>training.calibrate: temperature</code>).</p>"
    elif calibration.get("method") == "venn_abers":
        merged, low, high = VennAbers.from_arrays(run_io.read_arrays(folder / run_io.CALIBRATION)).probability(raw)
        curves.append(("Venn-Abers", merged))
        width = float(np.mean(high - low))
        note = ("<p>Venn-Abers map made from the validation split (<code>training.calibrate: venn_abers</code>): "
                f"the test items' intervals [p0, p1] are {width:.3f} wide on average.</p>")  # fmt: skip
    else:
        note = ("<p>Not calibrated: <code>training.calibrate: temperature</code> (or <code>venn_abers</code>, "
                "risks with an interval) calibrates on the validation split.</p>")  # fmt: skip
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfectly calibrated")
    rows = []
    for name, prob in curves:
        mean, rate = reliability_bins(prob, labels)
        ece = expected_calibration_error(prob, labels)
        ax.plot(mean, rate, marker="o", label=f"{name} (ECE {ece:.3f})")
        rows.append([name, ece, float(np.mean((prob - labels) ** 2))])
    ax.set(xlabel="mean predicted probability (10 equal-mass bins)", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1),
           title="Reliability on the test split")  # fmt: skip
    ax.legend(fontsize=7)
    body = note + table_html(["probabilities", "ECE", "Brier"], rows) + figure_html(fig, "reliability diagram")
    return "calibration", "Calibration", body


@torch.no_grad()
def fan_section(model, prepared, windows: int = 3) -> Section:
    """Forecast fans of a quantile forecaster for a few test windows of its first target channel: the input,
    the median, the bands between symmetric pairs of levels, and what happened (on the model's own scale)."""
    from torch.utils.data import DataLoader

    batch = next(iter(DataLoader(prepared.test, batch_size=256, collate_fn=prepared.collate)))
    quantiles, levels = model(batch)["quantiles"], model.levels
    channel = prepared.target_channels[0]
    chosen = np.linspace(0, len(batch["x"]) - 1, windows).astype(int)
    fig, axes = plt.subplots(1, windows, figsize=(4.2 * windows, 3.0), squeeze=False)
    for ax, i in zip(axes[0], chosen, strict=True):
        history = batch["x"][i, :, channel].numpy()
        steps = np.arange(len(history), len(history) + quantiles.shape[1])
        ax.plot(np.arange(len(history)), history, color="0.4", label="input")
        for low in range(len(levels) // 2):  # the widest band first, lightest
            ax.fill_between(steps, quantiles[i, :, channel, low].numpy(), quantiles[i, :, channel, -1 - low].numpy(),
                            alpha=0.2 + 0.2 * low, color="tab:blue",
                            label=f"{levels[low]:g} to {levels[-1 - low]:g}")  # fmt: skip
        ax.plot(steps, quantiles[i, :, channel, levels.index(0.5)].numpy(), color="tab:blue", label="median")
        ax.plot(steps, batch["y"][i, :, channel].numpy(), color="black", linestyle="--", label="actual")
        ax.set(title=f"test window {int(i) + 1}", xlabel="step")
    axes[0][0].legend(fontsize=7)
    name = prepared.channel_names[channel]
    return "fans", "Forecast fans", f"<p>Quantiles of '{html.escape(name)}' (levels {levels}).</p>" + figure_html(
        fig, "forecast fans"
    )


def forecast_section(model, prepared) -> Section:
    """The test windows' error at each step ahead, and the first series' test period with the forecasts made
    one and ``H`` steps ahead (:mod:`tsmoe.analysis.forecast_errors`)."""
    from tsmoe.analysis.forecast_errors import errors_by_step, first_series_path, forecasts_of_test_part

    forecasts, targets = forecasts_of_test_part(model, prepared)
    mse, mae = errors_by_step(forecasts, targets)
    path = first_series_path(prepared, forecasts, targets)
    fig, axes = plt.subplots(1, 2 if path else 1, figsize=(11.0 if path else 4.8, 3.2), squeeze=False)
    steps = np.arange(1, len(mse) + 1)
    axes[0][0].plot(steps, mse, marker=".", label="MSE")
    axes[0][0].plot(steps, mae, marker=".", label="MAE")
    axes[0][0].set(xlabel="steps ahead", title="Test error by step ahead")
    axes[0][0].legend(fontsize=7)
    if path:
        ax = axes[0][1]
        ax.plot(path["x"], path["actual"], color="black", linewidth=0.8, label="actual")
        ax.plot(path["x"], path["first"], linewidth=0.8, label="forecast 1 step ahead")
        ax.plot(path["x"], path["last"], linewidth=0.8, label=f"forecast {len(mse)} steps ahead")
        name = prepared.channel_names[prepared.target_channels[0]] if prepared.target_channels else "value"
        ax.set(title=f"'{name}' over the first series' test period")
        ax.legend(fontsize=7)
        fig.autofmt_xdate()
    shown = sorted({0, len(mse) // 2, len(mse) - 1})
    rows = [[int(steps[i]), float(mse[i]), float(mae[i])] for i in shown]
    note = (f"<p>{len(forecasts)} test windows, on the scale the model forecasts (the training split's z-scores "
            "for series), every target channel.</p>")  # fmt: skip
    return "forecasts", "Test forecasts", note + table_html(["step", "MSE", "MAE"], rows) + figure_html(
        fig, "test error by step and forecasts over the test period"
    )


def liquid_section(model, prepared) -> Section:
    """Gershgorin discs of each liquid expert's one-step state Jacobian at its learned time constant."""
    from tsmoe.analysis.spectral import liquid_step_discs

    gaps = [np.diff(prepared.test[i]["times"].numpy()) for i in range(min(len(prepared.test), 200))]
    positive = np.concatenate(gaps) if gaps else np.zeros(0)
    dt = float(np.median(positive[positive > 0])) if (positive > 0).any() else 1.0
    discs = liquid_step_discs(model.experts.cell, model.experts.tau.detach(), dt)
    fig, axes = plt.subplots(1, len(discs), figsize=(3.2 * len(discs), 3.2), squeeze=False)
    for ax, expert in zip(axes[0], discs, strict=True):
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="grey", linestyle="--"))
        for centre, radius in zip(expert.centres, expert.radii, strict=True):
            ax.add_patch(plt.Circle((centre, 0), radius, alpha=0.15, color="#3b6ea8"))
        reach = max(1.2, float(np.max(np.abs(expert.centres) + expert.radii)) * 1.1)
        ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal", title=f"tau = {expert.tau:.2g} h")
    rows = [[f"{d.tau:.3g}", f"{d.dt / d.tau:.3g}", float(np.max(np.abs(d.centres) + d.radii)), d.spectral_radius,
             "yes" if d.stable else "not shown by the discs"] for d in discs]  # fmt: skip
    body = (
        f"<p>One step of {dt:.3g} h (the median gap of the test stays) from the zero state, input absent. "
        "Every disc inside the unit circle proves the step contracts; the exact spectral radius is beside it.</p>"
    )
    body += table_html(
        ["tau (h)", "dt / tau", "max |centre| + radius", "spectral radius", "stable by Gershgorin"], rows
    )
    return "liquid", "Liquid experts: stability of one step", body + figure_html(fig, "Gershgorin discs per expert")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; }} img {{ max-width: 100%; }}
section {{ margin-bottom: 2em; }}
</style></head><body>
<h1>{title}</h1>
<nav>{nav}</nav>
{sections}
<script>
window.addEventListener("load", function () {{
  var broken = Array.prototype.filter.call(document.images, function (i) {{
    return !i.complete || i.naturalWidth === 0;
  }});
  document.body.setAttribute("data-images", String(document.images.length));
  document.body.setAttribute("data-broken-images", String(broken.length));
}});
</script>
</body></html>
"""


def write_report(
    run_dir: str | Path,
    model: torch.nn.Module,
    prepared: PreparedData,
    config: RunConfig,
    meta: dict[str, Any],
    metrics: dict[str, float] | None,
) -> Path:
    """Write ``report.html`` into the run folder ``run_dir`` (whose logs it reads) for ``model``, with its
    read-outs on the ``test`` part of ``prepared``, and return the page's path. The caller loads the run
    (``Estimator.load``; the report knows nothing of estimators)."""
    folder = Path(run_dir)
    sections = [summary_section(config, meta, metrics), curves_section(folder)]
    model = model.eval()
    if meta["task"] == "binary":
        sections.append(calibration_section(model, prepared, meta, folder))
    if meta["task"] == "forecast":
        sections.append(forecast_section(model, prepared))
    if hasattr(model, "levels"):  # a quantile forecaster (model.quantiles)
        sections.append(fan_section(model, prepared))
    body = getattr(model, "base", model)  # a quantile forecaster's own model: its experts and routing
    if is_sparse_moe(body) or meta["input_kind"] == "irregular":
        extra = moe_sections if is_sparse_moe(body) else mrmoe_sections
        sections += extra(body, prepared, folder)
    title = f"tsmoe run: {config.model['name']} on {config.data['name']}"
    nav = " | ".join(f'<a href="#{sid}">{html.escape(name)}</a>' for sid, name, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{html.escape(name)}</h2>{content}</section>'
                     for sid, name, content in sections)  # fmt: skip
    page = PAGE.format(title=html.escape(title), nav=nav, sections=body)
    path = folder / "report.html"
    atomic_write_bytes(path, lambda handle: handle.write(page.encode()))
    return path
