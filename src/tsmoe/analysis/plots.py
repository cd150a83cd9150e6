"""Plots of MR-MoE's interpretable outputs (PNG, matplotlib without a display)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tsmoe.analysis.interpret import SequenceExtras  # noqa: E402
from tsmoe.io import atomic_write_bytes  # noqa: E402


def figure_png(fig: plt.Figure, dpi: int = 110) -> bytes:
    """The figure rendered as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: plt.Figure, path: Path, dpi: int = 110) -> None:
    """Write a PNG atomically (rendered in memory, then renamed into place), and close the figure."""
    png = figure_png(fig, dpi)
    atomic_write_bytes(Path(path), lambda handle: handle.write(png))


def feature_attention_figure(extras: SequenceExtras, names: tuple[str, ...], top: int = 20) -> plt.Figure:
    """Bar chart of the variables ranked by attention relative to uniform (see ``feature_importance``)."""
    importance = extras.feature_importance()
    order = np.argsort(importance)[::-1][:top]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order][::-1], importance[order][::-1], color="#3b6ea8")
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("attention relative to uniform, where observed (1 = average variable)")
    ax.set_title("Feature attention: which variables the model weighs most")
    fig.tight_layout()
    return fig


def sequences_figure(extras: SequenceExtras, indices: list[int], labels: list[str] | None = None) -> plt.Figure:
    """For a few sequences: gate weights of each expert and temporal attention, against hours."""
    has_gate, has_time = "gate" in extras.extras, "temporal_attention" in extras.extras
    rows = int(has_gate) + int(has_time)
    if rows == 0:
        raise ValueError("the model returned neither gate weights nor temporal attention")
    fig, axes = plt.subplots(rows, len(indices), figsize=(4 * len(indices), 2.6 * rows), squeeze=False)
    for column, index in enumerate(indices):
        hours = extras.times[index]
        row = 0
        title = labels[column] if labels else f"sequence {index}"
        if has_gate:
            gate = extras.extras["gate"][index]
            ax = axes[row, column]
            ax.stackplot(hours, gate.T, labels=[f"expert {k + 1}" for k in range(gate.shape[1])], step="post")
            ax.set_ylim(0, 1)
            ax.set_title(f"{title}: gate weights")
            ax.set_xlabel("hours since admission")
            if column == 0:
                ax.legend(loc="upper right", fontsize=7)
            row += 1
        if has_time:
            ax = axes[row, column]
            ax.bar(hours, extras.extras["temporal_attention"][index], width=0.4, color="#a8553b")
            ax.set_title(f"{title}: temporal attention")
            ax.set_xlabel("hours since admission")
    fig.tight_layout()
    return fig


def plot_feature_attention(extras: SequenceExtras, names: tuple[str, ...], path: Path, top: int = 20) -> Path:
    """:func:`feature_attention_figure`, written as a PNG."""
    save_figure(feature_attention_figure(extras, names, top), path)
    return path


def plot_sequences(extras: SequenceExtras, indices: list[int], path: Path, labels: list[str] | None = None) -> Path:
    """:func:`sequences_figure`, written as a PNG."""
    save_figure(sequences_figure(extras, indices, labels), path)
    return path


def write_interpretation_plots(model, prepared, folder: Path, n_sequences: int = 3) -> list[Path]:
    """Feature-attention ranking and per-stay gate/temporal-attention plots of ``prepared.test``.

    Writes nothing (returns ``[]``) for models without interpretable outputs. The stays shown are the
    ones with the most steps among the test split's positives and negatives, so the plots span the 48 h.
    """
    from tsmoe.analysis.interpret import collect_extras

    if prepared.input_kind != "irregular":  # the read-outs here are of sequences of stays
        return []
    extras = collect_extras(model, prepared.test, prepared.collate)
    if not extras.extras:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if "feature_attention" in extras.extras:
        written.append(plot_feature_attention(extras, prepared.channel_names, folder / "feature_attention.png"))
    if {"gate", "temporal_attention"} & set(extras.extras):
        labels = prepared.test.data.labels
        lengths = np.array([len(t) for t in extras.times])
        chosen = []
        for label in (1, 0):
            candidates = np.flatnonzero(labels == label)
            chosen += candidates[np.argsort(lengths[candidates])[::-1][: (n_sequences + 1) // 2]].tolist()
        chosen = chosen[:n_sequences]
        ids = prepared.test.data.record_ids
        names = [f"stay {ids[i]} ({'died' if labels[i] == 1 else 'survived'})" for i in chosen]
        written.append(plot_sequences(extras, chosen, folder / "stays.png", names))
    return written
