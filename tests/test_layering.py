"""The packages of sslviz form floors: each imports only the packages listed for it here, counting
imports inside functions too (they keep imports lazy but still tie the code together). So the job
runner never imports the code it carries out (it reaches executors through ``store.kinds``), the
maps and the data layer never submit jobs, and nothing but the entry points imports the CLI.

The kinds table's ``"module:function"`` strings (executors, results writers, encoder loaders,
monitors, config types) are imports too, made where a kind's code is run: they count as imports
of the floor ``KINDS_REACH`` allows, the library below its faces. A worker never runs the code of
a face (``api``, ``cli``, ``ui``): work a run does lives in the library, where the floors see it.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import astuple
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
    "maps": ENGINE,
    "results": ENGINE | {"maps"},  # above maps, as in DESIGN's layout
    "runner": {"core", "store"},
    "fewshot": ENGINE | {"maps", "runner", "results"},
    "api": ENGINE | {"maps", "runner", "results", "fewshot"},
    "cli": ENGINE | {"maps", "runner", "results", "fewshot", "api"},
    "ui": ENGINE | {"maps", "runner", "results", "fewshot", "api"},
    "__main__": {"cli"},
    "__init__": set(),
}
MAX_FLAT_MODULES = 6
# what the kinds table may name: the floors the Python API may import (the library below the faces)
KINDS_REACH = ALLOWED["api"]
DOTTED = re.compile(r"^sslviz\.([\w.]+):(\w+)$")


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


def kinds_strings() -> list[tuple[str, str, str]]:
    """(kind, module, name) of every ``"sslviz.module:name"`` the kinds table holds."""
    from sslviz.store.kinds import KINDS

    found = []
    for kind in KINDS.values():
        for value in astuple(kind):
            match = DOTTED.match(value) if isinstance(value, str) else None
            if match:
                found.append((kind.name, f"sslviz.{match[1]}", match[2]))
    return found


def test_the_kinds_table_names_only_code_its_floor_may_reach() -> None:
    """Each string names a function or class that exists (read, not imported: no torch), on a
    floor ``KINDS_REACH`` allows."""
    strings = kinds_strings()
    assert {kind for kind, _, _ in strings} >= {"rotation", "finetune", "embedding", "checks"}
    violations = []
    for kind, module, name in strings:
        path = ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
        assert path.is_file(), f"kind {kind!r} names {module}, which doesn't exist"
        defined = set()  # defined there, or imported there (a package's public name)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.ImportFrom):
                defined |= {alias.asname or alias.name for alias in node.names}
        assert name in defined, f"kind {kind!r} names {module}:{name}, which {module} lacks"
        if floor_of(path) not in KINDS_REACH:
            violations.append(f"kind {kind!r} names {module}:{name}")
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
