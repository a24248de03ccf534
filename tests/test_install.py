"""The package installs under one namespace, `toolkit.*`, both as a wheel and in editable mode."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("cli", "datasets", "render", "aeai", "evaluate", "augment", "experiments")


def test_wheel_installs_everything_under_toolkit(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*build, "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "site")
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"toolkit"}
    for sub in SUBPACKAGES:
        assert f"toolkit/{sub}/__init__.py" in names
    # Import from the unpacked wheel, as `pip install .` would lay it out, away from the source tree.
    code = "import toolkit.cli, toolkit.evaluate, toolkit.experiments, toolkit.augment as a; print(a.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path / "site" / "toolkit" / "augment"))


def test_installed_environment_has_no_shadowing_top_level_modules(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u, toolkit.datasets;"
        f"print([n for n in {SUBPACKAGES!r} if u.find_spec(n) is not None])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_command_line_starts_without_loading_torch() -> None:
    # torch takes over a second to import: `toolkit --help`, and every spawned render worker (which re-imports
    # the console script), would pay it for nothing.
    probe = "import sys, toolkit.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
