"""A run killed with SIGKILL at random moments, and resumed each time with ``tsmoe train --resume``,
ends with the same weights and test metrics as a run never interrupted (CPU, same seed).

The model is MR-MoE (dropout, shuffled batches, early stopping) on 400 real PhysioNet stays, so the
random states, the optimiser, the loop counters and the early-stopping decision must all survive a kill.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.metric_dicts import flat

TSMOE = str(Path(sys.executable).with_name("tsmoe"))
RECIPE = "configs/mrmoe-physionet2012.yaml"


def recipe_args(root: Path) -> list[str]:
    overrides = [
        f"data.root={root}", "data.split_file=null", "model.hidden_size=8", "model.d_model=16",
        "model.dropout=0.3", "training.max_epochs=10", "training.patience=3", "training.batch_size=32",
        "trainer.accelerator=cpu",
    ]  # fmt: skip
    return [RECIPE, *[item for pair in overrides for item in ("--set", pair)]]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen([TSMOE, "train", *command], env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output.decode()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_run(small_physionet, tmp_path):
    reference = tmp_path / "reference"
    began = time.perf_counter()
    finish(start([*recipe_args(small_physionet), "--out", str(reference)]))
    duration = time.perf_counter() - began
    meta = json.loads((reference / "meta.json").read_text())
    assert meta["epochs_run"] >= 4  # several epochs: kills land between and inside them

    draw = random.Random(0)
    for trial in range(2):
        out = tmp_path / f"killed-{trial}"
        kills = 0
        process = start([*recipe_args(small_physionet), "--out", str(out)])
        while kills < 3:  # kill it three times, at random moments of the whole run (start-up included)
            try:
                process.wait(timeout=draw.uniform(0.5, duration))
                break  # it finished before the kill
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
            if (out / "config.yaml").exists():
                process = start(["--resume", str(out)])
            else:  # killed before it wrote anything: start it again as it was started
                process = start([*recipe_args(small_physionet), "--out", str(out), "--overwrite"])
        finish(process)
        expected, got = load_file(reference / "model.safetensors"), load_file(out / "model.safetensors")
        assert expected.keys() == got.keys()
        for name in expected:
            assert (expected[name] - got[name]).abs().max() <= 1e-6, (trial, name)
        expected_metrics = json.loads((reference / "metrics.json").read_text())
        got_metrics = json.loads((out / "metrics.json").read_text())
        assert flat(got_metrics) == pytest.approx(flat(expected_metrics), abs=1e-6)
        assert not list(out.rglob("*.tmp")), "a half-written file was left behind"
        assert not (out / "checkpoints").exists()  # a finished run drops its resume checkpoint


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    out = tmp_path / "run"
    overrides = ["--set", "training.max_epochs=1", "--set", "trainer.accelerator=cpu"]
    subprocess.run([TSMOE, "train", "configs/dlinear-etth1.yaml", "--out", str(out), *overrides], env=env(), check=True,
                   capture_output=True)  # fmt: skip
    before = (out / "model.safetensors").read_bytes()
    result = subprocess.run([TSMOE, "train", "--resume", str(out)], env=env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").read_bytes() == before


def test_resume_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    result = subprocess.run([TSMOE, "train", "--resume", str(tmp_path)], env=env(), capture_output=True, text=True)
    assert result.returncode == 2
    assert "cannot resume" in result.stderr and "config.yaml" in result.stderr


def test_ctrl_c_says_the_run_was_interrupted_exits_130_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    command = [str(Path(sys.executable).with_name("tsmoe")), "train", "configs/dlinear-etth1.yaml", "--out", str(run),
               "--set", "data.lookback=24", "--set", "data.horizon=6", "--set", "training.max_epochs=40",
               "--set", "training.patience=40", "--set", "trainer.accelerator=cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Ctrl-C at a terminal: a shell without job control starts background jobs with SIGINT ignored, and Python
    # keeps an ignored SIGINT ignored, so the run is started with the default disposition whoever started pytest
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    checkpoint = run / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), process.communicate()[1][-2000:]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "training was interrupted in epoch" in stderr and f"tsmoe train --resume {run}" in stderr
    assert "Traceback" not in stderr
    assert not (run / "metrics.json").exists()
    resumed = subprocess.run([command[0], "train", "--resume", str(run)], capture_output=True, text=True, env=env,
                             timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run / "meta.json").read_text())["epochs_run"] == 40
