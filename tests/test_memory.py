"""Freed memory kept in the process (on by default: ``training.keep_freed_memory``): buffers freed and made
again, as the fused scan's are in every training step, are not fresh pages each time."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

FAULTS_PER_TRAINING_STEP = """
import resource, sys, torch
from tsmoe.models.output import unpack
from tsmoe.models.registry import build_model
from tsmoe.training.memory import keep_freed_memory
print(keep_freed_memory(sys.argv[1] == "keep"))
torch.set_num_threads(1)
torch.manual_seed(0)
B, T, F = 64, 100, 37  # P5's batch: the fused scan's buffers are tens of MiB
model = build_model({"name": "mrmoe_no_attention", "experts": 4, "hidden_size": 64, "backbone_units": 64},
                    {"n_features": F, "n_static": 5, "n_classes": 2}, "binary", "irregular")
mask = (torch.rand(B, T, F) < 0.2).float()
dt = torch.rand(B, T) * 2
batch = {"values": torch.randn(B, T, F) * mask, "mask": mask, "dt": dt, "times": dt.cumsum(1),
         "step_mask": torch.ones(B, T), "lengths": torch.full((B,), T), "static": torch.randn(B, 5),
         "static_mask": torch.ones(B, 5)}
for _ in range(2):
    unpack(model(batch))[0].sum().backward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    unpack(model(batch))[0].sum().backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_training_steps_reuse_their_freed_memory_instead_of_faulting_in_fresh_pages():
    # glibc's adaptive default keeps such buffers in some processes and not in others (0 to 15,600 faults a
    # step were seen); fixed at its documented 128 KiB, as MALLOC_MMAP_THRESHOLD_ sets it, it never keeps them
    handing_back = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    faults = {}
    for mode in ("keep", "leave"):
        run = subprocess.run(
            [sys.executable, "-c", FAULTS_PER_TRAINING_STEP, mode], capture_output=True, text=True, env=handing_back
        )
        kept, per_step = run.stdout.split()
        assert kept == str(mode == "keep")
        faults[mode] = float(per_step)
    assert faults["leave"] > 2000  # glibc hands the step's big buffers back, and the next step faults them in
    assert faults["keep"] < faults["leave"] / 10  # kept, the next step's buffers are pages already in place


def test_a_run_records_whether_freed_memory_was_kept():
    import numpy as np
    import pandas as pd

    from tsmoe import Estimator

    steps = np.arange(120)
    frame = pd.DataFrame({"unique_id": "a", "ds": steps, "y": np.sin(steps / 6)})
    estimator = Estimator(
        "dlinear", "csv", data_params={"lookback": 12, "horizon": 4}, model_params={"moving_avg": 5},
        training={"max_epochs": 1}, trainer={"accelerator": "cpu"},
    ).fit(frame)  # fmt: skip
    assert estimator.meta_["freed_memory_kept"] is (platform.libc_ver()[0] == "glibc")
