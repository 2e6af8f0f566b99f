"""Neighbour graphs of an embedding and label spreading on them (Zhou et al., NIPS 2003).

The graph is a sparse symmetric kNN graph over all N images (never the dense RBF kernel, which is
O(N^2) memory): exact neighbours by blocked matrix products up to ``EXACT_KNN_MAX`` rows, an
inverted-file search above. ``spread`` propagates several label sets at once, so the folds of a
cross-validation share one graph and one loop.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

SPREAD_ALPHA = 0.99  # how far labels travel (Zhou et al.'s alpha): 0 = stay, 1 = all graph
SPREAD_ITERATIONS = 60
EXACT_KNN_MAX = 30_000  # above this many rows the graph uses approximate neighbours
GRAPH_DIMS = 48  # approximate neighbours are searched on a PCA of this many dimensions
PROBE_CELLS = 6


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of x (N, D) scaled to unit length (zero rows stay zero), float32."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 1e-12, norms, 1.0)).astype(np.float32, copy=False)


def knn_graph(x: np.ndarray, k: int) -> sp.csr_matrix:
    """The symmetric normalised kNN graph of unit rows ``x`` (N, D): S (N, N) sparse.

    Exact neighbours (blocked matrix products) up to ``EXACT_KNN_MAX`` rows, an inverted-file
    search above (``_approximate_knn``).
    """
    n = len(x)
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n))
    neighbours = nearest(x, k)  # (N, k)
    rows = np.repeat(np.arange(n), k)
    w = sp.csr_matrix((np.ones(n * k, dtype=np.float32), (rows, neighbours.ravel())), (n, n))
    w = w.maximum(w.T)  # symmetric: i~j if either is among the other's neighbours
    degree = np.asarray(w.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    return (scale @ w @ scale).tocsr().astype(np.float32)


def nearest(x: np.ndarray, k: int, *, metric: str = "cosine") -> np.ndarray:
    """(N, k) each row's k nearest other rows of ``x`` (N, D): "cosine" for unit rows,
    "euclidean" for any. Exact up to ``EXACT_KNN_MAX`` rows, approximate above."""
    # One BLAS thread: these are many small products, and threads contending for busy cores made
    # them 6x slower (measured on the shared 2-core machine).
    with threadpool_limits(1):
        if len(x) <= EXACT_KNN_MAX:
            return _exact_knn(x, k, metric)
        return _approximate_knn(x, k, metric=metric)


def _similarity(x: np.ndarray, others: np.ndarray, metric: str) -> np.ndarray:
    """(len(x), len(others)) larger = nearer: the dot product of unit rows ("cosine"), or
    2 x.o - |o|^2, which orders the rows of ``others`` as -|x - o|^2 does ("euclidean")."""
    sims = x @ others.T
    if metric == "euclidean":
        sims = 2 * sims - np.einsum("ij,ij->i", others, others)[None, :]
    return sims


def _exact_knn(x: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    out = np.empty((len(x), k), dtype=np.int64)
    for start in range(0, len(x), 2048):
        sims = _similarity(x[start : start + 2048], x, metric)  # (chunk, N)
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf  # not itself
        out[start : start + len(sims)] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def _approximate_knn(x: np.ndarray, k: int, seed: int = 0, *, metric: str = "cosine") -> np.ndarray:
    """Approximate neighbours by an inverted file: k-means cells of ~sqrt(N) rows, each row's
    neighbours searched among the rows of the ``PROBE_CELLS`` cells nearest its own.

    Plain numpy (no numba JIT, whose compile alone took ~70 s on the 2-core machine): about
    N * PROBE_CELLS * sqrt(N) dot products, e.g. 100k rows in seconds.
    """
    from sklearn.cluster import MiniBatchKMeans

    n = len(x)
    if x.shape[1] > GRAPH_DIMS:
        from sklearn.decomposition import PCA

        sample = x[np.random.default_rng(seed).choice(n, min(n, 20_000), replace=False)]
        pca = PCA(GRAPH_DIMS, random_state=seed, svd_solver="randomized").fit(sample)
        x = pca.transform(x).astype(np.float32)
        if metric == "cosine":  # unit rows: euclidean neighbours are cosine neighbours
            x = unit_rows(x)
    n_cells = max(1, int(np.sqrt(n)))
    rng = np.random.default_rng(seed)
    kmeans = MiniBatchKMeans(n_cells, batch_size=4096, n_init=1, max_iter=20, random_state=seed)
    kmeans.fit(x[rng.choice(n, min(n, 50 * n_cells), replace=False)])  # cells from a sample
    cell = kmeans.predict(x)  # (N,)
    centres = kmeans.cluster_centers_.astype(np.float32)
    if metric == "cosine":
        centres = unit_rows(centres)
    similarity = _similarity(centres, centres, metric)
    np.fill_diagonal(similarity, np.inf)  # each cell probes itself first
    probe = np.argsort(-similarity, axis=1)[:, :PROBE_CELLS]  # (cells, probe)
    order = np.argsort(cell, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(cell, minlength=n_cells))[:-1])
    out = np.empty((n, k), dtype=np.int64)
    for c, rows in enumerate(members):
        if not len(rows):
            continue
        # The cell's own rows come first among the candidates, so row i of the cell is
        # candidate i: masking the diagonal keeps a row from being its own neighbour.
        candidates = np.concatenate([members[p] for p in probe[c]])
        sims = _similarity(x[rows], x[candidates], metric)  # (rows, candidates)
        sims[np.arange(len(rows)), np.arange(len(rows))] = -np.inf
        take = min(k, len(candidates) - 1)
        if take <= 0:
            out[rows] = rows[:, None]  # alone: no neighbour to link (self-loops carry nothing)
            continue
        best = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        if take < k:  # a tiny neighbourhood: repeat the nearest found
            best = np.pad(best, ((0, 0), (0, k - take)), mode="edge")
        out[rows] = candidates[best]
    return out


def spread(
    graph: sp.csr_matrix, labeled_idx: np.ndarray, y: np.ndarray, n_classes: int
) -> np.ndarray:
    """Label spreading for several label sets at once (CV folds share one graph).

    graph (N, N) normalised; labeled_idx (F, n) and y (F, n): F label sets (rows of -1 are
    skipped). Returns (F, N, n_classes) probabilities. Iterates F <- alpha S F + (1 - alpha) Y.
    """
    n_sets, n = labeled_idx.shape[0], graph.shape[0]
    seeds = np.zeros(
        (n, n_sets * n_classes), dtype=np.float32
    )  # (N, F*K): one column per class and set
    for f in range(n_sets):
        keep = labeled_idx[f] >= 0
        seeds[labeled_idx[f][keep], f * n_classes + y[f][keep]] = 1.0
    # Zhu et al.'s class-mass normalisation: every class starts with the same total mass, so a
    # class with more labels doesn't flood the graph.
    mass = seeds.sum(axis=0, keepdims=True)
    seeds = seeds / np.where(mass > 0, mass, 1.0)
    scores = seeds.copy()
    for _ in range(SPREAD_ITERATIONS):
        scores = SPREAD_ALPHA * (graph @ scores) + (1 - SPREAD_ALPHA) * seeds
    scores = scores.reshape(n, n_sets, n_classes).transpose(1, 0, 2).astype(np.float64)
    # Rows the labels never reached (another component of the graph) get uniform probabilities.
    total = scores.sum(axis=2, keepdims=True)
    unreached = total <= 1e-30
    probabilities = np.where(unreached, 1.0 / n_classes, scores / np.where(unreached, 1.0, total))
    return probabilities
