"""Two processes filling the same cache at the same moment (DDP ranks, or two runs) leave it consistent:
each gets the same arrays a lone process gets, every entry reads back whole, no temporary file stays."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np

TEXTS = [f"week {i}: influenza-like illness {'rose' if i % 2 else 'fell'} in region {i % 7}" for i in range(300)]


def _encode_texts(cache: str, start, order: int, queue) -> None:
    os.environ["TSMOE_CACHE"] = cache
    from tsmoe.text import EmbeddingCache, HashingEncoder

    texts = TEXTS if order == 0 else TEXTS[::-1]  # the two processes meet in the middle, then cross
    start.wait()
    encoded = EmbeddingCache(HashingEncoder(dim=32)).encode(texts)
    pooled = np.stack([e.pooled for e in encoded])
    queue.put((order, pooled if order == 0 else pooled[::-1]))


def _load_stays(cache: str, root: str, start, order: int, queue) -> None:
    os.environ["TSMOE_CACHE"] = cache
    from tsmoe.data.sources.physionet2012 import load_physionet2012

    start.wait()
    data = load_physionet2012(root)
    queue.put((order, (data.values, data.times, data.labels)))


def run_two(target, *args) -> list:
    context = mp.get_context("spawn")
    start, queue = context.Barrier(2), context.Queue()
    processes = [context.Process(target=target, args=(*args, start, order, queue)) for order in (0, 1)]
    for process in processes:
        process.start()
    results = dict(queue.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return [results[0], results[1]]


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_text_embedding_cache_filled_by_two_processes_at_once(tmp_path):
    first, second = run_two(_encode_texts, str(tmp_path))
    np.testing.assert_array_equal(first, second)
    entries = list(tmp_path.rglob("*.npz"))
    assert len(entries) == len(set(TEXTS)) and no_temporary_files(tmp_path)

    from tsmoe.text import EmbeddingCache, HashingEncoder

    cache = EmbeddingCache(HashingEncoder(dim=32), folder=entries[0].parents[1])
    again = cache.encode(TEXTS)  # every entry reads back whole, and equals a fresh encoding
    assert cache.hits == len(TEXTS) and cache.misses == 0
    fresh = HashingEncoder(dim=32).encode(TEXTS)
    np.testing.assert_array_equal(np.stack([e.pooled for e in again]), np.stack([e.pooled for e in fresh]))


def test_data_cache_filled_by_two_processes_at_once(tmp_path, small_physionet):
    first, second = run_two(_load_stays, str(tmp_path), str(small_physionet))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(list(tmp_path.rglob("*.npz"))) == 1 and no_temporary_files(tmp_path)
