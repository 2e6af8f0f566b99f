"""Every module is reachable by its dotted name: no package re-exports a function or class under
the name of one of its own modules (``import sslviz.data.ingest as m`` once gave the function
``ingest``, not its module)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SSLVIZ = Path(__file__).resolve().parents[1] / "sslviz"
MODULES = sorted(
    ".".join(p.relative_to(SSLVIZ.parent).with_suffix("").parts)
    for p in SSLVIZ.rglob("*.py")
    if p.stem not in ("__init__", "__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_a_package_attribute_named_like_a_module_is_that_module(name: str) -> None:
    module = importlib.import_module(name)
    package, _, stem = name.rpartition(".")
    found = getattr(importlib.import_module(package), stem)
    assert found is module, f"{package}.{stem} is {found!r}, not the module {name}: rename one"
