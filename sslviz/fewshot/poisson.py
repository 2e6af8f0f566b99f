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
- iterations until a random walk settles (the paper's stopping idea; the tolerance ``SETTLED``
  is ours), at least ``MIN_ITERATIONS``, at most ``MAX_ITERATIONS``. The walk starts evenly at
  ``WALK_STARTS`` seeded images, not at the labels (the paper's), so the count belongs to the graph:
  the iteration is linear, every label's unit potential is then the same whatever the other
  labels are, and a prediction after one more label computes one new column per view
  (``unit_potentials``, kept by ``sslviz.fewshot.poisson_kept``) instead of solving every CV
  fold again. One walk's count varies up to 2x with its starts (as the walk from the labels did
  from draw to draw), so it is the median of ``WALK_SAMPLES`` walks. Against the walk from the
  labels, over ten family/source pairs at 1, 5 and 10 labels per class: mean accuracy within
  0.001, worst pair -0.017 (letters from an untrained network, 10 labels per class);
- probabilities softmax(U / s), s the potentials' mean per-class spread: temperature 1 had the
  lowest log-loss on the unlabeled images across the families (2 or 3 suit clustered data
  better, but are over-confident on textures and letters).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from sslviz.fewshot.graph import nearest

GRAPH_K = 5
# Graphs from this many images up split a step's product over threads when asked: below it one
# product takes well under a millisecond and the threads' hand-over would cost more than it saves.
SPLIT_ROWS = 20_000
PCA_DIMS = 50
WHITENED_DIMS = 30
MIN_ITERATIONS = 50
MAX_ITERATIONS = 1000
SETTLED = 1e-3  # the walk's largest change per step, times N, below which it has settled
WALK_STARTS = 50  # images each walk that sets a view's iterations starts at (``settled_after``)
WALK_SAMPLES = 3  # such walks, their median count taken
UNIT_BATCH = 64  # unit potentials computed this many at a time (an (N, 64) float32 block)


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


@dataclass(frozen=True)
class View:
    """One graph made ready for Poisson learning, from the graph alone (never the labels): the
    step matrix P = D^-1 W (N, N) float32, 1 / degree (N,), the connected component of each row
    (N,), each component's size and the number of iterations (``settled_after``)."""

    step: sp.csr_matrix
    inverse: np.ndarray
    component: np.ndarray
    sizes: np.ndarray
    iterations: int

    @classmethod
    def of(cls, w: sp.csr_matrix, iterations: int | None = None) -> View:
        degree = np.asarray(w.sum(axis=1)).ravel()
        inverse = 1.0 / np.maximum(degree, 1e-12)
        # U + D^-1 (B - (D - W) U) = D^-1 B + D^-1 W U: one sparse product and one sum a step, in
        # float32 (half the memory traffic; the same predictions on the benchmark's families)
        step = (sp.diags(inverse) @ w).tocsr().astype(np.float32)
        _, component = connected_components(w, directed=False)
        if iterations is None:
            iterations = settled_after(step)
        return cls(step, inverse, component, np.bincount(component), int(iterations))


def settled_after(step: sp.csr_matrix, seed: int = 0) -> int:
    """Iterations until a random walk on the graph settles: its largest change a step below
    ``SETTLED`` / N, at least ``MIN_ITERATIONS``, at most ``MAX_ITERATIONS``; the median over
    ``WALK_SAMPLES`` walks, each started evenly at ``WALK_STARTS`` seeded images (one sample's
    count varies by up to 2x). The walks start at images, not at the labels, so the count is a
    property of the graph and each label's unit potential can be kept."""
    n = step.shape[0]
    walk_matrix = step.T.tocsr()  # W D^-1: moves a walk's mass
    rng = np.random.default_rng(seed)
    walk = np.zeros((n, WALK_SAMPLES), dtype=np.float32)  # one column per walk
    for s in range(WALK_SAMPLES):
        starts = rng.choice(n, min(n, WALK_STARTS), replace=False)
        walk[starts, s] = 1.0 / len(starts)
    settled = np.full(WALK_SAMPLES, MAX_ITERATIONS)
    for iteration in range(1, MAX_ITERATIONS + 1):
        after = walk_matrix @ walk
        if iteration >= MIN_ITERATIONS:
            now = (np.abs(after - walk).max(axis=0) < SETTLED / n) & (settled == MAX_ITERATIONS)
            settled[now] = iteration
            if (settled < MAX_ITERATIONS).sum() > WALK_SAMPLES // 2:
                break  # the median is known
        walk = after
    return int(np.median(settled))


