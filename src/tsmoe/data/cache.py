"""A cache of parsed arrays on disk, keyed by a hash of the source files.

Entries are ``.npz`` files read with ``allow_pickle=False`` (never unpickled) and written atomically:
to a temporary file in the same folder, then renamed, so a reader sees a whole entry or none, also when
two processes fill the same entry at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from tsmoe.io import atomic_write_bytes
from tsmoe.paths import cache_dir

# bump when the layout of a cached entry, or a rule that makes one, changes (2: values beyond float32 refused;
# 3: static text columns as indicators; 4: a table read to predict keeps its steps' own times; 5: times beyond
# float32's range since the start refused)
CACHE_FORMAT = 5


def hash_files(paths: Iterable[Path], extra: str = "") -> str:
    """SHA-256 over the bytes of ``paths`` (in the order given) and an ``extra`` tag."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}:{extra}".encode())
    for path in paths:
        digest.update(str(Path(path).name).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def cached_arrays(namespace: str, key: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``namespace/key``, building and storing them on a miss."""
    path = cache_dir() / namespace / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except (ValueError, OSError, KeyError):
            path.unlink(missing_ok=True)  # unreadable entry: rebuild it
    arrays = build()
    atomic_write_bytes(path, lambda handle: np.savez(handle, **arrays))
    return arrays
