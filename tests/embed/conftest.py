"""Fixtures for the embedding and map tests: one tiny workspace per session — two visibly
different classes of real PNGs (bright top band vs dark with a bright bottom block), ingested the
real way, and a one-epoch rotation run — copied into each test's own ``SSLVIZ_HOME``."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sslviz.data import ingest
from sslviz.runner.execute import execute
from sslviz.store import Store
from sslviz.training import train
from sslviz.training.config import TrainConfig

torch.set_num_threads(1)  # two cores shared by everyone
# UMAP's numba kernels compile once and are cached across sessions (and for the workers the tests
# start, which inherit the variable); sslviz.maps.project keeps a folder the user set.
NUMBA_CACHE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "numba"
NUMBA_CACHE.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("NUMBA_CACHE_DIR", str(NUMBA_CACHE))
DATASET = "tiny"
N_PER_CLASS = 24


def write_images(folder: Path, n_per_class: int = N_PER_CLASS, seed: int = 0) -> None:
    """``classA/`` and ``classB/`` PNGs (40 px): different layouts and colours, with noise."""
    rng = np.random.default_rng(seed)
    for label in ("classA", "classB"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            a = rng.integers(0, 50, (40, 40, 3)).astype(np.int32)
            if label == "classA":
                a[: rng.integers(6, 14)] += (200, 180, 40)
            else:
                top = rng.integers(22, 30)
                a[top : top + 8, 4:36] += (40, 90, 200)
            Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(
                folder / label / f"{i:03d}.png"
            )


@dataclass(frozen=True)
class Template:
    home: Path
    run: int  # a finished one-epoch rotation run on DATASET


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("embed-template")
    home = root / "home"
    write_images(root / "src")
    store = Store.open(home)
    try:
        ingest(store, [root / "src"], name=DATASET, workers=1)
        config = TrainConfig(
            dataset=DATASET, task="rotation", image_size=32, epochs=1, batch_size=16, device="cpu"
        )
        run = execute(store, train.create_run(store, config).id)
        assert run.status == "finished", run.error
    finally:
        store.close()
    return Template(home, run.id)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory, template: Template) -> Path:
    """A copy of the template shared by a module's tests (e.g. one UMAP fit for all of them)."""
    root = tmp_path_factory.mktemp("embed-shared") / "home"
    shutil.copytree(template.home, root)
    return root


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Template) -> Path:
    """A copy of the template workspace as ``SSLVIZ_HOME`` (workers on one thread)."""
    root = tmp_path / "home"
    shutil.copytree(template.home, root)
    monkeypatch.setenv("SSLVIZ_HOME", str(root))
    monkeypatch.setenv("SSLVIZ_WORKER_THREADS", "1")
    return root


@pytest.fixture
def run_id(template: Template) -> int:
    return template.run


def labels_of(paths: list[str]) -> np.ndarray:
    """The class of each image: its folder."""
    return np.array([p.split("/")[0] for p in paths])
