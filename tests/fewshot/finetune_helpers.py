"""Datasets with known structure for the fine-tune and leaderboard tests, recorded the way
ingestion records them (real PNG files named by content hash), and a tiny trained parent run.

- ``colour``: a bright square of the class's colour at a random place on dark noise (any encoder
  separates it);
- ``stripes``: horizontal vs vertical stripes of random period and phase on noise: a linear model on raw
  pixels can't separate them (both classes average to the same grey), a convolution can.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image as PILImage

from sslviz.store import Image, Store

COLOURS = {"red": 0, "green": 1, "blue": 2}


def _picture(kind: str, label: str, rng: np.random.Generator, size: int) -> np.ndarray:
    pixels = rng.integers(0, 70, (size, size, 3)).astype(np.uint8)  # (H, W, 3) dark noise
    if kind == "colour":
        top, left = rng.integers(0, size // 2, 2)
        pixels[top : top + size // 2, left : left + size // 2, COLOURS[label]] = 230
        return pixels
    period = int(rng.integers(3, 7))  # many periods and phases: no pixel template per class
    phase = rng.integers(0, period)
    on = ((np.arange(size) + phase) % period) < period // 2  # (size,)
    mask = on[:, None] if label == "horizontal" else on[None, :]
    return np.where(np.broadcast_to(mask, (size, size))[..., None], pixels + 150, pixels).astype(
        np.uint8
    )


def make_labeled_dataset(
    store: Store,
    name: str,
    classes: tuple[str, ...],
    per_class: int,
    *,
    kind: str = "colour",
    size: int = 24,
    seed: int = 0,
) -> dict[str, str]:
    """A ready dataset of ``per_class`` images of each class; returns every path's true label."""
    rng = np.random.default_rng(seed)
    dataset = store.datasets.create(name, f"/tests/{name}")
    files = store.workspace.dataset_dir(dataset.id) / "files"
    files.mkdir(parents=True)
    rows, truth = [], {}
    for i in range(per_class * len(classes)):
        label = classes[i % len(classes)]
        buffer = io.BytesIO()
        PILImage.fromarray(_picture(kind, label, rng, size)).save(buffer, format="PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        (files / f"{sha}.png").write_bytes(data)
        path = f"{label}/{i:03d}.png"
        truth[path] = label
        rows.append(
            Image(
                id=0,
                dataset_id=dataset.id,
                path=path,
                sha256=sha,
                file=f"files/{sha}.png",
                width=size,
                height=size,
                mode="RGB",
                format="PNG",
                bytes=len(data),
            )
        )
    store.datasets.add_images(rows)
    store.datasets.finish(dataset.id)
    return truth


def train_parent(store: Store, dataset: str, task: str = "rotation", size: int = 16) -> int:
    """A finished pretext run of one short epoch, trained here (in this process)."""
    from sslviz.runner.execute import execute
    from sslviz.training.config import TrainConfig
    from sslviz.training.train import create_run

    config = TrainConfig(
        dataset=dataset,
        task=task,
        image_size=size,
        epochs=1,
        batch_size=16,
        device="cpu",
        warmup_epochs=0.5,
    )
    run = execute(store, create_run(store, config).id)
    assert run.status == "finished", run.error
    return run.id


def first_per_class(truth: dict[str, str], n: int) -> dict[str, str]:
    """The first ``n`` paths of each class (by path): a few labels, the rest to predict."""
    out: dict[str, str] = {}
    for label in sorted(set(truth.values())):
        for path in sorted(p for p, v in truth.items() if v == label)[:n]:
            out[path] = label
    return out
