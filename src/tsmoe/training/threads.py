"""How many CPU threads torch computes with while tsmoe trains: the cores this process may use, less those
other processes keep busy.

PyTorch starts one thread per core, and its OpenMP threads spin while they wait for each other, so a core
that another process holds stalls every parallel op. On a 2-core machine with one other busy process, one
epoch of the P1 MR-MoE recipe took 122 s with torch's two threads and 14 s with one; alone on the machine,
10 s with two and 14 s with one (``benchmarks/shared_machine.py``; docs/MRMOE.md, "A shared machine").
``training.threads: auto`` (the default) counts the cores other processes keep busy over a short sample of
``/proc/stat`` (this process's own CPU time taken out) and uses the rest: at least one thread, at most
torch's default. An integer fixes the count. Where ``/proc/stat`` cannot be read (not Linux), ``auto`` keeps
torch's default.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 0.2  # long enough for the kernel's 100 Hz tick counters to tell a busy core from an idle one
_torch_default: int | None = None  # torch's own thread count, read before tsmoe first changes it


def torch_default_threads() -> int:
    """Torch's thread count as the process started (``OMP_NUM_THREADS`` or one per core)."""
    global _torch_default
    if _torch_default is None:
        _torch_default = torch.get_num_threads()
    return _torch_default


def usable_cpus() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_ticks() -> tuple[int, int] | None:
    """``(busy, total)`` clock ticks of all cores since boot from ``/proc/stat``, or None where unreadable."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(n) for n in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def cores_busy_elsewhere(seconds: float = SAMPLE_SECONDS) -> float | None:
    """How many cores other processes keep busy, measured over ``seconds``: the machine's busy share of
    all cores, less this process's own CPU time in the same interval. None where it cannot be measured."""
    start = _cpu_ticks()
    if start is None:
        return None
    own_start, wall_start = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    end = _cpu_ticks()
    own, wall = time.process_time() - own_start, time.perf_counter() - wall_start
    if end is None or end[1] <= start[1]:
        return None
    cores = os.cpu_count() or 1
    machine_busy = cores * (end[0] - start[0]) / (end[1] - start[1])
    return max(0.0, machine_busy - own / wall)


def choose_threads(setting: int | str) -> int:
    """The thread count for ``training.threads``: the integer itself, or for ``auto`` the usable cores less
    those busy elsewhere (rounded), between 1 and torch's default."""
    if setting != "auto":
        return int(setting)
    busy = cores_busy_elsewhere()
    if busy is None:
        return torch_default_threads()
    return max(1, min(torch_default_threads(), usable_cpus() - round(busy)))


def use_threads(setting: int | str) -> int:
    """Set torch's thread count from ``training.threads`` and return it."""
    threads = choose_threads(setting)
    if threads != torch.get_num_threads():
        log.info("training with %d CPU thread(s) (training.threads: %s)", threads, setting)
    torch_default_threads()  # remembered before the first change
    torch.set_num_threads(threads)
    return threads
