"""Metric dictionaries for comparison with ``pytest.approx``, which takes no lists inside a mapping."""

from __future__ import annotations


def flat(metrics: dict) -> dict:
    """``{"auroc_ci": [lo, hi]}`` as ``{"auroc_ci.0": lo, "auroc_ci.1": hi}``; other entries as they are."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, list):
            out.update({f"{key}.{i}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out
