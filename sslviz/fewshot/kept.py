"""What few-shot prediction derives from an embedding alone, computed once and kept (DESIGN 3.3).

Every prediction used to rebuild, from the embedding alone, the standardised views, the kNN graphs
and Poisson learning's two views (PCA, neighbour search, weights): most of a prediction's time on
a large dataset, and part of every label click. None of it depends on the labels, so:

- in a process (the app's server, a benchmark): one ``Features`` per embedding file is kept
  (``KEEP`` of them, least recently used dropped) and every later prediction, cross-validation
  and suggestion on that embedding reuses what it derived;
- across processes (``sslviz predict`` again after one more label): Poisson's views are saved
  beside the embedding (``<embedding dir>/fewshot/<stem>-poisson-<RECIPE>.npz``, like its UMAP),
  with the unit potential of every image labeled so far (``...-units.npz``,
  ``sslviz.fewshot.poisson_kept``), and read back while the embedding file is the same (its size
  and modification time are kept with them): one more label costs one new column per view.

    features = kept_features(store, emb)     # the same object for the same embedding file
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from sslviz.fewshot.saved_views import RECIPE

if TYPE_CHECKING:
    from sslviz.fewshot.predictors import Features
    from sslviz.maps.embed import Embeddings
    from sslviz.store import Store

KEEP = 3  # embeddings whose derived work a process keeps (100k x 128: ~250 MB each)

_kept: OrderedDict[tuple, Features] = OrderedDict()
_lock = threading.Lock()


def kept_features(store: Store, emb: Embeddings) -> Features:
    """The one ``Features`` of ``emb`` in this process (built the first time), with Poisson's
    views read from beside the embedding when they were saved and saved when first built."""
    from sslviz.fewshot import geometry
    from sslviz.fewshot.predictors import Features

    stamp = _stamp(emb.file)
    key = (str(emb.file), stamp, emb.source, emb.layer, emb.grid, len(emb.paths))
    with _lock:
        if emb.file is not None and key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    features = Features(
        emb.vectors,
        umap=geometry.cached_coords(store, emb),
        root=store.workspace.root,
        shared_scale=geometry.shared_scale(emb),
        umap_fit=lambda: geometry.coords_for(store, emb),
        views_file=views_file(emb),
        views_stamp=stamp,
    )
    if emb.file is None:
        return features  # an embedding only in memory: nothing to know it by again
    with _lock:
        _kept[key] = features
        while len(_kept) > KEEP:
            _kept.popitem(last=False)
    return features


def forget() -> None:
    """Drop every kept ``Features`` (tests, and a process that needs the memory back)."""
    with _lock:
        _kept.clear()


def views_file(emb: Embeddings) -> Path | None:
    """Where Poisson's views of ``emb`` are saved (None for an embedding without a file)."""
    if emb.file is None:
        return None
    file = Path(emb.file)
    return file.parent / "fewshot" / f"{file.stem}-poisson-{RECIPE}.npz"


def _stamp(file: Path | None) -> tuple[int, int]:
    if file is None:
        return (0, 0)
    try:
        status = Path(file).stat()
    except OSError:
        return (0, 0)
    return (status.st_size, status.st_mtime_ns)
