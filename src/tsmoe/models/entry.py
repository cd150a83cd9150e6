"""What the registry knows of a model: its class, its hyperparameters, the input it reads, the tasks it does."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """One registered model. ``cls(params, dims, task)`` builds it; ``params`` is the dataclass of its
    ``model`` config keys; ``input_kind`` is ``"irregular"`` or ``"window"`` (the batches it reads). A
    model of irregular records with ``forecasts_windows`` also forecasts windows, through
    :class:`tsmoe.models.window_forecaster.WindowForecaster`."""

    name: str
    cls: type[nn.Module]
    params: type
    input_kind: str
    tasks: frozenset[str]
    description: str
    forecasts_windows: bool = False

    @property
    def input_kinds(self) -> tuple[str, ...]:
        """Every kind of batch the model reads."""
        return (self.input_kind, "window") if self.forecasts_windows else (self.input_kind,)
