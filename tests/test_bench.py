"""`toolkit bench --quick`: every item measured, positive numbers, a JSON a script can read."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import run_cli


def test_bench_quick_reports_every_item(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = run_cli("bench", "--quick", "--out", str(out), cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert {"machine", "config", "results", "seconds", "skipped"} <= set(report)
    assert report["machine"]["cores_available"] >= 1 and report["machine"]["torch"]
    names = {r["name"] for r in report["results"]}
    paths_of = ("trainer's settings", "without channels_last")  # on a CPU; CUDA adds bf16 and compile
    paths = {f"train {m}, {v}" for m in ("ae", "aeai") for v in paths_of}
    assert names == {"train ae", "train aeai", "augment", "evaluate", "DataLoader from HDF5"} | paths
    for r in report["results"]:
        assert r["values"] and all(v > 0 for v in r["values"]), r
        assert r["median"] > 0 and r["peak_rss_mb"] >= r["base_rss_mb"] > 0, r
    ae, aeai = (next(r for r in report["results"] if r["name"] == f"train {m}") for m in ("ae", "aeai"))
    # The reported cost ratio is per image: ae's rate over aeai's (not a speed assertion: 2 steps on a shared
    # machine say nothing about speed).
    assert aeai["notes"]["aeai_cost_vs_ae"] == pytest.approx(ae["median"] / aeai["median"], abs=1e-3)
    for name in ("ae", "aeai"):  # each variant relative to the trainer's settings, measured in the same item
        base, flipped = (next(r for r in report["results"] if r["name"] == f"train {name}, {v}") for v in paths_of)
        assert base["notes"]["vs_trainer"] == 1.0
        assert flipped["notes"]["vs_trainer"] == pytest.approx(flipped["median"] / base["median"], abs=1e-3)
    assert "train aeai" in done.stdout  # the table


def test_bench_rejects_unknown_item(tmp_path: Path) -> None:
    done = run_cli("bench", "--items", "train,fly", "--out", str(tmp_path / "b.json"), cwd=tmp_path)
    assert done.returncode == 1
    assert "fly" in done.stderr and not (tmp_path / "b.json").exists()


def _hold_memory(megabytes: int, ready, release) -> None:
    held = np.ones(megabytes << 17)  # float64: 8 bytes each, every page written
    ready.set()
    release.wait(30)
    del held


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="Linux /proc")
def test_peak_memory_counts_a_forked_worker_own_pages_but_not_its_parents_again() -> None:
    from toolkit.experiments.bench import peak_memory

    fork = multiprocessing.get_context("fork")

    def worker_peak(megabytes: int) -> dict:
        ready, release = fork.Event(), fork.Event()
        with peak_memory() as memory:
            worker = fork.Process(target=_hold_memory, args=(megabytes, ready, release))
            worker.start()
            assert ready.wait(30)
            time.sleep(1.0)  # ten samples of the tree while the worker holds its memory
            release.set()
            worker.join()
        return memory

    parent = np.ones(200 << 17)  # 200 MB the forked workers share with this process
    idle = worker_peak(0)  # a worker that allocates nothing: the shared 200 MB must not count twice
    busy = worker_peak(200)  # a worker that holds 200 MB of its own
    del parent
    assert idle["peak_rss_mb"] < idle["base_rss_mb"] + 100
    assert busy["peak_rss_mb"] > busy["base_rss_mb"] + 150
