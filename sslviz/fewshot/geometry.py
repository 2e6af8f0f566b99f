"""The data's own geometry for few-shot prediction: a low-dimensional UMAP of the embedding,
fitted on every image (labeled or not), cached beside the embedding it came from.

Why: the unlabeled images are all there, and where they gather into clusters a classifier in a
10-D UMAP of them follows the clusters with one or five labels per class (on scikit-learn's digits
from pixels, 5 labels per class: logistic regression 0.84, the same on the UMAP 0.93-0.95). Where the
data don't cluster by label (letters drawn in several fonts: the nearest images share a font, not a
letter) the UMAP loses to plain logistic regression, which is why ``auto`` chooses per data set.

Recipe (measured in benchmarks/fewshot_quality.py on five families, not tuned to one): a
network's embedding standardised per column (an untrained network's channels differ in scale by
orders of magnitude: on the raw random-init embedding of digits, 1 label per class, 0.56 instead
of 0.79), the ``pixels`` baseline as it is (its columns share one unit; standardising every pixel
blows up the near-constant ones at the borders into noise the neighbour graph follows: digits
0.844 -> 0.883 at 1 label per class, 0.939 -> 0.952 at 5, coloured shapes 0.30 -> 0.60 at 5,
the demo, letters and textures within 0.03), PCA to 50 dimensions and UMAP to ``DIMS``
dimensions with euclidean distances and min_dist 0 (tight clusters are what a classifier wants;
the 2-D map keeps 0.1 for looking at), ``NEIGHBORS`` neighbours, seed 0
(``sslviz.maps.project.fit_umap``, whose numba cache lives in the workspace). Coordinates are
standardised per column.

Cost: UMAP is fitted once per embedding and cached; above ``MAX_ROWS`` images ``auto`` skips the
UMAP predictors (a fit on 100k images takes minutes on 2 cores) unless the map is cached already,
and says so; asking for one by name still fits it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sslviz.core.atomic import write_npy

if TYPE_CHECKING:
    from sslviz.maps.embed import Embeddings
    from sslviz.store import Store

DIMS = 10
NEIGHBORS = 15
MIN_DIST = 0.0
METRIC = "euclidean"
MAX_ROWS = 20_000  # above this many images, auto skips the UMAP predictors (see the docstring)
RECIPE = "u2"  # bump when the recipe changes: cached coordinates are then recomputed


def fit_coords(
    vectors: np.ndarray,
    root: Path | None = None,
    *,
    shared_scale: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(N, min(DIMS, D)) float32 standardised UMAP coordinates of ``vectors`` (N, D);
    ``shared_scale``: the columns share one unit (pixels) and keep their scale. With
    ``should_stop`` the fit runs in a child process (``project.fit_umap``): never in the
    caller's interpreter, whose GIL numba would hold (the app's server)."""
    from sslviz.maps.project import fit_umap

    x = prepared(vectors, shared_scale=shared_scale)
    coords = fit_umap(
        x,
        neighbors=NEIGHBORS,
        min_dist=MIN_DIST,
        metric=METRIC,
        dims=min(DIMS, x.shape[1]),  # UMAP's PCA init can't make more axes than the data has
        root=root,
        should_stop=should_stop,
    )
    return _standardized(coords)


def prepared(vectors: np.ndarray, *, shared_scale: bool) -> np.ndarray:
    """(N, D) float32 what the few-shot geometry is built on (the UMAP here, the graph of
    ``sslviz.fewshot.poisson``): columns of unit variance, unless they share one unit (pixels)."""
    x = np.asarray(vectors, dtype=np.float32)
    return x if shared_scale else _standardized(x)


def _standardized(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


def shared_scale(emb: Embeddings) -> bool:
    """Whether the columns of ``emb`` share one unit: the pixels baseline's do."""
    return emb.source == "pixels"


def cache_file(store: Store, emb: Embeddings) -> Path | None:
    """Where the coordinates of ``emb`` are cached (None for an embedding without a file)."""
    if emb.file is None:
        return None
    file = Path(emb.file)
    return file.parent / "fewshot" / f"{file.stem}-umap{DIMS}-{RECIPE}.npy"


def cached_coords(store: Store, emb: Embeddings) -> np.ndarray | None:
    """The cached coordinates of ``emb`` if they exist and match it, else None (never fits)."""
    file = cache_file(store, emb)
    if file is None or not file.exists():
        return None
    try:
        coords = np.load(file)
    except ValueError:
        return None
    return coords if len(coords) == len(emb.paths) else None


def coords_for(
    store: Store, emb: Embeddings, *, should_stop: Callable[[], bool] | None = None
) -> np.ndarray:
    """The coordinates of ``emb``: cached, or fitted now (``should_stop``: in a child process,
    see ``fit_coords``) and cached."""
    found = cached_coords(store, emb)
    if found is not None:
        return found
    coords = fit_coords(
        np.asarray(emb.vectors),
        root=store.workspace.root,
        shared_scale=shared_scale(emb),
        should_stop=should_stop,
    )
    file = cache_file(store, emb)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_npy(file, coords)
    return coords
