"""``tsmoe train configs/mrmoe-etth1.yaml`` end to end with tiny settings: MR-MoE trains on ETTh1 windows,
and a forecast from a user's file integrates the gaps between its rows (the same rows with a hole in their
timestamps give another forecast)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tsmoe.cli import main
from tsmoe.data.sources.ett import load_ett

TINY = ["data.lookback=24", "data.horizon=6", "model.channels=joint", "model.hidden_size=4",
        "model.backbone_units=8", "model.d_model=8", "training.max_epochs=1", "trainer.accelerator=cpu"]  # fmt: skip


@pytest.mark.slow
def test_mrmoe_trains_on_etth1_windows_and_forecasts_a_file_with_a_hole(tmp_path):
    run = tmp_path / "mrmoe"
    assert main(["train", "configs/mrmoe-etth1.yaml", "--out", str(run), *[f"--set={s}" for s in TINY]]) == 0
    assert set(json.loads((run / "metrics.json").read_text())) >= {"mse", "mae"}
    data = load_ett()
    series = data.series[0]
    frame = pd.DataFrame(series.values[-24:], columns=data.columns)
    frame.insert(0, "date", pd.to_datetime(series.timestamps[-24:]))
    regular, holed = tmp_path / "regular.csv", tmp_path / "holed.csv"
    frame.to_csv(regular, index=False)
    frame.loc[frame.index[12:], "date"] += pd.Timedelta(hours=6)  # the same values, six hours missing mid-way
    frame.to_csv(holed, index=False)
    assert main(["predict", str(run), str(regular), "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(run), str(holed), "-o", str(tmp_path / "b.csv")]) == 0
    plain, with_hole = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert len(plain) == len(with_hole) == 6
    assert (plain["OT"] - with_hole["OT"]).abs().max() > 1e-6  # the same rows, read with the hole's longer step
