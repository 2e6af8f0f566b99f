"""Each package's docstring is its table of contents: every module in the package is named there,
so a newcomer reading ``sslviz/<package>/__init__.py`` sees everything the package holds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import sslviz

ROOT = Path(sslviz.__file__).parent
PACKAGES = sorted(p.parent for p in ROOT.glob("*/__init__.py"))


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_module_is_named_in_its_package_docstring(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text("utf-8"))) or ""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", docstring))
    modules = sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
    missing = [m for m in modules if m not in words]
    assert not missing, f"sslviz/{package.name}/__init__.py's docstring doesn't name {missing}"
