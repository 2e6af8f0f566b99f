"""Poisson learning (Calder, Cook, Thorpe & Slepčev, ICML 2020): labels on a graph of all images
when there are very few of them.

Label spreading fixes each label's value at its image and smooths in between; with one label per
class the smooth solution is nearly constant, and most images end up wherever the graph's
degrees push them. Poisson learning instead places a source at each labeled image (its class
indicator minus the labels' mean, so the sources sum to zero) and solves the graph Poisson equation
L U = B by the iteration U <- U + D^-1 (B - L U). Each image takes the class of the largest
potential.

Recipe (measured in benchmarks/fewshot_quality.py on five families, at 1 label per class also with
imbalanced classes; not tuned to one data set):
- the embedding as the UMAP sees it (a network's channels standardised, the ``pixels`` baseline
  at its own scale: ``sslviz.fewshot.geometry``), then two views of it (``views``), each a graph
  solved on its own, their probabilities averaged:
  1. its first ``PCA_DIMS`` principal components at their own scale: distances follow the
     directions along which the images vary most (shape and brightness on digits and photos);
  2. its first ``WHITENED_DIMS`` components whitened (each of unit variance): distances weigh every
     direction alike, so a weak one that tells classes apart counts (colour and texture statistics).
  Either alone loses badly somewhere (the whitened view: demo photos 0.77 -> 0.68 at 1 label per
  class; the plain one is near chance on textures); averaged they beat the plain view at 1, 2, 5
  and 10 labels per class on average (+0.025, +0.033, +0.046, +0.057 over ten family/source pairs;
  worst pair -0.024 at 1 label) and with imbalanced classes (+0.019 at 1, +0.045 at 5). 30
  whitened components beat 20 and 40. The whitened view's blind spot: where a few directions
  carry the classes and many carry noise, it follows the noise (Gaussian blobs in 20-D, 2 of the
  directions informative, 5 labels per class: 0.86 alone, 0.99 averaged, 1.00 the plain view);
- ``GRAPH_K`` nearest neighbours (euclidean), weights exp(-4 |x_i - x_j|^2 / d_K(x_i)^2) with d_K
  the distance to the K-th neighbour (the paper's), symmetrised W + W^T. K = 5 beat the paper's 10
  at 1 label per class on average (0.457 vs 0.445 over ten family/source pairs, one view);
- the sources sum to zero within each connected component (the equation has no solution
  otherwise, and a component with extra labels of one class drifted to that class: letters at
  5 labels per class 0.16 instead of 0.59); a component whose labels all name one class takes
  that class; a component without labels gets no potential, and uniform probabilities;
- iterations until a random walk started at the labels settles (the paper's stopping idea; the
  tolerance ``SETTLED`` is ours), at least ``MIN_ITERATIONS``, at most ``MAX_ITERATIONS``;
- probabilities softmax(U / s), s the potentials' mean per-class spread: temperature 1 had the
  lowest log-loss on the unlabeled images across the families (2 or 3 suit clustered data
  better, but are over-confident on textures and letters).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from sslviz.fewshot.graph import nearest

GRAPH_K = 5
PCA_DIMS = 50
WHITENED_DIMS = 30
MIN_ITERATIONS = 50
MAX_ITERATIONS = 1000
SETTLED = 1e-3  # the walk's largest change per step, times N, below which it has settled


def views(x: np.ndarray) -> tuple[sp.csr_matrix, ...]:
    """The graphs (N, N) Poisson learning runs on for the rows of ``x`` (N, D): the plain and the
    whitened principal components (see the module docstring; ``x`` with few columns is used as it
    is for the first)."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    n, d = x.shape
    dims = min(PCA_DIMS, d, n - 1)
    if dims < 1 or not np.ptp(x, axis=0).any():  # one image, or all alike: nothing to rotate
        return (weighted_graph(x),)
    pca = PCA(dims, svd_solver="randomized" if dims < min(n, d) else "full", random_state=0)
    components = pca.fit_transform(x)  # (N, dims), by decreasing variance
    variance = pca.explained_variance_[:WHITENED_DIMS]
    # a direction with (numerically) no variance would only blow up rounding noise
    keep = variance > 1e-6 * variance[0]  # (not all alike: variance[0] > 0)
    whitened = components[:, : len(variance)][:, keep] / np.sqrt(variance[keep])
    plain = components if d > PCA_DIMS else x  # few columns: nothing to reduce
    return weighted_graph(plain), weighted_graph(whitened)


