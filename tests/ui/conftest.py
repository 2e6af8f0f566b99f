"""Fixtures for the AppTests: a fresh workspace per test, the one way a test opens the app
(``open_app``), real image bytes to upload."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"
# How long one script run may take before AppTest fails it: generous, for a busy 2-core machine
# (a bound for a hang, never a wait).
SCRIPT_TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def _main_module_restored() -> Iterator[None]:
    """An AppTest leaves ``sys.modules["__main__"]`` pointing at its script; a forkserver child
    started later (the app's work process, an image decoder pool) re-imports that module and
    dies. Every test here gets the interpreter's own back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def open_app(
    page: str | None = None,
    *,
    params: Mapping[str, str] | None = None,
    script: Callable[[], None] | None = None,
    state: Mapping[str, Any] | None = None,
) -> AppTest:
    """The app as a user opens it, run once with no exception: its start (which makes the demo
    dataset), then ``page`` (``app_pages/<page>.py``) with ``params`` in its URL. With ``script``:
    that part of a page run as a script of its own, with ``state`` in its session state."""
    if script is not None:
        at = AppTest.from_function(script, default_timeout=SCRIPT_TIMEOUT)
        for key, value in (state or {}).items():
            at.session_state[key] = value
    else:
        at = AppTest.from_file(str(APP), default_timeout=SCRIPT_TIMEOUT)
    at.run()
    if page is not None:
        for name, value in (params or {}).items():
            at.query_params[name] = value
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def png_bytes(seed: int, size: int = 40) -> bytes:
    """A real, distinct PNG: a colour gradient plus noise, different for every seed."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = rng.uniform(0, 255, size=3).astype(np.float32)
    pixels = (base + ramp[None, :, None] * rng.uniform(0.2, 1.0, size=3)) % 256
    pixels = pixels + rng.normal(0, 20, size=(size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace; set before any AppTest is made, so the app opens this one."""
    monkeypatch.setenv("SSLVIZ_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SSLVIZ_SERVER_ROOTS", raising=False)
    # Leave a core to the test process: the worker of a submitted run trains on the other.
    monkeypatch.setenv("SSLVIZ_WORKER_THREADS", "1")
    return tmp_path / "home"


@pytest.fixture
def app(home: Path) -> AppTest:
    """The app, run once (start-up done: the demo dataset is in the workspace)."""
    return open_app()
