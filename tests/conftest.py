"""Shared fixtures: a temporary workspace (``SSLVIZ_HOME``) and its store, open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sslviz.store import Store

# UMAP's numba kernels compile once and are cached for every test (AppTests, the app servers and
# workers the browser tests start inherit the variable), instead of once per fresh workspace;
# sslviz.maps.project keeps a folder the user set.
NUMBA_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "numba"
NUMBA_CACHE.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("NUMBA_CACHE_DIR", str(NUMBA_CACHE))


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
