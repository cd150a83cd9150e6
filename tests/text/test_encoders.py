"""Text encoders: null texts, truncation with a warning, bad items refused, the cache, and MiniLM loaded
offline from its wheel giving embeddings that carry meaning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tsmoe.errors import DataError
from tsmoe.text import EmbeddingCache, HashingEncoder, MiniLMEncoder


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.mark.parametrize("make", [lambda: HashingEncoder(dim=16), MiniLMEncoder])
def test_null_texts_are_a_defined_empty_signal(make):
    encoder = make()
    for encoded in encoder.encode(["", "   ", None, float("nan")]):
        assert encoded.tokens.shape == (0, encoder.dim)
        assert not encoded.pooled.any()


def test_non_string_text_is_refused_naming_the_item():
    with pytest.raises(DataError, match="item 1: text must be a string or None, got int 7"):
        HashingEncoder().encode(["fine", 7])


def test_hashing_encoder_is_deterministic_and_truncates_with_a_warning(caplog):
    encoder = HashingEncoder(dim=16, max_tokens=5)
    with caplog.at_level(logging.WARNING):
        (first,) = encoder.encode(["one two three four five six seven"])
    assert first.tokens.shape == (5, 16)
    assert "1 text(s) longer than 5 tokens (the longest has 7) were truncated" in caplog.text
    (again,) = HashingEncoder(dim=16, max_tokens=5).encode(["one two three four five six seven"])
    np.testing.assert_array_equal(first.tokens, again.tokens)


def test_minilm_loads_offline_and_embeds_meaning(minilm, caplog):
    texts = ["Influenza cases rose sharply this week.", "Flu infections increased a lot this week.",
             "The stock market closed lower on Friday."]  # fmt: skip
    encoded = minilm.encode(texts)
    pooled = np.stack([e.pooled for e in encoded])
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    similar, unrelated = pooled[0] @ pooled[1], pooled[0] @ pooled[2]
    assert similar > 0.6 > unrelated, (similar, unrelated)
    assert encoded[0].tokens.shape[1] == 384 and 5 < len(encoded[0].tokens) < 20
    with caplog.at_level(logging.WARNING):
        (long,) = minilm.encode(["word " * 400])
    assert long.tokens.shape == (256, 384) and "truncated to the first 256" in caplog.text


def test_minilm_encodes_a_text_the_same_whatever_is_encoded_with_it(minilm):
    """A text's states must not depend on the other texts of the call (a padded batch changes their last
    bits), or the cache, and so a run's results, would depend on what was encoded first."""
    texts = ["Ozone fell.", "Hospital visits for influenza-like illness rose for the third week in a row, "
             "with the largest increases among children and in the southern states.", "Rain was heavy."]  # fmt: skip
    together = minilm.encode(texts)
    for text, encoded in zip(texts, together, strict=True):
        (alone,) = minilm.encode([text])
        np.testing.assert_array_equal(alone.tokens, encoded.tokens)
        np.testing.assert_array_equal(alone.pooled, encoded.pooled)
    (reversed_last,) = minilm.encode(texts[::-1])[-1:]
    np.testing.assert_array_equal(reversed_last.tokens, together[0].tokens)


def test_cache_encodes_each_text_once_and_gives_the_same_arrays(tmp_path, minilm):
    cache = EmbeddingCache(minilm, folder=tmp_path)
    texts = ["Rainfall was above average.", "", "Rainfall was above average.", "Ozone levels fell."]
    first = cache.encode(texts)
    assert (cache.hits, cache.misses) == (0, 3)
    assert len(list(tmp_path.rglob("*.npz"))) == 2
    second = EmbeddingCache(minilm, folder=tmp_path).encode(texts)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.pooled, b.pooled)


def test_cache_keys_depend_on_the_encoder(tmp_path):
    small, large = EmbeddingCache(HashingEncoder(dim=8), tmp_path), EmbeddingCache(HashingEncoder(dim=16), tmp_path)
    assert small.path("x") != large.path("x")
    assert small.encode(["x"])[0].pooled.shape == (8,) and large.encode(["x"])[0].pooled.shape == (16,)


def test_unreadable_entry_is_encoded_again(tmp_path):
    cache = EmbeddingCache(HashingEncoder(dim=8), tmp_path)
    expected = cache.encode(["hello"])[0]
    cache.path("hello").write_bytes(b"truncated")
    again = EmbeddingCache(HashingEncoder(dim=8), tmp_path)
    np.testing.assert_array_equal(again.encode(["hello"])[0].pooled, expected.pooled)
    assert again.misses == 1
