"""Models by name: each registered class declares its hyperparameters, its input kind and its tasks.

A model is a pure ``torch.nn.Module`` built as ``cls(params, dims, task)`` and called as
``model(batch) -> output``: logits ``(B,)`` for binary, ``(B, n_classes)`` for multiclass, forecasts
``(B, horizon, n_channels)`` for forecasting. It never reads files or knows about Lightning.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from torch import nn

from tsmoe.errors import ConfigError
from tsmoe.models import dlinear, itransformer, lstm, mitransformer, mmlinear, mome, mrmoe, patchtst
from tsmoe.models.entry import ModelEntry
from tsmoe.models.quantiles import QuantileForecaster, check_quantiles
from tsmoe.models.window_forecaster import WindowForecaster, WindowOptions, check_record_input
from tsmoe.params import build_dataclass

MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for module in (lstm, mrmoe, dlinear, patchtst, itransformer, mome, mmlinear, mitransformer)
    for entry in module.ENTRIES
}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model of one's own to the registry (by its entry's name); configs and the CLI then find it."""
    if entry.name in MODELS and MODELS[entry.name] != entry:
        raise ConfigError(f"a model named '{entry.name}' is already registered")
    MODELS[entry.name] = entry
    return entry


def get_model(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def check_counts_and_sizes(params: Any) -> None:
    """Every integer setting of a model (widths, layers, experts, heads, patch lengths, strides, top-k)
    is a count or a size: one below 1 is a config error here, before it becomes a tensor of no width or a
    division by zero inside a layer."""
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, int) and not isinstance(item, bool) and item < 1:
                raise ConfigError(f"model.{field.name} is a count or a size: at least 1, got {value!r}")


def build_model(config: dict[str, Any], dims: dict[str, int], task: str, input_kind: str) -> nn.Module:
    """Build the model named in a resolved ``model`` config section for data of ``input_kind``/``task``."""
    values = dict(config)
    entry = get_model(values.pop("name"))
    quantiles = values.pop("quantiles", None)
    if input_kind not in entry.input_kinds:
        raise ConfigError(
            f"model '{entry.name}' reads {entry.input_kind} input but the data gives {input_kind} input; "
            f"models for this data: {', '.join(sorted(n for n, e in MODELS.items() if input_kind in e.input_kinds))}"
        )
    on_windows = input_kind != entry.input_kind  # a model of records forecasting windows
    if task not in entry.tasks or (on_windows and task != "forecast"):
        done = ["forecast"] if on_windows else sorted(entry.tasks)
        raise ConfigError(f"model '{entry.name}' does not do task '{task}' on {input_kind} input (it does {done})")
    params = build_dataclass(entry.params, values, "model")
    check_counts_and_sizes(params)
    if on_windows:
        model_class = partial(WindowForecaster, entry.cls)
    else:
        model_class = entry.cls
        if isinstance(params, WindowOptions):
            try:
                check_record_input(params)
            except ValueError as error:
                raise ConfigError(f"model '{entry.name}': {error}") from error
    if quantiles is not None and task != "forecast":
        raise ConfigError(f"model.quantiles is for forecasting; this data's task is '{task}'")
    try:
        if quantiles is not None:  # Q horizons, one per level (tsmoe.models.quantiles)
            levels = check_quantiles(quantiles)
            base = model_class(params, {**dims, "horizon": dims["horizon"] * len(levels)}, task)
            return QuantileForecaster(base, levels, dims["horizon"])
        return model_class(params, dims, task)
    except ConfigError:
        raise
    except ValueError as error:  # a model's own check of its parameters, e.g. experts >= 1
        raise ConfigError(f"model '{entry.name}': {error}") from error
    except (RuntimeError, MemoryError) as error:  # sizes whose weights this machine cannot hold
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"model '{entry.name}' cannot be built with these sizes ({detail})") from None
