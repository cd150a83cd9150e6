"""The on-disk cache of encoded texts, keyed by encoder and text, so a text is encoded once.

One entry per (encoder name, SHA-256 of the text): ``<cache>/text/<encoder>/<2 hex>/<key>.npz`` holding
``tokens (T, D)`` and ``pooled (D,)``. Entries are written atomically (temporary file, rename), so
processes that fill the cache at once (DDP ranks, two runs) each see a whole entry or none, and an
entry written twice is written with the same bytes. Entries are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from tsmoe.io import atomic_write_bytes
from tsmoe.paths import cache_dir
from tsmoe.text.encoders import EncodedText, TextEncoder, check_texts, is_null_text


class EmbeddingCache:
    """Wraps an encoder: ``encode(texts)`` reads hits from disk and encodes only the misses.

    ``hits`` and ``misses`` count texts since creation (null texts count as neither).
    """

    def __init__(self, encoder: TextEncoder, folder: Path | None = None) -> None:
        self.encoder = encoder
        slug = re.sub(r"[^A-Za-z0-9._-]", "_", encoder.name)
        self.folder = Path(folder) if folder is not None else cache_dir() / "text" / slug
        self.hits = self.misses = 0

    def path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self.encoder.name}\0{text}".encode()).hexdigest()[:40]
        return self.folder / key[:2] / f"{key}.npz"

    def _read(self, path: Path) -> EncodedText | None:
        try:
            with np.load(path, allow_pickle=False) as entry:
                return EncodedText(entry["tokens"], entry["pooled"])
        except (FileNotFoundError, ValueError, OSError, KeyError):
            return None  # missing or unreadable: encode again and overwrite

    def encode(self, texts: list[str | None]) -> list[EncodedText]:
        check_texts(texts)
        out: list[EncodedText | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if is_null_text(text):
                out[i] = self.encoder.null()
                continue
            cached = self._read(self.path(text))
            if cached is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = cached
                self.hits += 1
        if missing:
            unique = list(missing)
            for text, encoded in zip(unique, self.encoder.encode(unique), strict=True):
                atomic_write_bytes(
                    self.path(text), lambda handle, e=encoded: np.savez(handle, tokens=e.tokens, pooled=e.pooled)
                )
                for i in missing[text]:
                    out[i] = encoded
                self.misses += len(missing[text])
        return out  # type: ignore[return-value]
