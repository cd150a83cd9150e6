"""``tsmoe compare RUN_A RUN_B``: two saved runs scored on the same items, and the difference between them
with its interval and p-value: DeLong's test for AUROC and a paired bootstrap for AUPRC and Brier
(binary classifiers), a paired bootstrap within classes for accuracy, Brier and log loss (several
classes), the Diebold-Mariano test with a batch-means variance on the per-window losses
(forecasters and regressors).
Runs scored on different items are refused: a difference between them would mean nothing.

Either side may be a deep ensemble, several runs joined by ``+`` (``runs/a-s0+runs/a-s1+runs/a-s2``; in
Python, a list of folders): it is scored as :class:`tsmoe.ensemble.Ensemble` scores it, on the mean of its
members' probabilities (classifiers) or predictions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tsmoe.analysis.paired_tests import delong_test, diebold_mariano, paired_bootstrap
from tsmoe.ensemble import Ensemble
from tsmoe.errors import ConfigError, DataError
from tsmoe.estimator import Estimator
from tsmoe.metrics import (
    FEWEST_BLOCKS,
    auroc_of,
    average_precision_of,
    brier_score,
    multiclass_accuracy,
    multiclass_brier,
    multiclass_log_loss,
    window_block,
    window_losses,
)
from tsmoe.tasks import get_task


def _same_items(a: Estimator, b: Estimator, names: tuple[str, str], part: str) -> None:
    """Refuse two runs of other tasks, other data settings or other splits of the same data."""
    if a.meta_["task"] != b.meta_["task"]:
        raise ConfigError(f"{names[0]} is a {a.meta_['task']} run and {names[1]} a {b.meta_['task']} run: "
                          "only runs of one task compare")  # fmt: skip
    # the splits themselves are compared below; how values are scaled and how text is read (or whether it is:
    # text against no text is a comparison worth making) change no item; the targets are compared too
    keys = {k for k in set(a.config.data) | set(b.config.data) if not k.startswith("text_")}
    keys -= {"split_file", "value_scaling", "hashing_dim"}
    differ = sorted(k for k in keys if a.config.data.get(k) != b.config.data.get(k))
    if differ:
        shown = ", ".join(f"data.{k}: {a.config.data.get(k)!r} against {b.config.data.get(k)!r}" for k in differ)
        raise ConfigError(f"{names[0]} and {names[1]} were trained on other data ({shown}); they score other items")
    key = "val" if part == "validation" else "test"
    split_a, split_b = a.split_, b.split_
    if split_a.get(key, split_a.get("rows")) != split_b.get(key, split_b.get("rows")):
        raise ConfigError(f"{names[0]} and {names[1]} have other {part} splits (split.json): their {part} items "
                          "differ; train both with the same data.split_file")  # fmt: skip


def scored(estimator: Estimator, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    prepared = estimator.prepare_data()
    return estimator.scored_outputs(prepared, prepared.test if part == "test" else prepared.val)


RunSide = str | Path | Sequence[str | Path]


def run_folders(side: RunSide) -> list[Path]:
    """One side of a comparison as its run folders: a folder, several joined by ``+``, or a list of them.
    A name that is itself a folder is one run, ``+`` or not."""
    if isinstance(side, str | Path):
        if Path(side).exists() or "+" not in str(side):
            return [Path(side)]
        parts = str(side).split("+")
        if "" in parts:  # 'a+' or 'a++b': an empty name would read as the current folder
            raise ConfigError(f"'{side}': a run folder's name is empty; join run folders as runs/a+runs/b")
        return [Path(part) for part in parts]
    return [Path(folder) for folder in side]


class _Side:
    """One side of a comparison, opened (its runs loaded and checked) before any of it is scored: a run, or
    several runs as their deep ensemble."""

    def __init__(self, side: RunSide, part: str) -> None:
        folders = run_folders(side)
        self.name, self.part = "+".join(str(f) for f in folders), part
        self.ensemble = Ensemble.load(folders) if len(folders) > 1 else None  # checks parts when it scores
        self.run = self.ensemble.members[0] if self.ensemble else Estimator.load(folders[0])
        if self.ensemble is None:
            self.run.check_part_unseen(part, f"run '{self.name}'")

    def outputs(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """``(outputs, target, whether they are probabilities)``: a run's scored outputs (logits for a
        classifier), or the ensemble's mean probabilities (classifiers) or predictions."""
        if self.ensemble is None:
            return *scored(self.run, self.part), False
        outputs, target = self.ensemble.member_outputs(part=self.part)  # refuses members scored on other items
        return self.ensemble.combine(outputs), target, self.ensemble.task.is_classifier


