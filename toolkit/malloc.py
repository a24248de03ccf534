"""Keep freed memory in the process for reuse (glibc): large tensors otherwise come from fresh mmaps.

By default glibc serves every allocation above a dynamic threshold (at most 32 MiB) with its own mmap and
unmaps it on free, so a training step that allocates and frees the same 8 MiB activations again and again
page-faults each of them in anew: on a 2-core CPU, 13 000 page faults and a tenth of AEAI's step time at
64x64. Raising the mmap and trim thresholds keeps that memory in the heap, ready for the next step. The
cost is that the process keeps up to TRIM_THRESHOLD of freed memory instead of returning it at once.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 256 << 20  # allocations below this come from the heap: a 128x128 batch's activations fit
TRIM_THRESHOLD = 1 << 30  # free memory at the top of the heap kept for reuse

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
