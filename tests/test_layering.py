"""The packages of sslviz form floors: each imports only the packages listed for it here, counting
imports inside functions too (they keep imports lazy but still tie the code together). So the job
runner never imports the code it carries out (it reaches executors through ``store.kinds``), the
maps and the data layer never submit jobs, and nothing but the entry points imports the CLI.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import sslviz

ROOT = Path(sslviz.__file__).parent

ENGINE = {"core", "store", "data", "models", "pretext", "training"}
# package (or top-level module) -> the sslviz packages it may import
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "store": {"core"},
    "data": {"core", "store"},
    "models": {"core"},
    "pretext": {"core", "models"},
    "training": {"core", "store", "data", "models", "pretext"},
    "results": ENGINE,
    "maps": ENGINE,
    "runner": {"core", "store"},
    "fewshot": ENGINE | {"maps", "runner", "results"},
    "api": ENGINE | {"maps", "runner", "results", "fewshot"},
    "cli": ENGINE | {"maps", "runner", "results", "fewshot", "api"},
    "ui": ENGINE | {"maps", "runner", "results", "fewshot", "api"},
    "__main__": {"cli"},
    "__init__": set(),
}
MAX_FLAT_MODULES = 6


def floor_of(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_floors(path: Path) -> set[tuple[str, int]]:
    """(package, line) of every ``sslviz.<package>`` this file imports, anywhere in it."""
    found = set()
    is_package = path.name == "__init__.py"
    module_parts = ["sslviz", *path.relative_to(ROOT).with_suffix("").parts]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module_parts if is_package else module_parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] if base == "sslviz" else [base]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sslviz" and len(parts) > 1 and parts[1] != "__version__":
                found.add((parts[1], node.lineno))
    return found


def test_every_package_imports_only_the_floors_below_it() -> None:
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        floor = floor_of(path)
        assert floor in ALLOWED, f"{path.relative_to(ROOT)}: a new package needs its floor here"
        for target, line in sorted(imported_floors(path)):
            if target != floor and target not in ALLOWED[floor]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports sslviz.{target}")
    assert violations == []


def test_the_top_level_stays_small() -> None:
    flat = [p.name for p in ROOT.glob("*.py")]
    assert len(flat) <= MAX_FLAT_MODULES, flat


def test_the_probe_sees_imports_inside_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check itself: imports inside a function count, absolute and relative, at their line."""
    probe = tmp_path / "runner" / "probe.py"
    probe.parent.mkdir()
    probe.write_text(
        "def later():\n"
        "    from sslviz.store import Store\n"
        "    import sslviz.training.train\n"
        "    from . import jobs\n"
        "    from ..maps import embed\n"
        "    from sslviz import data\n"
        "    return Store, jobs, embed, data\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_floors(probe) == {
        ("store", 2),
        ("training", 3),
        ("runner", 4),
        ("maps", 5),
        ("data", 6),
    }
    monkeypatch.undo()
    lazy = [t for t, _ in imported_floors(ROOT / "api.py")]
    assert "training" in lazy  # api imports training only inside functions