def propagate(view: View, pushed: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """(N, m) float32 sum over t < ``view.iterations`` of P^t ``pushed`` (N, m): the iteration
    U <- D^-1 B + P U from U = 0, with ``pushed`` = D^-1 B. With ``threads`` > 1 each step's
    product is split by rows over that many threads (scipy's sparse products release the GIL):
    the same numbers, each row summed in the same order."""
    pushed = np.ascontiguousarray(pushed, dtype=np.float32)
    if threads > 1 and view.step.shape[0] >= SPLIT_ROWS:
        return _propagate_split(view, pushed, threads)
    u = np.zeros_like(pushed)
    for _ in range(view.iterations):
        u = pushed + view.step @ u
    return u


def _propagate_split(view: View, pushed: np.ndarray, threads: int) -> np.ndarray:
    bounds = np.linspace(0, len(pushed), threads + 1).astype(int)
    parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    blocks = [view.step[part] for part in parts]  # row blocks (CSR slices are copies: made once)
    u, after = np.zeros_like(pushed), np.empty_like(pushed)

    def step(i: int) -> None:
        np.add(pushed[parts[i]], blocks[i] @ u, out=after[parts[i]])

    with ThreadPoolExecutor(threads) as pool:
        for _ in range(view.iterations):
            list(pool.map(step, range(threads)))  # every block of this step before the next
            u, after = after, u
    return u


def unit_potentials(view: View, rows: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """(N, len(rows)) float32: each row's potential for a unit source at that image alone. The
    iteration is linear, so any labels' potentials are these columns times their sources, and a
    label's column is the same whatever the other labels are (``sslviz.fewshot.poisson_kept``
    keeps them)."""
    rows = np.asarray(rows, dtype=np.int64)
    n = view.step.shape[0]
    out = np.empty((n, len(rows)), dtype=np.float32)
    for start in range(0, len(rows), UNIT_BATCH):  # (N, batch) at a time
        part = rows[start : start + UNIT_BATCH]
        pushed = np.zeros((n, len(part)), dtype=np.float32)
        pushed[part, np.arange(len(part))] = view.inverse[part]
        out[:, start : start + len(part)] = propagate(view, pushed, threads=threads)
    return out


@dataclass(frozen=True)
class Units:
    """The kept ``unit_potentials`` of one view (``sslviz.fewshot.poisson_kept``): columns (N, m)
    float32, their sums (m,) and cross-products (m, m) over all N rows (float64), and the
    positions (n,) of the labeled rows among the columns."""

    columns: np.ndarray
    position: np.ndarray
    sums: np.ndarray
    gram: np.ndarray


def predict(
    views: tuple[View, ...],
    labeled_idx: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    units: Callable[[int, np.ndarray], Units | None] | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """(len(rows), n_classes) class probabilities (default rows: all N) from labels ``y`` (n,) at
    ``labeled_idx`` (n,): the mean over ``views`` of each one's ``probabilities``;
    ``units(i, labeled_idx)``: the kept ``Units`` of view i, or None: solved here."""
    answers = []
    for i, view in enumerate(views):
        kept = units(i, labeled_idx) if units is not None else None
        answers.append(probabilities(*potentials(view, labeled_idx, y, n_classes, kept, rows)))
    return sum(answers) / len(answers)


def potentials(
    view: View | sp.csr_matrix,
    labeled_idx: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    units: Units | None = None,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(U (len(rows), n_classes), reached (len(rows),) bool), default rows: all N: the solution of
    L U = B on ``view`` (or a graph W) for labels ``y`` (n,) at ``labeled_idx`` (n,), in units of
    its mean per-class spread over all rows; ``units``: kept unit potentials (then U is their sum
    weighted by the sources). A component whose labels are all of one class has no sources left
    after balancing: it gets one unit for that class. Rows of components without a label are 0
    and not reached."""
    if not isinstance(view, View):
        view = View.of(view)
    n, component = view.step.shape[0], view.component
    onehot = np.eye(n_classes)[y]  # (n, K)
    sources = np.zeros((len(labeled_idx), n_classes))  # (n, K): B at the labeled rows
    single: dict[int, int] = {}  # component -> its only labeled class
    for c in np.unique(component[labeled_idx]):
        mine = component[labeled_idx] == c
        if len(np.unique(y[mine])) == 1:
            single[int(c)] = int(y[mine][0])
        sources[mine] = onehot[mine] - onehot[mine].mean(axis=0)
    lit = np.unique(component[labeled_idx])  # the components with a label
    spread_over = np.setdiff1d(lit, list(single))  # the components whose potentials vary
    count = int(view.sizes[spread_over].sum())  # rows the spread is measured over
    if units is not None:
        # A unit potential is 0 outside its image's component and the sources of a one-class
        # component are 0, so the kept sums and cross-products over all rows give the spread
        # without an (N, K) product (cross-validation asks for a few rows).
        weights = np.zeros((units.columns.shape[1], n_classes))  # (m, K) the sources, by column
        np.add.at(weights, units.position, sources)
        mean = units.sums @ weights / max(count, 1)  # (K,)
        second = np.einsum("ik,ij,jk->k", weights, units.gram, weights) / max(count, 1)
        spread = float(np.sqrt(np.maximum(second - mean**2, 0.0)).mean()) if count else 0.0
        picked = units.columns if rows is None else units.columns[rows]
        u = picked @ weights.astype(np.float32)
    else:
        pushed = np.zeros((n, n_classes))
        np.add.at(pushed, labeled_idx, view.inverse[labeled_idx, None] * sources)
        u = propagate(view, pushed)
        mixed = np.isin(component, spread_over)
        spread = float(u[mixed].std(axis=0).mean()) if count else 0.0
        u = u if rows is None else u[rows]
    where = component if rows is None else component[rows]
    reached = np.isin(where, lit)
    u = u / spread if spread > 1e-12 else np.zeros_like(u)
    for c, label in single.items():
        u[where == c, label] = 1.0
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
