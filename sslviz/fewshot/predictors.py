"""Few-shot predictors: from a few labeled rows of an embedding to a label for every row.

All three see the whole embedding (N, D) — the unlabeled images are present, so a predictor may be
transductive (DESIGN 3.6):

- ``logreg``: multinomial logistic regression on the frozen embedding, fitted on the labeled rows,
  features standardised over all N rows (``LOGREG_FEATURES``).
- ``knn``: weighted k nearest labeled neighbours by cosine similarity of standardised features,
  each neighbour's vote weighted by exp(similarity / 0.1).
- ``label-spreading``: Zhou et al. (NIPS 2003) on a sparse symmetric kNN graph over all N images
  (never the dense RBF kernel, which is O(N^2) memory), then class-mass normalisation.

    prediction = fit_predict(vectors, labeled_idx, labels, "logreg")
    prediction.labels        # (N,) predicted class name of every row
    prediction.confidence    # (N,) probability of that class
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from sslviz.core.errors import UserError

METHODS = ("logreg", "knn", "label-spreading")

# Logistic regression's inverse regularisation on standardised features; measured in
# benchmarks/fewshot_quality.py (not tuned to one data set).
LOGREG_C = 1.0
# Standardised columns beat unit rows (and both together) for logistic regression on average over
# 8 data sets x 2 label budgets in benchmarks/fewshot_quality.py: unit rows won only on raw
# (unstandardised) pixels. "l2" and "l2+standardize" stay available to measure.
LOGREG_FEATURES = "standardize"
# Features for cosine similarity (kNN and the label-spreading graph): standardised columns, then
# unit rows ("center": centred only). Standardising first measured far better on encoder
# embeddings (random-init CNN on digits, 5 labels per class: label spreading 0.70 -> 0.87).
COSINE_FEATURES = "standardize"
KNN_K = 10
KNN_TEMPERATURE = 0.1
GRAPH_K = 10  # neighbours per node of the label-spreading graph
SPREAD_ALPHA = 0.99  # how far labels travel (Zhou et al.'s alpha): 0 = stay, 1 = all graph
SPREAD_ITERATIONS = 60
EXACT_KNN_MAX = 30_000  # above this many rows the graph uses approximate neighbours
GRAPH_DIMS = 48  # approximate neighbours are searched on a PCA of this many dimensions
PROBE_CELLS = 6


@dataclass(frozen=True)
class Prediction:
    """A predicted class for every row of the embedding.

    labels (N,) class names; index (N,) positions in ``classes``; confidence (N,) the predicted
    class's probability; probabilities (N, K) rows summing to 1; classes (K,) sorted names.
    """

    labels: np.ndarray
    index: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray
    classes: list[str]
    method: str


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}: use one of auto, {', '.join(METHODS)}")
    return method


def encode_labels(labels: np.ndarray | list[str]) -> tuple[np.ndarray, list[str]]:
    """Class names -> (y (n,) int64 positions in ``classes``, classes sorted)."""
    classes, y = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return y.astype(np.int64), [str(c) for c in classes]


def fit_predict(
    vectors: np.ndarray,
    labeled_idx: np.ndarray,
    labels: np.ndarray | list[str],
    method: str,
    *,
    features: Features | None = None,
) -> Prediction:
    """Fit ``method`` on the labeled rows and predict all N rows.

    vectors (N, D); labeled_idx (n,) row positions; labels (n,) class names (>= 2 classes).
    ``features`` reuses prepared features (and the graph) across calls on the same vectors.
    """
    check_method(method)
    y, classes = encode_labels(labels)
    if len(classes) < 2:
        raise UserError("give at least two different labels to predict between")
    features = features or Features(vectors)
    probabilities = predict_proba(
        features, np.asarray(labeled_idx, dtype=np.int64), y, len(classes), method
    )
    return _prediction(probabilities, classes, method)


def predict_proba(
    features: Features,
    labeled_idx: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    method: str,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """(len(rows), n_classes) class probabilities from labels ``y`` (n,) at ``labeled_idx``, of
    ``rows`` (default: all N). Inductive methods compute only those rows (cross-validation asks
    for a few held-out ones); label spreading always propagates over the whole graph."""
    if method == "logreg":
        return _logreg(features.logreg, labeled_idx, y, n_classes, rows)
    if method == "knn":
        x = features.cosine
        return _knn(x if rows is None else x[rows], x[labeled_idx], y, n_classes)
    out = spread(features.graph, labeled_idx[None, :], y[None, :], n_classes)[0]
    return out if rows is None else out[rows]


def _prediction(probabilities: np.ndarray, classes: list[str], method: str) -> Prediction:
    index = probabilities.argmax(axis=1)
    return Prediction(
        labels=np.asarray(classes, dtype=object)[index],
        index=index,
        confidence=probabilities[np.arange(len(index)), index].astype(np.float32),
        probabilities=probabilities.astype(np.float32),
        classes=classes,
        method=method,
    )


# --- features --------------------------------------------------------------------------------------
class Features:
    """The embedding prepared once for each predictor (lazily: only what is used is computed).

    vectors (N, D) float; ``logreg`` (N, D) float32; ``cosine`` (N, D') centred unit rows;
    ``graph`` the normalised kNN graph S = D^-1/2 W D^-1/2, sparse (N, N).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        logreg_features: str = LOGREG_FEATURES,
        cosine_features: str = COSINE_FEATURES,
    ) -> None:
        self.vectors = np.asarray(vectors)
        if self.vectors.ndim != 2 or not len(self.vectors):
            raise UserError("the embedding is empty: nothing to predict")
        self.logreg_features = logreg_features
        self.cosine_features = cosine_features
        self._logreg: np.ndarray | None = None
        self._cosine: np.ndarray | None = None
        self._graph: sp.csr_matrix | None = None

    @property
    def logreg(self) -> np.ndarray:
        if self._logreg is None:
            self._logreg = logreg_features(self.vectors, self.logreg_features)
        return self._logreg

    @property
    def cosine(self) -> np.ndarray:
        if self._cosine is None:
            x = np.asarray(self.vectors, dtype=np.float32)
            x = x - x.mean(axis=0, keepdims=True)  # ReLU features all share a direction
            if self.cosine_features == "standardize":
                std = x.std(axis=0)
                x = x / np.where(std > 1e-8, std, 1.0)
            self._cosine = _unit_rows(x)
        return self._cosine

    @property
    def graph(self) -> sp.csr_matrix:
        if self._graph is None:
            self._graph = knn_graph(self.cosine, GRAPH_K)
        return self._graph


