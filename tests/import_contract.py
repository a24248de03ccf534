"""The import contract: each folder is one stage and imports only the stages below it, and only the command line
imports the CLI libraries. Run by `make lint` (`python tests/import_contract.py`) and by tests/test_layout.py.

import-linter cannot check this tree: its stages are sibling folders installed under one namespace
(pyproject's package-dir), which it does not follow. So the contract reads the source itself: every import
statement, at module level or inside a function, since a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Top to bottom. A module may import its own stage and every stage below; stages sharing a row never import
# each other (evaluate and augment both build on aeai; aeai and render both on datasets).
LAYERS = [
    ("toolkit.__main__",),  # `python -m toolkit`
    ("toolkit.cli",),
    ("toolkit.experiments",),
    ("toolkit.evaluate", "toolkit.augment"),
    ("toolkit.aeai", "toolkit.render"),
    ("toolkit.datasets",),
    ("toolkit.devices", "toolkit.files", "toolkit.malloc", "toolkit.progress"),
    ("toolkit.errors",),
]
CLI_ONLY = ("typer", "rich", "click")  # the command line's libraries: the library below it stays importable
CLI = ("toolkit.__main__", "toolkit.cli")
ANYWHERE = ("toolkit",)  # the namespace package itself (its __version__)


def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """Import name -> folder, as pyproject.toml installs them."""
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: root / folder for name, folder in setup["package-dir"].items()}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the toolkit by import name."""
    dirs = package_dirs(root)
    found = {}
    for package, folder in dirs.items():
        for path in sorted(folder.glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def stage(module: str) -> tuple[int, str] | None:
    """(layer index, stage name) of a toolkit module, by its longest matching stage; None for the namespace."""
    best = None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (index, name)
    return best


def imported(module: str, source: str) -> list[tuple[int, str]]:
    """(line, module name) of every import in `source`, relative ones resolved against `module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base))
            # `from toolkit.evaluate import pictures` imports a module too
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if base.startswith("toolkit")]
    return found


def violations_in(module: str, source: str, where: str = "") -> list[str]:
    """What breaks the contract in one module's source, one line each."""
    own = stage(module)
    if own is None and module not in ANYWHERE:
        return [f"{where or module}: {module} belongs to no stage; add it to LAYERS in {Path(__file__).name}"]
    broken: dict[tuple[int, str], str] = {}  # one report per line and stage imported
    for line, name in imported(module, source):
        top = name.split(".")[0]
        if top in CLI_ONLY and own is not None and own[1] not in CLI:
            broken[line, top] = f"{where}:{line}: {module} imports {name}; only toolkit.cli may"
        if top != "toolkit" or name in ANYWHERE:
            continue
        target = stage(name)
        if target is None or own is None or target[1] == own[1] or target[0] > own[0]:
            continue
        relation = "a stage beside it" if target[0] == own[0] else "a higher stage"
        broken.setdefault(
            (line, target[1]),
            f"{where}:{line}: {module} imports {name}, {relation} ({target[1]} is not below {own[1]})",
        )
    return list(broken.values())


def violations(root: Path = ROOT) -> list[str]:
    """Every break of the contract in the tree at `root`."""
    broken = []
    for module, path in modules(root).items():
        broken += violations_in(module, path.read_text(), str(path.relative_to(root)))
    return broken


if __name__ == "__main__":
    found = violations()
    print("\n".join(found) or f"import contract kept: {len(modules())} modules, {len(LAYERS)} layers")
    sys.exit(1 if found else 0)
