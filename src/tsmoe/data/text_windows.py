"""Forecast windows that carry text: the series part, and each window's encoded text.

Texts are encoded once per distinct text, through the on-disk :class:`~tsmoe.text.EmbeddingCache`, and
held as a table the windows index into. A batch holds:

- ``x (B, L, C)`` and ``y (B, H, C)``: the windows on their original scale (the models normalise each
  window by its own input, as the MoME protocol does);
- ``scale (B, 1, C)``: the input window's standard deviation (floored), so the training loss is the
  MSE on the window-normalised scale, as the reference code trains;
- ``text_tokens (B, T, D)``, ``text_mask (B, T)`` (True where a token is), ``text_pooled (B, D)``:
  the encoded text, padded to the longest in the batch. A window without text has no tokens.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from tsmoe.data.series import SeriesSet
from tsmoe.data.text import DatedTexts
from tsmoe.data.windows import WindowDataset
from tsmoe.errors import DataError
from tsmoe.text import EmbeddingCache, EncodedText, get_encoder

SCALE_FLOOR = 1e-3  # the MoME reference code's floor on a window's standard deviation


TREND_CLASSES = ("down", "flat", "up")


def trend_labels(inputs: np.ndarray, targets: np.ndarray, threshold: float) -> np.ndarray:
    """Trend class of each window (0 down, 1 flat, 2 up): the change from the last input value to the mean
    of the target window, in units of the input window's standard deviation (floored as for the loss),
    compared with ``+-threshold``. ``inputs (N, L)``, ``targets (N, H)`` -> ``(N,)``."""
    scale = np.maximum(inputs.std(axis=1), SCALE_FLOOR)
    change = (targets.mean(axis=1) - inputs[:, -1]) / scale
    return np.where(change > threshold, 2, np.where(change < -threshold, 0, 1)).astype(np.int64)


def encode_texts(texts: list[str], encoder: str, **options) -> tuple[list[EncodedText], np.ndarray]:
    """Encode each distinct text once (cached on disk): ``(table, index (N,))`` with ``texts[i]``
    encoded as ``table[index[i]]``."""
    distinct: dict[str, int] = {}
    index = np.array([distinct.setdefault(t, len(distinct)) for t in texts], dtype=np.int64)
    table = EmbeddingCache(get_encoder(encoder, **options)).encode(list(distinct))
    return table, index


class WindowFacts:
    """The encoded text of each window that sees several dated facts, in one of two forms:

    - joined (the default): the facts joined one per line and encoded as one text, which the encoder's
      length limit (MiniLM: 256 word pieces) cuts at its end;
    - ``each_fact``: every fact encoded on its own (once per distinct fact, through the cache), and a
      window's token states the facts' token states one after another, ``(T_1 + ... + T_k, D)``, so no
      fact is cut by another; its pooled vector is the L2-normalised mean of the facts' pooled vectors.

    ``facts[i]`` is window ``i``'s facts in the order the model reads them; ``texts[i]`` the same joined
    one per line (what the window sees); ``window(i)`` its :class:`EncodedText` (no facts: the null text).
    """

    def __init__(self, facts: list[tuple[str, ...]], encoder: str, each_fact: bool = False, **options) -> None:
        self.texts = ["\n".join(window) for window in facts]
        if each_fact:  # parts[i]: indices into the table of distinct facts
            flat = [fact for window in facts for fact in window]
            self.table, index = encode_texts(flat, encoder, **options)
            bounds = np.cumsum([0, *map(len, facts)])
            self.parts = [tuple(index[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        else:
            self.table, index = encode_texts(self.texts, encoder, **options)
            self.parts = [(int(i),) for i in index]
        self.null = get_encoder(encoder, **options).null()

    @property
    def dim(self) -> int:
        """D, the encoder's width."""
        return len(self.null.pooled)

    def window(self, item: int) -> EncodedText:
        parts = [self.table[i] for i in self.parts[item]]
        if len(parts) == 1:  # joined facts, or a single fact: as encoded
            return parts[0]
        if not parts:
            return self.null
        pooled = np.mean([p.pooled for p in parts], axis=0)
        pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
        return EncodedText(np.concatenate([p.tokens for p in parts]), pooled.astype(np.float32))


