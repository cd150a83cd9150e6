"""Freed memory kept by the process while tsmoe trains, instead of being handed back to the system.

MR-MoE's fused scan (``tsmoe.layers.cfc_scan``) writes whole-sequence buffers of tens of MiB in every
training step and frees them after its backward pass. glibc's ``malloc`` gives blocks that large back to the
system (``munmap``, or trimming the top of the heap), so the next step's buffers are fresh pages, and the
first write to each 4 KiB page is a page fault. A training step of P5's size (4 experts of 64 units, 64
sequences of 100 steps) took from 0 to 15,600 page faults, by process, under glibc's adaptive default, and
about 22,700 with its fixed 128 KiB thresholds, against a few hundred with freed memory kept
(``tests/test_memory.py`` counts them); a P1 training process 580,000 against 110,000. What a fault costs
depends on the machine (a virtual machine pays more), so the same code timed differently from one process
to the next; the times: ``docs/MRMOE.md``.

:func:`keep_freed_memory` raises glibc's two thresholds with ``mallopt``, as the environment variables
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would: blocks up to 1 GiB come from the heap, and
up to 1 GiB freed at its top stays with the process for the next step. It is a setting of the whole
process and lasts as long as it (glibc has no way back to its adaptive defaults): a process that has
trained keeps up to 1 GiB of freed memory ready rather than returning it. ``training.keep_freed_memory:
false`` leaves ``malloc`` as it is. Other C libraries (macOS, Windows, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEPT_BYTES = 1 << 30

_kept = False


def keep_freed_memory(enabled: bool = True) -> bool:
    """Keep freed memory in this process from now on (``enabled``, glibc only); whether it is kept."""
    global _kept
    if not enabled or _kept or platform.libc_ver()[0] != "glibc":
        return _kept
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    # mallopt returns 1 on success: both thresholds, or the process is left as it was for the second
    _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEPT_BYTES))
    return _kept
