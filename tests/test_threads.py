"""``training.threads``: ``auto`` trains with the cores other processes leave free, an integer fixes the count."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import torch

from tsmoe.config import load_config
from tsmoe.errors import ConfigError
from tsmoe.training import threads


def test_an_integer_fixes_the_count_and_auto_leaves_out_the_busy_cores(monkeypatch):
    monkeypatch.setattr(threads, "_torch_default", 4)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    assert threads.choose_threads(3) == 3
    for busy, expected in ((0.0, 4), (1.2, 3), (3.6, 1), (7.0, 1)):  # at least one thread
        monkeypatch.setattr(threads, "cores_busy_elsewhere", lambda busy=busy: busy)
        assert threads.choose_threads("auto") == expected
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    monkeypatch.setattr(threads, "cores_busy_elsewhere", lambda: 0.0)
    assert threads.choose_threads("auto") == 4  # never more than torch's own default
    monkeypatch.setattr(threads, "cores_busy_elsewhere", lambda: None)  # no /proc/stat: torch's default
    assert threads.choose_threads("auto") == 4


def test_use_threads_sets_torch_and_remembers_its_default():
    before = torch.get_num_threads()
    try:
        assert threads.use_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert threads.torch_default_threads() >= 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_busy_process_elsewhere_is_counted_and_this_process_is_not():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        elsewhere = threads.cores_busy_elsewhere(seconds=1.0)
    finally:
        busy.kill()
        busy.wait()
    assert elsewhere is not None and elsewhere > 0.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_this_process_keeping_a_core_busy_is_not_counted_as_elsewhere():
    quiet = threads.cores_busy_elsewhere(seconds=0.5)
    if quiet is None or quiet > (os.cpu_count() or 1) - 1.5:
        pytest.skip("the machine has no free core to tell this process's work from others'")
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])  # spins until stopped
    spinner.start()
    try:
        spinning = threads.cores_busy_elsewhere(seconds=0.5)
    finally:
        stop.set()
        spinner.join()
    assert spinning is not None
    assert spinning < quiet + 0.5  # a whole core of this process's own work is taken out


def test_bad_thread_settings_are_refused_by_name():
    for value in ("0", "many"):
        with pytest.raises(ConfigError, match="threads"):
            load_config("configs/mrmoe-physionet2012.yaml", [f"training.threads={value}"])
    assert load_config("configs/mrmoe-physionet2012.yaml", ["training.threads=2"]).training.threads == 2
