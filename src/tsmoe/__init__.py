"""tsmoe: mixture-of-experts models of time series.

The public entry points are the estimator (:class:`tsmoe.Estimator`), the deep ensemble of saved runs
(:class:`tsmoe.Ensemble`), the data loaders in
:mod:`tsmoe.data`, the model registry in :mod:`tsmoe.models` and the ``tsmoe`` command.
"""

from tsmoe.errors import ConfigError, DataError, TsmoeError
from tsmoe.version import __version__

__all__ = ["ConfigError", "DataError", "Ensemble", "Estimator", "TsmoeError", "__version__"]


def __getattr__(name: str):  # lazy: importing tsmoe must not import torch/lightning
    if name == "Estimator":
        from tsmoe.estimator import Estimator

        return Estimator
    if name == "Ensemble":
        from tsmoe.ensemble import Ensemble

        return Ensemble
    raise AttributeError(name)
