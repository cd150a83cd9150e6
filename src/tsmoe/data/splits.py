"""Train/validation/test splits: stratified by label (classification) or chronological (forecasting)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsmoe.errors import DataError


def id_array(ids: list) -> np.ndarray:
    """Record IDs as an array: whole numbers (PhysioNet's RecordIDs) as int64, any other as text."""
    if all(isinstance(i, int | np.integer) for i in ids):
        return np.array(ids, dtype=np.int64)
    return np.array([str(i) for i in ids])


def id_key(record: object) -> int | str:
    """One record ID as a dictionary key: ``7`` and ``np.int64(7)`` alike, text as text."""
    return int(record) if isinstance(record, int | np.integer) else str(record)


@dataclass(frozen=True)
class IdSplit:
    """Record IDs of each part (whole numbers or text). Written to and read from a JSON file so every
    model sees the same one."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int | None = None

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "train": self.train.tolist(),
            "val": self.val.tolist(),
            "test": self.test.tolist(),
        }

    @classmethod
    def read(cls, path: str | Path) -> IdSplit:
        try:
            raw = json.loads(Path(path).read_text())
            return cls(
                train=id_array(raw["train"]),
                val=id_array(raw["val"]),
                test=id_array(raw["test"]),
                seed=raw.get("seed"),
            )
        except FileNotFoundError:
            raise DataError(f"split file '{path}' does not exist") from None
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"file '{path}': not a split file with train/val/test ID lists ({error})") from None

    def indices_in(self, ids: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of this split's IDs within ``ids``; every ID must be present."""
        position = {id_key(record): i for i, record in enumerate(ids)}
        parts = []
        for part_name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            missing = [id_key(r) for r in part if id_key(r) not in position]
            if missing:
                raise DataError(
                    f"{len(missing)} {part_name} ID(s) of the split are not in {source}, e.g. {missing[:5]}: "
                    "use the split made for that data, or evaluate with split 'all'"
                )
            parts.append(np.array([position[id_key(r)] for r in part], dtype=np.int64))
        return parts[0], parts[1], parts[2]


def stratified_split(ids: np.ndarray, labels: np.ndarray, fractions: tuple[float, float, float], seed: int) -> IdSplit:
    """Split ``ids`` into train/val/test with ``fractions``, keeping each label's share in every part."""
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise DataError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list] = [[], [], []]
    for label in np.unique(labels):
        members = ids[labels == label].copy()
        rng.shuffle(members)
        n_train = int(round(fractions[0] * len(members)))
        n_val = int(round(fractions[1] * len(members)))
        parts[0] += members[:n_train].tolist()
        parts[1] += members[n_train : n_train + n_val].tolist()
        parts[2] += members[n_train + n_val :].tolist()
    return IdSplit(*(id_array(sorted(p)) if p else ids[:0] for p in parts), seed=seed)


def chronological_borders(length: int, fractions: tuple[float, float, float], lookback: int) -> list[tuple[int, int]]:
    """Row ranges ``[(start, end)] * 3`` of a series split in time order.

    Validation and test ranges start ``lookback`` rows before their border, so their first window's
    forecast starts right at the border (as in the Informer/Autoformer data code); targets never overlap.
    """
    n_train = int(length * fractions[0])
    n_test = int(length * fractions[2])
    n_val = length - n_train - n_test
    return borders_from_lengths(length, (n_train, n_val, n_test), lookback)


def borders_from_lengths(length: int, lengths: tuple[int, int, int], lookback: int) -> list[tuple[int, int]]:
    """Like :func:`chronological_borders` but with row counts per part (e.g. ETT's 12/4/4 months)."""
    n_train, n_val, n_test = lengths
    if n_train + n_val + n_test > length:
        raise DataError(f"split lengths {lengths} exceed the series length {length}")
    return [
        (0, n_train),
        (max(n_train - lookback, 0), n_train + n_val),
        (max(n_train + n_val - lookback, 0), n_train + n_val + n_test),
    ]


def same_items(split: dict, other: dict) -> bool:
    """Two split records (a run's ``split.json``) hold the same train, validation and test items; the
    seed that drew a split is not part of it."""

    def items(record: dict) -> dict:
        return {key: value for key, value in record.items() if key != "seed"}

    return items(split) == items(other)
