"""Decode once: a dataset's images as one uint8 array at a training resolution, on disk.

    <dataset_dir>/cache/<size>.npy      uint8 (N, 3, size, size), rows in the dataset's image order

Each image is decoded (EXIF orientation applied, RGB) by ``sslviz.data.decode.load_rgb``, its
shorter side resized to ``size`` and the centre cropped square. The array is built in a process
pool, written to a temporary file and renamed into place (a crash never leaves a half cache), then
opened memory-mapped: training reads only the rows of each batch, so memory does not grow with the
dataset and every epoch after the first decode is tensor work.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

if TYPE_CHECKING:
    from sslviz.store import Store

ProgressCallback = Callable[[int, int], None]  # (images done, total)
# Below this many images a process pool costs more to start than it saves.
_POOL_MIN_IMAGES = 64
_CHUNK = 256  # images per pool task: big enough to amortize pickling, small enough for progress


def cache_path(store: Store, dataset_id: int, size: int) -> Path:
    return store.workspace.dataset_dir(dataset_id) / "cache" / f"{int(size)}.npy"


def decode_square(path: str | Path, size: int) -> np.ndarray:
    """One image file -> uint8 (3, size, size): shorter side resized to ``size``, centre crop."""
    from sslviz.data.decode import load_rgb

    image = load_rgb(path)
    square = ImageOps.fit(image, (size, size), method=PILImage.Resampling.BICUBIC)
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)  # (3, size, size)


def _decode_chunk(paths: Sequence[str], size: int) -> np.ndarray:
    return (
        np.stack([decode_square(p, size) for p in paths])
        if paths
        else np.empty((0, 3, size, size), np.uint8)
    )


def open_cache(
    store: Store,
    dataset_id: int,
    size: int,
    *,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """The dataset's uint8 (N, 3, size, size) cache, memory-mapped read-only; built if missing
    (or stale: its row count differs from the dataset's image count)."""
    path = cache_path(store, dataset_id, size)
    n_images = store.datasets.count_images(dataset_id)
    if path.exists():
        cache = np.load(path, mmap_mode="r")
        if cache.shape == (n_images, 3, size, size):
            return cache
    build_cache(store, dataset_id, size, on_progress=on_progress, workers=workers)
    return np.load(path, mmap_mode="r")


def build_cache(
    store: Store,
    dataset_id: int,
    size: int,
    *,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Path:
    """Decode every image of the dataset into ``cache_path`` (atomically); returns the path.

    ``on_progress(done, total)`` is called after each chunk (at least every few seconds on
    normal images), which the trainer uses to heartbeat while the cache is built.
    """
    dataset_dir = store.workspace.dataset_dir(dataset_id)
    files = [str(dataset_dir / image.file) for image in store.datasets.images(dataset_id)]
    path = cache_path(store, dataset_id, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{time.monotonic_ns()}.npy")
    total = len(files)
    try:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(total, 3, size, size)
        )
        chunks = [(i, files[i : i + _CHUNK]) for i in range(0, total, _CHUNK)]
        done = 0
        if on_progress:
            on_progress(0, total)
        n_workers = workers or min(os.cpu_count() or 1, 8)
        if total < _POOL_MIN_IMAGES or n_workers <= 1:
            for start, chunk in chunks:
                out[start : start + len(chunk)] = _decode_chunk(chunk, size)
                done += len(chunk)
                if on_progress:
                    on_progress(done, total)
        else:
            # forkserver: the caller may have threads (heartbeat, torch), which fork copies badly
            context = multiprocessing.get_context("forkserver")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
                # map keeps order; results arrive as chunks finish, so memory stays ~workers chunks
                results = pool.map(_decode_chunk, [c for _, c in chunks], [size] * len(chunks))
                for (start, chunk), array in zip(chunks, results, strict=True):
                    out[start : start + len(chunk)] = array
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
