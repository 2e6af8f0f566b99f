"""Few-shot predictors: from a few labeled rows of an embedding to a label for every row.

Each sees the whole embedding (N, D) — the unlabeled images are present, so a predictor may be
transductive (DESIGN 3.6):

- ``logreg``: multinomial logistic regression on the frozen embedding, fitted on the labeled rows,
  features standardised over all N rows (``LOGREG_FEATURES``).
- ``knn``: weighted k nearest labeled neighbours by cosine similarity of standardised features,
  each neighbour's vote weighted by exp(similarity / 0.1).
- ``label-spreading``: Zhou et al. (NIPS 2003) on a sparse symmetric kNN graph over all N images
  (``sslviz.fewshot.graph``), then class-mass normalisation.
- ``umap-logreg``: logistic regression in a 10-D UMAP of the embedding fitted on all N images
  (``sslviz.fewshot.geometry``): follows the clusters the unlabeled images form.
- ``umap-spreading``: scikit-learn's ``LabelSpreading(kernel="knn")`` on that UMAP.
- ``self-training``: scikit-learn's ``SelfTrainingClassifier`` around ``umap-logreg``: unlabeled
  images predicted with probability >= ``SELF_TRAINING_THRESHOLD`` become labels, repeatedly
  (its probabilities averaged with ``umap-logreg``'s on the given labels alone).
- ``ensemble``: the mean of ``logreg``'s and ``umap-logreg``'s probabilities.
- ``poisson``: Poisson learning (Calder et al., ICML 2020) on two weighted kNN graphs of all N
  images (``sslviz.fewshot.poisson``): made for very few labels, where it beats the others.

    prediction = fit_predict(vectors, labeled_idx, labels, "logreg")
    prediction.labels        # (N,) predicted class name of every row
    prediction.confidence    # (N,) probability of that class
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from sslviz.core.errors import UserError
from sslviz.fewshot import poisson
from sslviz.fewshot.graph import knn_graph, spread, unit_rows
from sslviz.fewshot.poisson_kept import KeptPoisson

METHODS = (
    "logreg",
    "knn",
    "label-spreading",
    "umap-logreg",
    "umap-spreading",
    "self-training",
    "ensemble",
    "poisson",
)
UMAP_METHODS = ("umap-logreg", "umap-spreading", "self-training", "ensemble")  # need Features.umap

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
# In the 10-D UMAP few points carry a lot of information: weak regularisation measured better
# than C = 1 on digits and letters at 1 and 5 labels per class (benchmarks/fewshot_quality.py).
UMAP_C = 100.0
UMAP_SPREAD_NEIGHBORS = 10
UMAP_SPREAD_ALPHA = 0.9  # scikit-learn's clamping factor: 0.9 beat 0.2 at 1 and 5 labels/class
SELF_TRAINING_THRESHOLD = 0.9
SELF_TRAINING_ROUNDS = 10


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
    if method == "label-spreading":
        out = spread(features.graph, labeled_idx[None, :], y[None, :], n_classes)[0]
    elif method == "umap-logreg":
        return _logreg(features.umap, labeled_idx, y, n_classes, rows, c=UMAP_C)
    elif method == "umap-spreading":
        out = _sklearn_spreading(features.umap, labeled_idx, y, n_classes)
    elif method == "self-training":
        out = _self_training(features.umap, labeled_idx, y, n_classes)
    elif method == "poisson":
        kept = features.poisson
        return poisson.predict(kept.views, labeled_idx, y, n_classes, units=kept.units, rows=rows)
    else:  # ensemble
        parts = ("logreg", "umap-logreg")
        return sum(predict_proba(features, labeled_idx, y, n_classes, m, rows) for m in parts) / 2
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
        umap: np.ndarray | None = None,
        root: Path | None = None,
        shared_scale: bool = False,
        umap_fit: Callable[[], np.ndarray] | None = None,
        views_file: Path | None = None,
        views_stamp: tuple[int, int] = (0, 0),
    ) -> None:
        self.vectors = np.asarray(vectors)
        if self.vectors.ndim != 2 or not len(self.vectors):
            raise UserError("the embedding is empty: nothing to predict")
        self.logreg_features = logreg_features
        self.cosine_features = cosine_features
        self._logreg: np.ndarray | None = None
        self._cosine: np.ndarray | None = None
        self._graph: sp.csr_matrix | None = None
        self._umap = umap
        # how to get the UMAP when a predictor first needs it (fit and cache it beside the
        # embedding); until then umap and numba are never imported (a minute's compile on a
        # fresh machine for a prediction whose method needs no UMAP)
        self._umap_fit = umap_fit
        # Poisson's views and labels' unit potentials, saved beside the embedding when
        # ``views_file`` is given (with the embedding file's stamp): built once per embedding
        self.poisson = KeptPoisson(
            self.vectors, shared_scale=shared_scale, views_file=views_file, stamp=views_stamp
        )
        self._root = root  # the workspace whose numba cache a UMAP fit uses
        self._shared_scale = shared_scale  # columns of one unit (pixels): the UMAP keeps it
        # what other modules derive from the embedding alone (not the labels), kept with it so a
        # caller holding the Features computes it once, e.g. suggest's reduced points
        self.derived: dict[object, np.ndarray] = {}

    @property
    def logreg(self) -> np.ndarray:
        if self._logreg is None:
            self._logreg = logreg_features(self.vectors, self.logreg_features)
        return self._logreg

    @property
    def cosine(self) -> np.ndarray:
        if self._cosine is None:
            if self.cosine_features == "standardize" == self.logreg_features:
                x = self.logreg.copy()  # the same standardised columns: computed once for both
            else:
                x = np.array(self.vectors, dtype=np.float32)  # a copy, worked on in place
                x -= x.mean(axis=0, keepdims=True)  # ReLU features all share a direction
                if self.cosine_features == "standardize":
                    std = x.std(axis=0)
                    x /= np.where(std > 1e-8, std, 1.0)
            norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]  # unit rows (no (N, D) temp)
            x /= np.where(norms > 1e-12, norms, 1.0)
            self._cosine = x
        return self._cosine

    @property
    def graph(self) -> sp.csr_matrix:
        if self._graph is None:
            self._graph = knn_graph(self.cosine, GRAPH_K)
        return self._graph

    @property
    def has_umap(self) -> bool:
        """Whether the UMAP coordinates are at hand already (no fit needed)."""
        return self._umap is not None

    @property
    def poisson_graphs(self) -> tuple[sp.csr_matrix, ...]:
        """The weighted kNN graphs (N, N) Poisson learning runs on (``sslviz.fewshot.poisson``)."""
        return self.poisson.graphs

    @property
    def umap(self) -> np.ndarray:
        """(N, 10) standardised UMAP coordinates of all rows (``sslviz.fewshot.geometry``)."""
        if self._umap is None and self._umap_fit is not None:
            self._umap = self._umap_fit()
        if self._umap is None:
            from sslviz.fewshot.geometry import fit_coords

            self._umap = fit_coords(self.vectors, root=self._root, shared_scale=self._shared_scale)
        return self._umap


def logreg_features(vectors: np.ndarray, how: str) -> np.ndarray:
    """(N, D) float32 features for logistic regression: "standardize", "l2" or "l2+standardize".

    Every variant leaves rows of norm about sqrt(D), so one ``LOGREG_C`` means the same
    regularisation for each.
    """
    if how not in ("standardize", "l2", "l2+standardize"):
        raise ValueError(f"unknown logistic regression features {how!r}")
    x = np.array(vectors, dtype=np.float32)  # a copy, worked on in place (N x D: no more)
    if how.startswith("l2"):
        x = unit_rows(x) * np.float32(np.sqrt(x.shape[1]))
    if how.endswith("standardize"):
        std = x.std(axis=0)
        x -= x.mean(axis=0)
        x /= np.where(std > 1e-8, std, 1.0)
    return x


# --- logistic regression ---------------------------------------------------------------------------
def _logreg(
    x: np.ndarray,
    labeled_idx: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    rows: np.ndarray | None = None,
    *,
    c: float = LOGREG_C,
) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    # With L2 regularisation the weights lie in the span of the training rows, so fitting on
    # their coordinates in an orthonormal basis Q (D, n) of that span gives exactly the same model
    # in n instead of D dimensions (3072 pixels, 50 labels: ~100x faster).
    train = x[labeled_idx].astype(np.float64)  # (n, D)
    q, _ = np.linalg.qr(train.T)  # (D, n)
    model = LogisticRegression(C=c, max_iter=1000)
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


# --- scikit-learn's semi-supervised estimators on the UMAP -----------------------------------------
def _seeds(n: int, labeled_idx: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) scikit-learn's semi-supervised targets: the class at labeled rows, -1 elsewhere."""
    target = np.full(n, -1, dtype=np.int64)
    target[labeled_idx] = y
    return target


