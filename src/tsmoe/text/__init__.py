"""Text encoders behind one interface, and the on-disk cache of what they produced."""

from tsmoe.text.cache import EmbeddingCache
from tsmoe.text.encoders import EncodedText, HashingEncoder, MiniLMEncoder, TextEncoder
from tsmoe.text.hf import HFEncoder
from tsmoe.text.registry import get_encoder

__all__ = [
    "EmbeddingCache",
    "EncodedText",
    "HFEncoder",
    "HashingEncoder",
    "MiniLMEncoder",
    "TextEncoder",
    "get_encoder",
]
