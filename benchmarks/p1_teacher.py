"""A gradient-boosting teacher for P1 distillation: cross-fitted probabilities of the training stays.

    python benchmarks/p1_teacher.py --summaries mean --mix-with runs/p1/mrmoe-s0 ... runs/p1/mrmoe-s4 \
        --out benchmarks/results/teachers/p1-gbm-mean

Gradient boosting on per-variable summaries (``p1_features.py``) is the strongest single P1 model here,
and it errs differently from the sequence models, so it can teach them. Its probabilities for the
training stays are cross-fitted: the training stays are cut into 5 stratified folds, and each fold is
scored by a model fitted on the other four, so no stay's probability comes from a model that saw its
label (a model scores its own training rows near their labels: in-sample AUROC 0.99+). The learning rate
and the number of rounds are chosen on the validation stays' AUROC, as in ``p1_features.py``.

Writes ``OUT.csv`` (``record_id,probability`` for every training stay, the teacher file that
``training.distill_from`` reads) and ``OUT.json``: the choice, the cross-fitted AUROC on the training
stays, and the validation AUROC of the teacher mixed with the mean probability of the ``--mix-with`` run
folders at several shares, which is how the share is chosen before any student is trained. Nothing here
scores the test stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from p1_features import LEARNING_RATES, SUMMARIES, boosting, fit_on_validation, stay_summaries
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tsmoe.data.sources.physionet2012 import load_physionet2012, shipped_split_file
from tsmoe.data.splits import IdSplit
from tsmoe.ensemble import Ensemble

FOLDS = 5
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the teacher's share of the mixture; 0 is the run folders alone


def cross_fitted(features: np.ndarray, labels: np.ndarray, lr: float, rounds: int) -> np.ndarray:
    """``(N,)`` out-of-fold P(death) of each row: every fold scored by a model fitted on the others."""
    out = np.zeros(len(labels))
    for fit_rows, score_rows in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(features, labels):
        out[score_rows] = (
            boosting(lr, rounds).fit(features[fit_rows], labels[fit_rows]).predict_proba(features[score_rows])[:, 1]
        )
    return out


def runs_validation_probability(folders: list[str], record_ids: np.ndarray) -> np.ndarray:
    """The run folders' mean validation P(death) as one ensemble (which checks that they share a split),
    in the order of ``record_ids`` (checked)."""
    ensemble = Ensemble.load(folders)
    if not np.array_equal(ensemble.members[0].prepare_data().val.data.record_ids, record_ids):  # type: ignore[attr-defined]
        raise SystemExit(f"{folders[0]} was trained on another split: its validation stays differ")
    outputs, _ = ensemble.member_outputs(part="validation")
    return ensemble.combine(outputs).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summaries", nargs="+", default=list(SUMMARIES), choices=SUMMARIES)
    parser.add_argument("--mix-with", nargs="*", default=[], metavar="RUN")
    parser.add_argument("--out", required=True, help="OUT: writes OUT.csv and OUT.json")
    args = parser.parse_args()

    data = load_physionet2012()
    train, val, _ = IdSplit.read(shipped_split_file()).indices_in(data.record_ids, "PhysioNet 2012 sets A and B")
    features, names = stay_summaries(data)
    columns = [i for i, name in enumerate(names) if ":" not in name or name.split(":")[1] in args.summaries]
    features, labels = features[:, columns], data.labels
    trials = []
    for lr in LEARNING_RATES:
        rounds, val_auroc = fit_on_validation(features, labels, train, val, lr)
        trials.append({"learning_rate": lr, "rounds": rounds, "val_auroc": val_auroc})
        print(f"lr {lr}: best validation AUROC {val_auroc:.4f} at {rounds} rounds", flush=True)
    chosen = max(trials, key=lambda t: t["val_auroc"])
    lr, rounds = chosen["learning_rate"], chosen["rounds"]

    train_probability = cross_fitted(features[train], labels[train], lr, rounds)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"record_id": data.record_ids[train], "probability": train_probability}).to_csv(
        out.with_suffix(".csv"), index=False, float_format="%.6f"
    )
    val_probability = boosting(lr, rounds).fit(features[train], labels[train]).predict_proba(features[val])[:, 1]
    mixtures = {}
    if args.mix_with:
        runs = runs_validation_probability(args.mix_with, data.record_ids[val])
        for share in SHARES:
            auroc = roc_auc_score(labels[val], (1 - share) * runs + share * val_probability)
            mixtures[str(share)] = float(auroc)
            print(f"teacher share {share}: validation AUROC {auroc:.4f}", flush=True)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "summaries": args.summaries,
        "trials": trials,
        "chosen": chosen,
        "folds": FOLDS,
        "cross_fitted_train_auroc": float(roc_auc_score(labels[train], train_probability)),
        "validation_auroc": float(roc_auc_score(labels[val], val_probability)),
        "mixed_with": args.mix_with,
        "mixture_validation_auroc": mixtures,  # by the teacher's share; the rest is the runs' mean
    }
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "trials"}, indent=1))


if __name__ == "__main__":
    main()