def _spread_columns(found: np.ndarray, fitted_classes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(found), n_classes), dtype=np.float64)
    out[:, fitted_classes] = found  # a fold may miss a class
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), 1.0 / n_classes)


def _sklearn_spreading(
    x: np.ndarray, labeled_idx: np.ndarray, y: np.ndarray, n_classes: int
) -> np.ndarray:
    """(N, n_classes) LabelSpreading with the sparse kNN kernel (never the dense RBF one)."""
    from sklearn.semi_supervised import LabelSpreading

    model = LabelSpreading(
        kernel="knn",
        n_neighbors=min(UMAP_SPREAD_NEIGHBORS, len(x) - 1),
        alpha=UMAP_SPREAD_ALPHA,
        max_iter=100,
    )
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "max_iter reached": the result is still usable
        model.fit(x, _seeds(len(x), labeled_idx, y))
    return _spread_columns(model.label_distributions_, model.classes_, n_classes)


def _self_training(
    x: np.ndarray, labeled_idx: np.ndarray, y: np.ndarray, n_classes: int
) -> np.ndarray:
    """(N, n_classes) SelfTrainingClassifier around logistic regression on the UMAP, averaged
    with that regression on the given labels alone: the self-trained model is near-certain on
    every image it pseudo-labeled (it trained on them), so alone it would call an image between
    two groups as sure as one in a group's middle."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import SelfTrainingClassifier

    model = SelfTrainingClassifier(
        LogisticRegression(C=UMAP_C, max_iter=1000),
        threshold=SELF_TRAINING_THRESHOLD,
        max_iter=SELF_TRAINING_ROUNDS,
    )
    base = LogisticRegression(C=UMAP_C, max_iter=1000)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, _seeds(len(x), labeled_idx, y))
        base.fit(x[labeled_idx], y)
    out = np.zeros((len(x), n_classes), dtype=np.float64)
    out[:, model.classes_] = model.predict_proba(x) / 2
    out[:, base.classes_] += base.predict_proba(x) / 2
    return out
