"""A workspace with a tiny real run of every pretext task, trained once per test session.

Imported by the result tests, the result-page AppTests and the browser test (``import
trained_runs`` after putting this folder on ``sys.path``): training is the slow part, so every
test copies the one template workspace instead of training again.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sslviz.data import ingest
from sslviz.runner.execute import execute
from sslviz.store import Store
from sslviz.training import train
from sslviz.training.config import TrainConfig

DATASET = "shapes"
N_IMAGES = 60


def oriented_image(rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """uint8 (size, size, 3): a coloured sky band on top fading into a dark ground, and a
    coloured block standing on the ground — an image with an unmistakable "up"."""
    sky = rng.integers(120, 230, 3)
    ground = rng.integers(0, 60, 3)
    t = np.linspace(0, 1, size)[:, None, None] ** 0.7  # (size, 1, 1)
    a = (1 - t) * sky + t * ground + rng.normal(0, 8, (size, size, 3))
    left, width = rng.integers(2, size // 2), rng.integers(6, size // 3)
    top = rng.integers(size // 2, size - 8)
    a[top : size - 2, left : left + width] = rng.integers(60, 255, 3)
    return np.clip(a, 0, 255).astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def write_dataset(folder: Path, n: int = N_IMAGES, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(oriented_image(rng)).save(folder / f"img_{i:03d}.png")
    return folder


@dataclass(frozen=True)
class Trained:
    home: Path  # the template workspace (copy it; don't write into it)
    rotation: int  # run ids
    colorization: int  # classification (the default loss)
    colorization_l2: int
    jigsaw: int

    def copy_to(self, home: Path) -> Path:
        shutil.copytree(self.home, home)
        return home


def _config(task: str, **changes) -> TrainConfig:
    base = TrainConfig(
        dataset=DATASET, task=task, image_size=32, epochs=4, batch_size=16, device="cpu"
    )
    return base.replace(**changes)


def build(home: Path) -> Trained:
    """Ingest the dataset and train the four runs into ``home`` (~15 s on one core)."""
    torch.set_num_threads(1)
    store = Store.open(home)
    try:
        ingest(store, [write_dataset(home.parent / f"{home.name}-src")], name=DATASET, workers=1)
        ids = []
        for config in (
            _config("rotation", epochs=12, lr=3e-3),
            _config("colorization"),
            _config("colorization", task_options={"loss": "l2"}),
            _config("jigsaw", task_options={"permutations": 30}),
        ):
            run = execute(store, train.create_run(store, config).id)
            assert run.status == "finished", (run.status, run.error)
            ids.append(run.id)
    finally:
        store.close()
    return Trained(home, *ids)


_TEMPLATE: Trained | None = None


def template(tmp_path_factory) -> Trained:
    """The session's template workspace, built on first use."""
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = build(tmp_path_factory.mktemp("trained-runs") / "home")
    return _TEMPLATE
