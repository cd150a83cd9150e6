"""The models and their registry (:mod:`tsmoe.models.registry`)."""

from tsmoe.models.entry import ModelEntry
from tsmoe.models.registry import MODELS, build_model, get_model, register

__all__ = ["MODELS", "ModelEntry", "build_model", "get_model", "register"]
