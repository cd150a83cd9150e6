"""Scale-out is Lightning's: the same recipe trains with strategy=ddp on 2 CPU processes (gloo backend).

The command is run as a user would, through ``tsmoe train``; Lightning re-launches it for the second
process. Both processes see half the training windows each epoch, so after the same number of epochs
the model must reach the same test quality as one process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TSMOE = str(Path(sys.executable).with_name("tsmoe"))
COMMON = [
    "--set",
    "training.max_epochs=4",
    "--set",
    "training.lr=0.001",
    "--set",
    "training.patience=4",
    "--set",
    "trainer.accelerator=cpu",
]


def train(out: Path, *extra: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [TSMOE, "train", "configs/dlinear-etth1.yaml", "--out", str(out), *COMMON, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    single = train(tmp_path / "one")
    ddp = train(tmp_path / "ddp", "--set", "trainer.strategy=ddp", "--set", "trainer.devices=2")
    meta = json.loads((tmp_path / "ddp" / "meta.json").read_text())
    assert meta["world_size"] == 2
    assert abs(ddp["mse"] - single["mse"]) / single["mse"] < 0.05, (single, ddp)
    assert ddp["mse"] < 0.42  # a trained DLinear, not an untrained one (about 0.39 at horizon 96)
