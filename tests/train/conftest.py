"""Fixtures for the training engine's tests: a temp workspace and tiny datasets of real images
ingested the real way (PNG files on disk -> ``sslviz.data.ingest``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from sslviz.data import ingest
from sslviz.store import Dataset, Store

torch.set_num_threads(1)  # two cores shared by everyone: keep each test on one


def write_images(folder: Path, n: int, seed: int = 0, shape: tuple[int, int] = (40, 48)) -> None:
    """``n`` PNGs with an upright structure (a bright band at the top, a shape on the left), so
    rotation and jigsaw have something to learn, and colour so colorization does too."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = shape
    for i in range(n):
        a = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
        a[: rng.integers(4, h // 2)] += np.array(rng.integers(100, 200, 3), dtype=np.uint8)
        top, left = rng.integers(h // 3, h - 8), rng.integers(0, w // 3)
        a[top : top + 8, left : left + 10, rng.integers(0, 3)] = 255
        PILImage.fromarray(a).save(folder / f"img_{i:03d}.png")


@pytest.fixture
def home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared workspace fixture, with background workers on one thread (2-core CI)."""
    monkeypatch.setenv("SSLVIZ_WORKER_THREADS", "1")
    return home


@pytest.fixture
def make_dataset(store: Store, tmp_path: Path) -> Callable[..., Dataset]:
    def make(name: str = "tiny", n: int = 40, seed: int = 0) -> Dataset:
        folder = tmp_path / "sources" / name
        write_images(folder, n, seed)
        return ingest(store, [folder], name=name, workers=1).dataset

    return make


@pytest.fixture
def tiny(make_dataset: Callable[..., Dataset]) -> Dataset:
    return make_dataset()
