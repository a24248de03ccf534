"""The tree's layout: imports run one way between the stages, files stay small, nothing points outside."""

from __future__ import annotations

import re

import pytest
from import_contract import ROOT, modules, violations, violations_in


def test_imports_run_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    "module, source, broken",
    [
        ("toolkit.aeai.trainer", "def f():\n    from toolkit.experiments import bench\n", "a higher stage"),
        ("toolkit.evaluate.measures", "from toolkit.augment.sampling import PairMode\n", "a stage beside it"),
        ("toolkit.datasets.h5", "import toolkit.render.scene\n", "a higher stage"),
        ("toolkit.augment.generate", "from rich.progress import Progress\n", "only toolkit.cli may"),
        ("toolkit.errors", "from ..files import atomic_write\n", "a higher stage"),
        ("toolkit.newthing", "import os\n", "belongs to no stage"),
    ],
)
def test_a_broken_contract_is_caught(module: str, source: str, broken: str) -> None:
    found = violations_in(module, source)
    assert len(found) == 1 and broken in found[0]


@pytest.mark.parametrize(
    "module, source",
    [
        (
            "toolkit.experiments.reproduce",
            "from toolkit.evaluate import pictures\nfrom toolkit.augment import generate\n",
        ),
        ("toolkit.cli.train", "import typer\nfrom toolkit.aeai.config import TrainConfig\n"),
        ("toolkit.aeai.nets", "from toolkit.aeai.tangent import layer_jvp\nfrom toolkit.errors import UserError\n"),
        ("toolkit.datasets.h5", "from toolkit import __version__\n"),
    ],
)
def test_downward_imports_pass(module: str, source: str) -> None:
    assert violations_in(module, source) == []


def test_no_file_over_450_lines() -> None:
    files = [*modules().values(), *(ROOT / "tests").glob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}


def test_no_comment_points_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|\.\./\.\.")
    pointing = [str(p.relative_to(ROOT)) for p in modules().values() if outside.search(p.read_text())]
    assert pointing == []
