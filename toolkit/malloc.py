"""Keep freed memory in the process for reuse (glibc): large tensors otherwise come from fresh mmaps.

By default glibc serves each allocation above a dynamic threshold (at most 32 MiB) with its own mmap, and
gives the top of the heap back to the kernel once more than a few MiB of it are free. A training step frees
its activations at the end and allocates them again in the next, so every step page-faults them in anew:
13 000 page faults per AEAI step at 64x64 on a 2-core CPU, 100 000 at 128x128. With the thresholds below
(measured there, glibc 2.36): AEAI steps 10 % (64px) and 15 % (128px) faster, `evaluate` 25 % faster;
the price is memory kept for reuse: under 1 % more peak resident memory for AEAI training at 128px, 25 %
more for `evaluate` on the pole set (1.05 to 1.33 GB). A trim threshold of 256 MiB kept evaluate's peak
low but left 128px training page-faulting; 1 GiB was no faster than 512 MiB.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 256 << 20  # allocations below this come from the heap: a 128x128 batch's activations fit
TRIM_THRESHOLD = 512 << 20  # free memory at the top of the heap kept for reuse: a 128px AEAI step's

_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD")

setting = "default"  # what this process runs with, for `bench` to report


def keep_freed_memory() -> str:
    """Tune glibc's malloc for tensor reuse, unless the user set malloc up themselves; say what was done."""
    global setting
    if not sys.platform.startswith("linux"):
        setting = "default (not Linux)"
    elif any(name in os.environ for name in _USER_SETTINGS):
        setting = "as set in the environment"
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
        except (OSError, AttributeError):
            mallopt = None
        if (
            mallopt is not None
            and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        ):
            setting = f"glibc, mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB"
        else:
            setting = "default (no glibc mallopt)"
    return setting
