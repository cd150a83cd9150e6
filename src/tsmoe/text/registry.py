"""Text encoders by the name a data config gives (``data.text_encoder``)."""

from __future__ import annotations

from tsmoe.errors import ConfigError
from tsmoe.text.encoders import HashingEncoder, MiniLMEncoder, TextEncoder
from tsmoe.text.hf import HFEncoder


def get_encoder(name: str, **options) -> TextEncoder:
    """``"minilm"``, ``"hashing"`` (options: ``dim``, ``max_tokens``) or ``"hf"`` (options: ``model``, ``layer``,
    ``pooling``, ``dtype``, ``device``, ``max_tokens``: :class:`tsmoe.text.hf.HFEncoder`)."""
    if name == "minilm":
        return MiniLMEncoder(**options)
    if name == "hashing":
        return HashingEncoder(**options)
    if name == "hf":
        return HFEncoder(**options)
    raise ConfigError(f"unknown text encoder '{name}'; choose 'minilm', 'hashing' or 'hf'")
