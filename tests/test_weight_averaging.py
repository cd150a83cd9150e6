"""``training.ema_decay``: an exponential moving average of the weights is what validation scores, what model
selection keeps, and what ``--resume`` continues."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tsmoe import Estimator
from tsmoe.io import read_weights

TSMOE = str(Path(sys.executable).with_name("tsmoe"))
TINY_LSTM = {"hidden_size": 8, "head_hidden": 8}


def lstm(root: Path, ema_decay: float | None) -> Estimator:
    return Estimator(
        "lstm",
        "physionet2012",
        model_params=TINY_LSTM,
        data_params={"root": str(root), "split_file": None},
        training={"max_epochs": 3, "batch_size": 32, "patience": 3, "ema_decay": ema_decay},
        trainer={"accelerator": "cpu"},
    )


def test_the_kept_model_is_the_average_that_validation_scored(small_physionet, tmp_path):
    folder = tmp_path / "ema"
    averaged = lstm(small_physionet, ema_decay=0.8).fit(run_dir=folder)
    lstm(small_physionet, ema_decay=None).fit(run_dir=tmp_path / "plain")

    # the validation stays, scored as a test split by the saved model, give the AUROC logged for the best epoch
    split = json.loads((folder / "split.json").read_text())
    val_as_test = tmp_path / "val-as-test.json"
    val_as_test.write_text(json.dumps({**split, "test": split["val"]}))
    rescored = Estimator.load(folder).evaluate(data_overrides={"split_file": str(val_as_test)})
    assert rescored["auroc"] == pytest.approx(averaged.meta_["best_score"], abs=1e-6)

    # and the average is not the plain training weights (same seed, same batches)
    first, second = read_weights(folder / "model.safetensors"), read_weights(tmp_path / "plain" / "model.safetensors")
    assert max((first[name] - second[name]).abs().max().item() for name in first) > 1e-3


def test_resume_continues_the_average_exactly(tmp_path):
    def train(*args: str) -> subprocess.Popen:  # output to a pipe only when it is read
        output = subprocess.PIPE if args[0] == "--resume" else subprocess.DEVNULL
        return subprocess.Popen(
            [TSMOE, "train", *args], env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip

    # DLinear on ETTh1 improves every epoch, so the kept model comes from after the kill; at 265 steps an
    # epoch, a decay of 0.995 keeps a quarter of what the average held before it
    recipe = ["configs/dlinear-etth1.yaml"]
    for item in ("training.max_epochs=3", "training.ema_decay=0.995", "trainer.accelerator=cpu"):
        recipe += ["--set", item]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert train(*recipe, "--out", str(reference)).wait(timeout=600) == 0

    process = train(*recipe, "--out", str(killed))
    checkpoint = killed / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # kill it once its first epoch is checkpointed
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = train("--resume", str(killed))
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output.decode()

    assert json.loads((reference / "meta.json").read_text())["best_epoch"] >= 1
    expected, got = load_file(reference / "model.safetensors"), load_file(killed / "model.safetensors")
    for name in expected:
        assert (expected[name] - got[name]).abs().max() <= 1e-6, name
    assert json.loads((killed / "meta.json").read_text())["best_score"] == pytest.approx(
        json.loads((reference / "meta.json").read_text())["best_score"], abs=1e-7
    )
