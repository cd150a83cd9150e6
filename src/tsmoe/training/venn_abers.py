"""Venn-Abers calibration (Vovk and Petej 2014; inductive form: Vovk, Petej and Fedorova 2015): a binary
classifier's score turned into a pair of probabilities ``[p0, p1]`` that contains a calibrated one.

From ``n`` validation items with scores ``s_i`` (the model's probabilities) and labels ``y_i``, a new item
with score ``s`` gets

    p0(s) = g0(s),  g0 the isotonic regression of  {(s_i, y_i)} + {(s, 0)}
    p1(s) = g1(s),  g1 the isotonic regression of  {(s_i, y_i)} + {(s, 1)}

so ``p0 <= p1``. Where validation and new items are exchangeable, one of the two is perfectly calibrated
(the theorem of Vovk and Petej); the pair's width ``p1 - p0`` says how much the ``n`` items can tell about a
score like ``s`` (wide where few items fall near it, as at the rare high risks). One probability for a
decision is ``p = p1 / (1 - p0 + p1)``, the log-loss-optimal merge (Vovk et al. 2015), which lies in
``[p0, p1]``. Both bounds and ``p`` are non-decreasing in ``s``, so the ranking (AUROC) is kept but for ties.

The validation items must be independent draws, as the new item is. A per-step run's labelled steps are
not: one entity's steps move together, and a map made from all of them is as sure as if every step were a
new entity (P7: intervals a thousandth wide, which the test's highest risks fall outside). Its map is made
from one step per validation entity, drawn at random (:func:`one_per_entity`), so its interval is that of
a random step of a new entity.

``p0`` and ``p1`` depend on ``s`` only through its place among the distinct validation scores, so they are
computed once for every place by the ``venn-abers`` package (``calc_p0p1``, the fast algorithm of the 2015
paper) and kept as three arrays; applying them is a binary search, done here, so a calibrated run predicts
without the package.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tsmoe.errors import ConfigError, DataError


@dataclass(frozen=True)
class VennAbers:
    """The fitted map: ``scores (k,)`` the distinct validation scores, sorted; ``low (k + 1,)`` and
    ``high (k + 1,)`` the values of ``p0`` and ``p1`` for a score at each place among them (module
    docstring)."""

    scores: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, probability: np.ndarray, target: np.ndarray) -> VennAbers:
        """From validation probabilities ``(n,)`` of the positive class and their 0/1 labels ``(n,)``."""
        probability = np.asarray(probability, dtype=np.float64)
        target = np.asarray(target)
        if len(probability) == 0 or len(np.unique(target)) < 2:
            raise DataError("Venn-Abers calibration needs validation items of both classes")
        calc_p0p1 = _calc_p0p1()
        pairs = np.stack([1.0 - probability, probability], axis=1)
        # the package divides by zero and takes minima of all-NaN slices on purpose: its warnings are noise
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p0, p1, scores = calc_p0p1(pairs, target.astype(np.int64))
        return cls(np.asarray(scores, np.float64), np.asarray(p0[:, 1], np.float64), np.asarray(p1[:, 1], np.float64))

    def bounds(self, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p0, p1)`` for scores ``(N,)``: ``p0`` from the scores' places counting ties with validation
        scores as below them, ``p1`` as above (the item's own label then breaks the tie, as in the fit)."""
        probability = np.asarray(probability, dtype=np.float64)
        low = self.low[np.searchsorted(self.scores, probability, side="right")]
        high = self.high[np.searchsorted(self.scores, probability, side="left")]
        return low + 0.0, high + 0.0  # + 0.0: a -0.0 of the fit is 0.0 (a table would print "-0.0")

    def probability(self, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p, p0, p1)`` for scores ``(N,)``: the merged probability ``p1 / (1 - p0 + p1)`` and the bounds."""
        low, high = self.bounds(probability)
        return high / (1.0 - low + high), low, high

    def arrays(self) -> dict[str, np.ndarray]:
        """The map as named arrays (a run's ``calibration.safetensors``)."""
        return {"scores": self.scores, "low": self.low, "high": self.high}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> VennAbers:
        return cls(arrays["scores"], arrays["low"], arrays["high"])


def one_per_entity(entity: np.ndarray, seed: int) -> np.ndarray:
    """Sorted positions of one item per distinct value of ``entity (N,)``, drawn uniformly at random from
    that entity's items with a generator seeded by ``seed`` (the same items every time)."""
    shuffled = np.random.default_rng(seed).permutation(len(entity))
    _, first = np.unique(entity[shuffled], return_index=True)
    return np.sort(shuffled[first])


def _calc_p0p1():
    """The ``venn-abers`` package's ``calc_p0p1``, imported with numpy's error settings kept (the package
    changes them for the whole process when it is imported)."""
    try:
        with np.errstate():
            from venn_abers import calc_p0p1
    except ImportError as error:
        raise ConfigError(
            "Venn-Abers calibration needs the venn-abers package: pip install 'tsmoe[calibrate]'"
        ) from error
    return calc_p0p1
