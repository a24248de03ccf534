"""The CLI's malloc tuning: large tensors come from the heap and their memory stays there for reuse."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Where a 40 MiB tensor's memory comes from and where it goes once freed, from glibc's own accounting.
# (40 MiB is above the largest threshold glibc adapts to by itself, 32 MiB: by default it gets its own mmap.)
PROBE = """
import ctypes, sys, torch
from toolkit.malloc import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
if sys.argv[1] == "tuned":
    keep_freed_memory()
mapped = mallinfo2().hblkhd
x = torch.ones(10 << 20)
mapped_for_it = mallinfo2().hblkhd - mapped
del x
print(mapped_for_it >> 20, mallinfo2().fordblks >> 20)  # MiB mmapped for the tensor, MiB free in the heap after
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_freed_memory_serves_tensors_from_the_heap_and_keeps_them() -> None:
    def probe(mode: str) -> tuple[int, int]:
        env = {"PATH": "/usr/bin:/bin"}  # no MALLOC_* or LD_PRELOAD from the caller
        run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, check=True)
        mapped, free = run.stdout.split()
        return int(mapped), int(free)

    assert probe("default")[0] >= 40  # its own mmap, unmapped on free: every page faulted in anew next time
    mapped, free_after = probe("tuned")
    assert mapped == 0 and free_after >= 40  # from the heap, and still there for the next step's tensors


def test_malloc_settings_from_the_environment_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit import malloc

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert malloc.keep_freed_memory() == "as set in the environment" == malloc.setting
