"""A non-neural reference for P1: gradient boosting on per-variable summaries of each stay.

    python benchmarks/p1_features.py --out benchmarks/results/p1-features-gbm.json

How high can the committed split go without a sequence model? Each stay becomes one row of summaries:
for each of the 37 variables its first, last, minimum, maximum, mean and median value, how often it was
measured and when it was last measured (NaN where never), plus the static descriptors and the number of
steps. scikit-learn's ``HistGradientBoostingClassifier`` (a test-only dependency of tsmoe) fits them on
the training stays; its learning rate and number of boosting rounds are chosen on the validation stays'
AUROC only, then the test stays are scored once. Boosting is deterministic here (no subsampling), so one
run per setting is the whole result.

Which inputs carry the signal: with the chosen learning rate, the model is refit on one kind of summary
at a time (with the static descriptors) and each is scored on validation only (``ablation``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score

from tsmoe.data.irregular import IrregularSet
from tsmoe.data.sources.physionet2012 import load_physionet2012, shipped_split_file
from tsmoe.data.splits import IdSplit

SUMMARIES = ("first", "last", "min", "max", "mean", "median", "count", "last_time")
LEARNING_RATES = (0.03, 0.05, 0.1)
MAX_ROUNDS = 1500
ABLATION = ("mean", "last", "count")  # one summary kind at a time, with the static descriptors


def stay_summaries(data: IrregularSet) -> tuple[np.ndarray, list[str]]:
    """``(N, 8 F + P + 1)`` summaries of each stay (see the module docstring) and their names."""
    rows = []
    for i in range(len(data)):
        start, end = int(data.offsets[i]), int(data.offsets[i + 1])
        values, times = data.values[start:end], data.times[start:end]
        row: list[float] = []
        for f in range(len(data.variables)):
            observed = ~np.isnan(values[:, f])
            if observed.any():
                x = values[observed, f]
                last_time = times[observed][-1]
                row += [x[0], x[-1], x.min(), x.max(), x.mean(), float(np.median(x)), observed.sum(), last_time]
            else:
                row += [np.nan] * 6 + [0.0, np.nan]
        rows.append(row + list(data.static[i]) + [end - start])
    names = [f"{v}:{s}" for v in data.variables for s in SUMMARIES] + list(data.static_names) + ["n_steps"]
    return np.asarray(rows, dtype=np.float32), names


def boosting(lr: float, rounds: int) -> HistGradientBoostingClassifier:
    """The boosting model of this reference: ``rounds`` trees of 15 leaves at learning rate ``lr``."""
    return HistGradientBoostingClassifier(
        learning_rate=lr, max_iter=rounds, max_leaf_nodes=15, l2_regularization=1.0, early_stopping=False
    )


def fit_on_validation(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, val: np.ndarray, lr: float
) -> tuple[int, float]:
    """Fit ``MAX_ROUNDS`` rounds on the training rows; the number of rounds with the best validation
    AUROC, and that AUROC."""
    model = boosting(lr, MAX_ROUNDS).fit(features[train], labels[train])
    curve = [roc_auc_score(labels[val], p[:, 1]) for p in model.staged_predict_proba(features[val])]
    return int(np.argmax(curve)) + 1, float(max(curve))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    data = load_physionet2012()
    train, val, test = IdSplit.read(shipped_split_file()).indices_in(data.record_ids, "PhysioNet 2012 sets A and B")
    features, names = stay_summaries(data)
    labels = data.labels
    trials = []
    for lr in LEARNING_RATES:
        started = time.perf_counter()
        rounds, val_auroc = fit_on_validation(features, labels, train, val, lr)
        trials.append({"learning_rate": lr, "rounds": rounds, "val_auroc": val_auroc,
                       "fit_seconds": time.perf_counter() - started})  # fmt: skip
        print(f"lr {lr}: best validation AUROC {val_auroc:.4f} at {rounds} rounds", flush=True)
    chosen = max(trials, key=lambda t: t["val_auroc"])
    final = boosting(chosen["learning_rate"], chosen["rounds"]).fit(features[train], labels[train])
    probability = final.predict_proba(features[test])[:, 1]
    ablation = {}
    for kind in ABLATION:
        columns = [i for i, name in enumerate(names) if name.endswith(f":{kind}") or ":" not in name]
        rounds, val_auroc = fit_on_validation(features[:, columns], labels, train, val, chosen["learning_rate"])
        ablation[f"{kind} + static"] = {"rounds": rounds, "val_auroc": val_auroc}
        print(f"only the {kind} of each variable, with the static descriptors: validation AUROC {val_auroc:.4f}")
    result = {
        "command": " ".join(["python", *sys.argv]),
        "features": names,
        "trials": trials,
        "chosen": chosen,
        "ablation": ablation,  # validation only
        "test": {
            "auroc": float(roc_auc_score(labels[test], probability)),
            "auprc": float(average_precision_score(labels[test], probability)),
        },
        "machine": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"chosen on validation: lr {chosen['learning_rate']}, {chosen['rounds']} rounds; "
          f"test AUROC {result['test']['auroc']:.4f}, AUPRC {result['test']['auprc']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