class TextWindowDataset(Dataset):
    """Windows ``inputs (N, L, C)`` -> ``targets (N, H, C)`` with text ``table[index[i]]`` (or none)."""

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        table: list[EncodedText] | None = None,
        index: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        if inputs.ndim == 2:  # univariate windows (N, L) -> (N, L, 1)
            inputs, targets = inputs[..., None], targets[..., None]
        if len(inputs) != len(targets) or (index is not None and len(index) != len(inputs)):
            raise DataError(
                f"text windows: {len(inputs)} inputs, {len(targets)} targets and "
                f"{len(index) if index is not None else 'no'} texts; they must be as many"
            )
        self.inputs = torch.as_tensor(inputs, dtype=torch.float32)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.scale = self.inputs.std(dim=1, unbiased=False, keepdim=True).clamp(min=SCALE_FLOOR)
        self.table, self.index = table, index
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        out = {"x": self.inputs[item], "y": self.targets[item], "scale": self.scale[item]}
        if self.labels is not None:
            out["target"] = self.labels[item]
        if self.table is not None:
            encoded = self.table[int(self.index[item])]
            out["text_tokens"] = torch.from_numpy(encoded.tokens)
            out["text_pooled"] = torch.from_numpy(encoded.pooled)
        return out


class AlignedTextWindows(Dataset):
    """Windows of a :class:`WindowDataset` with the text each may see under the leakage rule (P3).

    The text of a window whose first forecast step is at time ``t`` is the ``k`` most recent texts of its
    series dated strictly before ``t`` (:meth:`DatedTexts.before`, the one place the rule lives), oldest
    first (``newest_first``: newest first, so that an encoder's length limit cuts the oldest), joined one
    per line or each encoded on its own (``each_fact``; see :class:`WindowFacts`); a window with none
    visible gets the null text.
    """

    def __init__(self, windows: WindowDataset, data: SeriesSet, ranges: list[tuple[int, int]], k: int,
                 encoder: str, newest_first: bool = False, each_fact: bool = False, **options) -> None:  # fmt: skip
        self.windows = windows
        self.encoded = WindowFacts(window_facts(data, windows, ranges, k, newest_first), encoder, each_fact, **options)
        self.texts = self.encoded.texts  # what each window sees, one fact per line

    def __len__(self) -> int:
        return len(self.windows)

    def item_series(self) -> np.ndarray:
        """``(N,)``: the series of each window (:meth:`WindowDataset.item_series`)."""
        return self.windows.item_series()

    def target_starts(self) -> np.ndarray:
        """``(N,)``: where each window's target begins (:meth:`WindowDataset.target_starts`)."""
        return self.windows.target_starts()

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        encoded = self.encoded.window(item)
        return {**self.windows[item], "text_tokens": torch.from_numpy(encoded.tokens),
                "text_pooled": torch.from_numpy(encoded.pooled)}  # fmt: skip


def dated_tables(data: SeriesSet) -> dict[str, DatedTexts]:
    """Each series' texts (``data.texts[name] = (timestamps, texts)``) as a :class:`DatedTexts`, null texts
    left out (they carry nothing, and a window then sees fewer texts)."""
    tables = {}
    for name, (stamps, texts) in data.texts.items():
        kept = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
        order = sorted(kept, key=lambda i: stamps[i])
        tables[name] = DatedTexts(
            np.asarray(stamps)[order].astype("datetime64[ns]"), tuple(texts[i] for i in order), ("",) * len(order)
        )
    return tables


def visible_facts(
    table: DatedTexts | None, forecast_start: object, k: int, newest_first: bool = False
) -> tuple[str, ...]:
    """The texts a forecast starting at ``forecast_start`` may see: the ``k`` most recent dated strictly
    before it, oldest first or ``newest_first`` (none: ``()``)."""
    if table is None:
        return ()
    texts = table.before(np.asarray(forecast_start).astype("datetime64[ns]"), k)
    return tuple(reversed(texts) if newest_first else texts)


def window_facts(
    data: SeriesSet, windows: WindowDataset, ranges: list[tuple[int, int]], k: int, newest_first: bool = False
) -> list[tuple[str, ...]]:
    """The visible facts of every window of ``windows`` (whose series ``i`` covers rows ``ranges[i]``)."""
    tables = dated_tables(data)
    out = []
    for series_index, start in windows.index:
        series = data.series[series_index]
        first_forecast_row = ranges[series_index][0] + start + windows.lookback
        out.append(visible_facts(tables.get(series.name), series.timestamps[first_forecast_row], k, newest_first))
    return out


def collate_text_windows(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack windows; pad token states to the longest text of the batch (``text_mask`` marks real ones)."""
    batch = {key: torch.stack([item[key] for item in items]) for key in items[0] if key != "text_tokens"}
    if "text_tokens" in items[0]:
        lengths = [len(item["text_tokens"]) for item in items]
        width = items[0]["text_tokens"].shape[-1]
        tokens = torch.zeros(len(items), max(max(lengths), 1), width)
        mask = torch.zeros(len(items), tokens.shape[1], dtype=torch.bool)
        for i, (item, n) in enumerate(zip(items, lengths, strict=True)):
            tokens[i, :n] = item["text_tokens"]
            mask[i, :n] = True
        batch.update(text_tokens=tokens, text_mask=mask)
    return batch
