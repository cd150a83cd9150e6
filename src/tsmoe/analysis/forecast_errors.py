"""A forecaster's test windows read back for the report: the error at each step ahead, and the forecasts
over the first series' test period beside what happened.

Both on the scale the model forecasts (z-scores of the training split for series; a window's own values for
fixed windows), as the fan plot: the errors of every target channel, the plot of the first.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from tsmoe.data.windows import WindowDataset
from tsmoe.models.output import unpack


@torch.no_grad()
def forecasts_of_test_part(model: torch.nn.Module, prepared) -> tuple[np.ndarray, np.ndarray]:
    """``(forecasts, targets)``, each ``(N, H, T)``: the test windows' forecasts of the target channels (a
    quantile forecaster's median) and what came, on the model's scale."""
    channels = prepared.target_channels or [0]
    outputs, targets = [], []
    for batch in DataLoader(prepared.test, batch_size=256, collate_fn=prepared.collate):
        output = unpack(model(batch))[0].double()
        outputs.append(output.reshape(len(output), output.shape[1], -1)[..., channels if output.dim() > 2 else [0]])
        y = batch["y"].double()
        targets.append(y.reshape(len(y), y.shape[1], -1)[..., channels if y.dim() > 2 else [0]])
    return torch.cat(outputs).numpy(), torch.cat(targets).numpy()


def errors_by_step(forecasts: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSE and MAE ``(H,)`` at each step ahead, over windows and target channels."""
    error = forecasts - targets
    return (error**2).mean(axis=(0, 2)), np.abs(error).mean(axis=(0, 2))


def first_series_path(prepared, forecasts: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray] | None:
    """The first series' test period for the first target channel: the rows' times (``x``), what happened
    (``actual``), and the forecasts made one step ahead and ``H`` steps ahead of each row (``first``,
    ``last``; NaN where no window forecast that row so). None for windows without places in a series."""
    windows = getattr(prepared.test, "windows", prepared.test)
    if not isinstance(windows, WindowDataset):
        return None
    own = np.flatnonzero(windows.item_series() == 0)
    if not len(own):
        return None
    starts, horizon = windows.target_starts()[own], forecasts.shape[1]
    rows = np.arange(starts[0], starts[-1] + horizon)  # every target row of the series' test windows
    actual, first, last = (np.full(len(rows), np.nan) for _ in range(3))
    for window, start in zip(own, starts, strict=True):
        place = start - rows[0]
        actual[place : place + horizon] = targets[window, :, 0]
        first[place] = forecasts[window, 0, 0]
        last[place + horizon - 1] = forecasts[window, -1, 0]
    return {"x": windows.timestamps[0][rows], "actual": actual, "first": first, "last": last}
