"""The model registry and the built-in models (importing this package registers them)."""

from tsmoe.models import dlinear, itransformer, lstm, mome, mrmoe, patchtst  # noqa: F401
from tsmoe.models.registry import MODELS, build_model, get_model, register

__all__ = ["MODELS", "build_model", "get_model", "register"]