def logreg_features(vectors: np.ndarray, how: str) -> np.ndarray:
    """(N, D) float32 features for logistic regression: "standardize", "l2" or "l2+standardize".

    Every variant leaves rows of norm about sqrt(D), so one ``LOGREG_C`` means the same
    regularisation for each.
    """
    if how not in ("standardize", "l2", "l2+standardize"):
        raise ValueError(f"unknown logistic regression features {how!r}")
    x = np.asarray(vectors, dtype=np.float32)
    if how.startswith("l2"):
        x = _unit_rows(x) * np.float32(np.sqrt(x.shape[1]))
    if how.endswith("standardize"):
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)
    return x.astype(np.float32, copy=False)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 1e-12, norms, 1.0)).astype(np.float32, copy=False)


# --- logistic regression ---------------------------------------------------------------------------
def _logreg(
    x: np.ndarray,
    labeled_idx: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    # With L2 regularisation the weights lie in the span of the training rows, so fitting on
    # their coordinates in an orthonormal basis Q (D, n) of that span gives exactly the same model
    # in n instead of D dimensions (3072 pixels, 50 labels: ~100x faster).
    train = x[labeled_idx].astype(np.float64)  # (n, D)
    q, _ = np.linalg.qr(train.T)  # (D, n)
    model = LogisticRegression(C=LOGREG_C, max_iter=1000)
    # One BLAS thread: the problem is tiny, and threads fighting over busy cores made it 10x slower.
    with threadpool_limits(1):
        model.fit(train @ q, y)
    if rows is not None:
        x = x[rows]
    out = np.zeros((len(x), n_classes), dtype=np.float64)
    for start in range(0, len(x), 16384):
        z = x[start : start + 16384].astype(np.float64) @ q  # (chunk, n)
        out[start : start + len(z), model.classes_] = model.predict_proba(
            z
        )  # a fold may miss a class
    return out


# --- weighted kNN ----------------------------------------------------------------------------------
def _knn(x: np.ndarray, reference: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities of rows x (M, D) from labeled unit rows ``reference`` (n, D) with labels y."""
    k = min(KNN_K, len(reference))
    out = np.empty((len(x), n_classes), dtype=np.float64)
    for start in range(0, len(x), 8192):  # (chunk, n) similarities at a time
        sims = x[start : start + 8192] @ reference.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else None
        if top is None:
            top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        s = np.take_along_axis(sims, top, axis=1)
        w = np.exp((s - s.max(axis=1, keepdims=True)) / KNN_TEMPERATURE)  # (chunk, k)
        votes = np.zeros((len(s), n_classes))
        np.add.at(votes, (np.arange(len(s))[:, None], y[top]), w)
        out[start : start + len(s)] = votes / votes.sum(axis=1, keepdims=True)
    return out


# --- label spreading on a kNN graph ----------------------------------------------------------------
def knn_graph(x: np.ndarray, k: int) -> sp.csr_matrix:
    """The symmetric normalised kNN graph of unit rows ``x`` (N, D): S (N, N) sparse.

    Exact neighbours (blocked matrix products) up to ``EXACT_KNN_MAX`` rows, an inverted-file
    search above (``_approximate_knn``).
    """
    n = len(x)
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n))
    # One BLAS thread: these are many small products, and threads contending for busy cores made
    # them 6x slower (measured on the shared 2-core machine).
    with threadpool_limits(1):
        neighbours = _exact_knn(x, k) if n <= EXACT_KNN_MAX else _approximate_knn(x, k)  # (N, k)
    rows = np.repeat(np.arange(n), k)
    w = sp.csr_matrix((np.ones(n * k, dtype=np.float32), (rows, neighbours.ravel())), (n, n))
    w = w.maximum(w.T)  # symmetric: i~j if either is among the other's neighbours
    degree = np.asarray(w.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    return (scale @ w @ scale).tocsr().astype(np.float32)


def _exact_knn(x: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(x), k), dtype=np.int64)
    for start in range(0, len(x), 2048):
        sims = x[start : start + 2048] @ x.T  # (chunk, N)
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf  # not itself
        out[start : start + len(sims)] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def _approximate_knn(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Approximate neighbours by an inverted file: k-means cells of ~sqrt(N) rows, each row's
    neighbours searched among the rows of the ``PROBE_CELLS`` cells nearest its own.

    Plain numpy (no numba JIT, whose compile alone took ~70 s on the 2-core machine): about
    N * PROBE_CELLS * sqrt(N) dot products, e.g. 100k rows in seconds.
    """
    from sklearn.cluster import MiniBatchKMeans

    n = len(x)
    if x.shape[1] > GRAPH_DIMS:  # unit rows: euclidean neighbours are cosine neighbours
        from sklearn.decomposition import PCA

        sample = x[np.random.default_rng(seed).choice(n, min(n, 20_000), replace=False)]
        pca = PCA(GRAPH_DIMS, random_state=seed, svd_solver="randomized").fit(sample)
        x = _unit_rows(pca.transform(x))
    n_cells = max(1, int(np.sqrt(n)))
    rng = np.random.default_rng(seed)
    kmeans = MiniBatchKMeans(n_cells, batch_size=4096, n_init=1, max_iter=20, random_state=seed)
    kmeans.fit(x[rng.choice(n, min(n, 50 * n_cells), replace=False)])  # cells from a sample
    cell = kmeans.predict(x)  # (N,)
    centres = _unit_rows(kmeans.cluster_centers_.astype(np.float32))
    similarity = centres @ centres.T
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
        sims = x[rows] @ x[candidates].T  # (rows, candidates)
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
