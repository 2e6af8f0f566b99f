"""Fixtures for the AppTests: a fresh workspace per test, real image bytes to upload."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"


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
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    return at