def compare_runs(run_a: RunSide, run_b: RunSide, part: str = "test") -> dict[str, Any]:
    """The comparison as a mapping: the runs, the part, the number of items, and per metric ``a``, ``b``,
    ``difference`` (a - b), its 95 % ``interval``, ``p_value`` and the ``test`` used. A side given as
    several runs is their deep ensemble (module docstring)."""
    side_a, side_b = _Side(run_a, part), _Side(run_b, part)
    a, b, names = side_a.run, side_b.run, (side_a.name, side_b.name)
    _same_items(a, b, names, part)
    (out_a, target_a, mean_a), (out_b, target_b, mean_b) = side_a.outputs(), side_b.outputs()
    if target_a.shape != target_b.shape or not torch.equal(target_a, target_b):
        raise DataError(f"{names[0]} and {names[1]} score other {part} targets; they cannot be compared item by item")
    task = get_task(a.meta_["task"])
    result: dict[str, Any] = {"run_a": names[0], "run_b": names[1], "part": part, "task": task.name,
                              "items": int(len(target_a)), "metrics": {}}  # fmt: skip
    if task.name == "binary":
        y = target_a.long().numpy()
        if y.min() == y.max():
            raise DataError(f"the {part} part holds one class only; AUROC and AUPRC are not defined")
        # an ensemble's outputs are already its mean probabilities; a run's are logits
        p_a, p_b = ((o if mean else task.probabilities(o.float())).double().numpy()
                    for o, mean in ((out_a, mean_a), (out_b, mean_b)))  # fmt: skip
        bootstrap = "paired bootstrap"
        tests = {"auroc": (auroc_of, delong_test(p_a, p_b, y), "DeLong"),
                 "auprc": (average_precision_of, paired_bootstrap(average_precision_of, p_a, p_b, y), bootstrap),
                 "brier": (brier_score, paired_bootstrap(brier_score, p_a, p_b, y), bootstrap)}  # fmt: skip
        for metric, (function, test, name) in tests.items():
            result["metrics"][metric] = {"a": function(p_a, y), "b": function(p_b, y), **test, "test": name}
    elif task.name == "multiclass":  # the items resampled within each class, the same items for both runs
        y = target_a.long().numpy()
        p_a, p_b = ((o if mean else task.probabilities(o.float())).double().numpy()
                    for o, mean in ((out_a, mean_a), (out_b, mean_b)))  # fmt: skip
        for metric, function in (("accuracy", multiclass_accuracy), ("brier", multiclass_brier),
                                 ("log_loss", multiclass_log_loss)):  # fmt: skip
            test = paired_bootstrap(function, p_a, p_b, y, by_class=True)
            result["metrics"][metric] = {"a": function(p_a, y), "b": function(p_b, y), **test,
                                         "test": "paired bootstrap within classes"}  # fmt: skip
    elif task.name in ("forecast", "regression"):
        losses_a, losses_b = window_losses(out_a, target_a), window_losses(out_b, target_b)
        horizon = int(out_a.shape[1]) if task.name == "forecast" and out_a.dim() > 1 else 0
        batch = window_block(horizon) if horizon else 1  # forecasts: two horizons; regression: single items
        warning = too_few_windows(len(target_a), horizon)
        if warning:
            result["warning"] = warning
        for metric in ("mse", "mae"):
            test = diebold_mariano(losses_a[metric], losses_b[metric], batch)
            name = f"Diebold-Mariano, batch-means variance ({batch} windows a batch)"
            result["metrics"][metric] = {"a": float(losses_a[metric].mean()), "b": float(losses_b[metric].mean()),
                                         **test, "test": name}  # fmt: skip
    else:
        raise ConfigError(f"tsmoe compare does not compare {task.name} runs yet (binary, multiclass, forecast and "
                          "regression)")  # fmt: skip
    return result


def too_few_windows(windows: int, horizon: int) -> str | None:
    """Why forecasts ``horizon`` steps long on ``windows`` windows get no paired test (fewer than
    :data:`~tsmoe.metrics.FEWEST_BLOCKS` batches of two horizons, where the bootstrap gives no interval
    either), or ``None``."""
    if not horizon:  # regression: independent items
        return None
    block = window_block(horizon)
    if windows >= FEWEST_BLOCKS * block:
        return None
    return (f"{windows} windows hold {windows / block:.1f} stretches of two horizons ({block} windows), too few "
            "for a paired test: the difference only, without interval or p-value")  # fmt: skip


def comparison_table(result: dict[str, Any]) -> str:
    """A readable table: each metric for A and B, A - B, its interval, the p-value and the test."""
    header = ["metric", "A", "B", "A - B", "95 % interval", "p", "test"]
    rows = [[name, f"{m['a']:.4f}", f"{m['b']:.4f}", f"{m['difference']:+.4f}",
             f"[{m['interval'][0]:+.4f}, {m['interval'][1]:+.4f}]" if m["interval"] else "-",
             f"{m['p_value']:.3g}" if m["p_value"] is not None else "-", m["test"]]
            for name, m in result["metrics"].items()]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"A: {result['run_a']}", f"B: {result['run_b']}",
             f"{result['items']:,} {result['part']} items, {result['task']}"]  # fmt: skip
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    if "warning" in result:
        lines.append(f"warning: {result['warning']}")
    return "\n".join(lines)
