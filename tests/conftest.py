"""Shared fixtures: a temporary workspace (``SSLVIZ_HOME``) and its store, open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sslviz.store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace folder, set as ``SSLVIZ_HOME`` (subprocesses and ``Store.open()`` use it)."""
    root = tmp_path / "home"
    monkeypatch.setenv("SSLVIZ_HOME", str(root))
    return root


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    """The open store of ``home``."""
    s = Store.open(home)
    yield s
    s.close()