def weighted_graph(x: np.ndarray, k: int = GRAPH_K) -> sp.csr_matrix:
    """W (N, N): the symmetrised Gaussian-weighted kNN graph of the rows of ``x`` (N, D)."""
    n = len(x)
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float32)
    neighbours = nearest(x, k, metric="euclidean")  # (N, k), in no particular order
    distance = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, 65536):  # (chunk, k, D) differences at a time
        part = slice(start, start + 65536)
        distance[part] = np.linalg.norm(x[part, None, :] - x[neighbours[part]], axis=2)
    reach = np.maximum(distance.max(axis=1, keepdims=True), 1e-12)  # d_K(x_i)
    weights = np.exp(-4.0 * (distance / reach) ** 2)
    rows = np.repeat(np.arange(n), k)
    w = sp.csr_matrix((weights.ravel(), (rows, neighbours.ravel())), (n, n), dtype=np.float64)
    return (w + w.T).tocsr()


def predict(
    graphs: tuple[sp.csr_matrix, ...], labeled_idx: np.ndarray, y: np.ndarray, n_classes: int
) -> np.ndarray:
    """(N, n_classes) class probabilities from labels ``y`` (n,) at ``labeled_idx`` (n,): the mean
    over ``graphs`` (``views``) of each one's ``probabilities``."""
    answers = [probabilities(*potentials(w, labeled_idx, y, n_classes)) for w in graphs]
    return sum(answers) / len(answers)


def potentials(
    w: sp.csr_matrix, labeled_idx: np.ndarray, y: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(U (N, n_classes), reached (N,) bool): the solution of L U = B on graph ``w`` for labels
    ``y`` (n,) at ``labeled_idx`` (n,), in units of its mean per-class spread. A component whose
    labels are all of one class has no sources left after balancing: it gets one unit for that
    class. Rows of components without a label are 0 and not reached."""
    n = w.shape[0]
    _, component = connected_components(w, directed=False)
    onehot = np.eye(n_classes)[y]  # (n, K)
    sources = np.zeros((n, n_classes))
    single: dict[int, int] = {}  # component -> its only labeled class
    for c in np.unique(component[labeled_idx]):
        mine = component[labeled_idx] == c
        if len(np.unique(y[mine])) == 1:
            single[int(c)] = int(y[mine][0])
        np.add.at(sources, labeled_idx[mine], onehot[mine] - onehot[mine].mean(axis=0))
    degree = np.asarray(w.sum(axis=1)).ravel()
    inverse = 1.0 / np.maximum(degree, 1e-12)
    # U + D^-1 (B - (D - W) U) = D^-1 B + D^-1 W U: one sparse product and one sum a step, in
    # float32 (half the memory traffic; the same predictions on the benchmark's families)
    step_matrix = (sp.diags(inverse) @ w).tocsr().astype(np.float32)  # D^-1 W
    walk_matrix = step_matrix.T.tocsr()  # W D^-1
    pushed = (inverse[:, None] * sources).astype(np.float32)
    u = np.zeros((n, n_classes), dtype=np.float32)
    walk = np.zeros(n, dtype=np.float32)
    walk[labeled_idx] = 1.0 / len(labeled_idx)
    for step in range(1, MAX_ITERATIONS + 1):
        u = pushed + step_matrix @ u
        after = walk_matrix @ walk
        if step >= MIN_ITERATIONS and np.abs(after - walk).max() < SETTLED / n:
            break
        walk = after
    reached = np.isin(component, component[labeled_idx])
    mixed = reached & ~np.isin(component, list(single))
    spread = float(u[mixed].std(axis=0).mean()) if mixed.any() else 0.0
    u = u / spread if spread > 1e-12 else np.zeros_like(u)
    for c, label in single.items():
        u[component == c, label] = 1.0
    u[~reached] = 0.0
    return u, reached


def probabilities(u: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """(N, K) softmax of the potentials (temperature 1, see the module docstring); uniform where
    no label reached."""
    out = np.full(u.shape, 1.0 / u.shape[1])
    z = u[reached] - u[reached].max(axis=1, keepdims=True)
    e = np.exp(z)
    out[reached] = e / e.sum(axis=1, keepdims=True)
    return out
