"""Numbers that say which embedding (or map) is better.

- ``effective_rank``: label-free. RankMe (Garrido, Assran, Ballas, Bardes, Najman, LeCun, ICML
  2023): the exponential of the entropy of the normalised singular values of the embedding matrix.
  A collapsed embedding (all images alike) scores ~1; one that spreads images over many
  independent directions scores up to min(N, D).
- ``knn_agreement``: with labels. The fraction of each image's k nearest neighbours (cosine for
  embeddings, euclidean for 2-D/3-D maps) that carry its label, averaged over images.
"""

from __future__ import annotations

import numpy as np

MAX_ROWS = 20_000  # above this, both figures are estimated on a fixed random subset of rows


def _subset(n: int, seed: int = 0) -> np.ndarray:
    if n <= MAX_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_ROWS, replace=False))


def effective_rank(vectors: np.ndarray, eps: float = 1e-7) -> float:
    """RankMe of vectors (N, D): exp(H(p)), p_k = s_k / sum(s) over the singular values s_k
    (plus eps, as the paper). Uncentred, as in the paper; at most MAX_ROWS rows are used."""
    x = np.asarray(vectors[_subset(len(vectors))], dtype=np.float64)  # (n, D)
    if x.size == 0:
        return 0.0
    s = np.linalg.svd(x, compute_uv=False)  # (min(n, D),)
    p = s / (s.sum() + eps) + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def knn_agreement(
    vectors: np.ndarray, labels: np.ndarray, k: int = 10, *, metric: str | None = None
) -> float:
    """Mean fraction of the k nearest neighbours (the image itself excluded) sharing the image's
    label. ``metric`` defaults to cosine for embeddings (D > 3) and euclidean for maps."""
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    rows = _subset(len(labels))
    x = np.asarray(vectors, dtype=np.float32)
    metric = metric or ("euclidean" if x.shape[1] <= 3 else "cosine")
    k = min(k, len(x) - 1)
    if k < 1:
        return float("nan")
    index = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(x)
    neighbours = index.kneighbors(x[rows], return_distance=False)  # (n, k + 1)
    # drop each query's own row (usually first; not always when there are exact duplicates)
    own = neighbours == rows[:, None]
    keep = np.where(own.any(1)[:, None], ~own, np.arange(k + 1)[None, :] < k)
    others = neighbours[keep].reshape(len(rows), k)
    return float((labels[others] == labels[rows][:, None]).mean())
