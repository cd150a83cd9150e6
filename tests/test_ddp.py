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


def train(out: Path, *extra: str, recipe: str = "configs/dlinear-etth1.yaml") -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [TSMOE, "train", recipe, "--out", str(out), *COMMON, *extra],
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


DDP = ("--set", "trainer.strategy=ddp", "--set", "trainer.devices=2", "--set", "training.max_epochs=1")


@pytest.mark.slow
def test_ddp_trains_a_model_of_irregular_input(tmp_path, small_physionet):
    tiny = ["model.hidden_size=8", "model.d_model=8", "model.backbone_units=8", "data.split_file=null",
            f"data.root={small_physionet}"]  # fmt: skip
    metrics = train(tmp_path / "mrmoe", *DDP, *[a for s in tiny for a in ("--set", s)],
                    recipe="configs/mrmoe-physionet2012.yaml")  # fmt: skip
    assert json.loads((tmp_path / "mrmoe" / "meta.json").read_text())["world_size"] == 2
    assert 0.0 <= metrics["auroc"] <= 1.0


@pytest.mark.slow
def test_ddp_trains_a_model_that_reads_text(tmp_path):
    # every parameter of MoME takes part in the loss, so DDP needs no find_unused_parameters
    metrics = train(tmp_path / "mome", *DDP, "--set", "data.text_encoder=hashing", "--set", "data.domain=Energy",
                    recipe="configs/mome-mome_timemmd.yaml")  # fmt: skip
    assert json.loads((tmp_path / "mome" / "meta.json").read_text())["world_size"] == 2
    assert metrics["mse"] > 0 and metrics["mse"] == metrics["mse"]
