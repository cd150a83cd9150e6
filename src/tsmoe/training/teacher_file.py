"""A teacher given as a file of class probabilities, one row per training item (any model, not only tsmoe's).

The CSV has a ``record_id`` column and either ``probability`` (binary: P(positive)) or ``probability_0`` ...
``probability_{K-1}`` (multiclass; each row sums to 1). It must name every training item of the run and
nothing else: a row for an item the run keeps for validation or test means the file's model may have
been fitted on it, and its probability would carry that item's label into training. The probabilities of
training items should come from a model that did not see the item either (cross-fitting, out-of-fold),
or they are close to the labels themselves; the file cannot show that, so its maker must.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tsmoe.errors import DataError, where

ID = "record_id"


def is_teacher_file(source: str | Path) -> bool:
    """A ``distill_from`` entry names a probability file (rather than a run folder) by its ``.csv`` suffix."""
    return Path(source).suffix.lower() == ".csv"


def read_teacher_file(path: str | Path, train_ids: np.ndarray, n_classes: int) -> torch.Tensor:
    """Probabilities in the order of ``train_ids`` (the run's training items): ``(N,)`` for two classes,
    ``(N, K)`` for more. Every check runs before a tensor is made."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"teacher file '{path}' does not exist")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)  # cells as written, for the messages
    columns = ["probability"] if n_classes == 2 else [f"probability_{k}" for k in range(n_classes)]
    missing = [c for c in [ID, *columns] if c not in table.columns]
    if missing:
        raise DataError(f"{where(path)}: no column {', '.join(map(repr, missing))} (it has {list(table.columns)})")
    ids = table[ID].str.strip()
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise DataError(f"{where(path, ID, int(repeated.index[0]) + 1)}: record {repeated.iloc[0]!r} appears twice")
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataError(
            f"{where(path, columns[col], row + 1)}: {table[columns[col]].iloc[row]!r} is not a probability in [0, 1]"
        )
    if n_classes > 2:
        off = np.abs(values.sum(1) - 1) > 1e-4
        if off.any():
            row = int(np.argmax(off))
            raise DataError(f"{where(path, row=row + 1)}: the probabilities sum to {values[row].sum():.6f}, not 1")
    wanted = pd.Index(np.asarray(train_ids).astype(str))
    extra = ids[~ids.isin(wanted)]
    if len(extra):
        raise DataError(
            f"{where(path)}: {len(extra)} row(s) name records that are not training items of this run (first: "
            f"{extra.iloc[0]!r}); a teacher file may hold the training items only, never validation or test ones"
        )
    absent = wanted[~wanted.isin(ids)]
    if len(absent):
        raise DataError(
            f"{where(path)}: {len(absent)} training record(s) have no row (first: {absent[0]!r}); "
            "the file needs a probability for every training item"
        )
    order = pd.Series(np.arange(len(ids)), index=ids.to_numpy())[wanted].to_numpy()
    probabilities = torch.as_tensor(values[order], dtype=torch.float32)
    return probabilities[:, 0] if n_classes == 2 else probabilities
