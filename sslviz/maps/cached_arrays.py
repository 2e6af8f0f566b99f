"""One array per dataset cached as ``<name>.npy`` beside its ``<name>.json`` (embeddings, maps).

A cached array is published in a fixed order: the JSON first, then the array (so a reader that
finds the array finds its JSON), then the arrays of older checkpoints of the same name go. A
reader trusts a cached array only while it has a row for each of the dataset's images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.core.atomic import write_npy, write_text

if TYPE_CHECKING:
    from sslviz.store import Dataset, Image, Store


def load_cached(
    store: Store, dataset: Dataset, file: Path, *, mmap: bool = False
) -> tuple[np.ndarray, dict[str, Any], list[Image]] | None:
    """The array at ``file``, its JSON and the dataset's images; None if either file is missing
    or unreadable, or the array's rows no longer match the dataset's images."""
    try:
        array = np.load(file, mmap_mode="r" if mmap else None)
        meta = json.loads(file.with_suffix(".json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    images = store.datasets.images(dataset.id)
    if len(images) != len(array):
        return None
    return array, meta, images


def publish(file: Path, meta: dict[str, Any], array: np.ndarray | Path) -> None:
    """Store ``array`` (or move the finished ``.npy`` at that path) as ``file`` with ``meta``."""
    write_text(file.with_suffix(".json"), json.dumps(meta))
    if isinstance(array, Path):
        os.replace(array, file)
    else:
        write_npy(file, array)
    remove_stale(file)


def remove_stale(file: Path) -> None:
    """Drop arrays of older checkpoints of the same source/layer/grid (readers that have one
    memory-mapped keep it until they let go: POSIX unlink)."""
    prefix = file.stem.rsplit("-", 1)[0] + "-"
    for other in file.parent.glob(f"{prefix}*.npy"):
        if other != file and ".partial" not in other.name:
            other.unlink(missing_ok=True)
            other.with_suffix(".json").unlink(missing_ok=True)
