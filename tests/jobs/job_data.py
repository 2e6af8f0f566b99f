"""The job tests' data: a tiny dataset of real PNG files and the installed ``sslviz`` command.
A module of its own (not conftest): ``from conftest import`` in a test may find another
directory's conftest, whichever pytest loaded last."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from sslviz.store import Dataset, Image, Store


def make_dataset(store: Store, name: str = "tiny", n: int = 40, size: int = 24) -> Dataset:
    """``n`` real PNG files with asymmetric shapes (so rotation is learnable), recorded as a
    ready dataset the way ingestion records one (files named by content hash)."""
    rng = np.random.default_rng(0)
    dataset = store.datasets.create(name, f"/tests/{name}")
    files_dir = store.workspace.dataset_dir(dataset.id) / "files"
    files_dir.mkdir(parents=True)
    rows = []
    for i in range(n):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[:] = rng.integers(0, 60, 3)  # background colour
        top, left = rng.integers(0, size // 2, 2)
        pixels[top : top + size // 3, left : left + size // 2] = rng.integers(120, 255, 3)
        pixels[: size // 6] = 255  # a bright top band: "up" is visible
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, format="PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        (files_dir / f"{sha}.png").write_bytes(data)
        rows.append(
            Image(
                id=0,
                dataset_id=dataset.id,
                path=f"img_{i:03d}.png",
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
    return store.datasets.finish(dataset.id)


# The installed console script, as a user runs it (next to this interpreter, else on PATH).
SSLVIZ = shutil.which("sslviz", path=str(Path(sys.executable).parent)) or shutil.which("sslviz")
