"""Each predictor on data with known structure: separated blobs (every method), two moons (only
the transductive graph method follows the manifold from one label per moon), cosine directions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from sslviz.core.errors import UserError
from sslviz.fewshot.graph import _approximate_knn, _exact_knn, knn_graph
from sslviz.fewshot.predictors import METHODS, Features, fit_predict, logreg_features


def blobs(n: int = 300, classes: int = 3, dim: int = 20, seed: int = 0):
    x, y = make_blobs(
        n, dim, centers=classes, cluster_std=1.0, center_box=(-8, 8), random_state=seed
    )
    return x.astype(np.float32), np.array([f"c{v}" for v in y])


def first(y: np.ndarray, per: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == c)[:per] for c in np.unique(y)])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_separates_blobs(method: str) -> None:
    x, y = blobs()
    idx = first(y, 2)
    p = fit_predict(x, idx, y[idx], method)
    rest = np.setdiff1d(np.arange(len(y)), idx)
    assert (p.labels[rest] == y[rest]).mean() >= 0.97
    assert p.probabilities.shape == (len(y), 3)
    np.testing.assert_allclose(p.probabilities.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(p.confidence, p.probabilities.max(axis=1), atol=1e-6)
    assert p.classes == ["c0", "c1", "c2"] and p.method == method


def chains(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """XOR joined by arcs, in 8-D: class "a" has blobs at +A and -A joined by an arc through +C,
    class "b" blobs at +B and -B through +D (A = (7, 7, 0..), B = (7, -7, 0..), C = 10 e2,
    D = 10 e3). The four blobs are an XOR no linear model separates; the arcs connect each
    class, so a method that follows the data's neighbourhoods can."""
    rng = np.random.default_rng(seed)
    a, b = np.zeros((2, 8)), np.zeros((2, 8))
    a[0, :2], a[1, 2] = (7, 7), 10
    b[0, :2], b[1, 3] = (7, -7), 10
    parts, y = [], []
    for label, (end, via) in (("a", a), ("b", b)):
        theta = np.concatenate(
            [rng.normal(0, 0.1, 120), rng.normal(np.pi, 0.1, 120), np.linspace(0, np.pi, 160)]
        )
        arc = np.cos(theta)[:, None] * end + np.sin(np.abs(theta))[:, None] * via
        parts.append(arc + rng.normal(0, 0.3, arc.shape))
        y += [label] * len(arc)
    return np.vstack(parts).astype(np.float32), np.array(y)


def test_label_spreading_follows_the_manifold_where_a_linear_model_cannot() -> None:
    x, y = chains()
    idx = np.array([0, 400])  # one label per class, in its +A / +B blob
    rest = np.setdiff1d(np.arange(len(y)), idx)
    spread = fit_predict(x, idx, y[idx], "label-spreading")
    linear = fit_predict(x, idx, y[idx], "logreg")
    assert (spread.labels[rest] == y[rest]).mean() >= 0.98
    assert (linear.labels[rest] == y[rest]).mean() < 0.9


@pytest.mark.parametrize("method", METHODS)
def test_confidence_is_lower_between_classes(method: str) -> None:
    x, y = blobs(classes=2)
    centres = np.stack([x[y == c].mean(axis=0) for c in ("c0", "c1")])
    between = (centres[0] + centres[1]) / 2 + np.random.default_rng(0).normal(0, 0.5, (20, 20))
    data = np.vstack([x, between.astype(np.float32)])  # (320, 20): 20 ambiguous images
    idx = first(y, 5)
    p = fit_predict(data, idx, y[idx], method)
    assert p.confidence[:300].mean() > p.confidence[300:].mean()


def test_one_class_or_unknown_method_is_refused() -> None:
    x, y = blobs()
    with pytest.raises(UserError, match="two different labels"):
        fit_predict(x, np.array([0, 1]), np.array(["a", "a"]), "logreg")
    with pytest.raises(UserError, match="unknown method"):
        fit_predict(x, np.array([0, 1]), np.array(["a", "b"]), "svm")


def test_logreg_feature_variants_keep_the_scale() -> None:
    x, _ = blobs(dim=30)
    for how in ("standardize", "l2", "l2+standardize"):
        f = logreg_features(x * 100, how)
        assert f.shape == x.shape and f.dtype == np.float32
        assert np.sqrt((f**2).sum(axis=1)).mean() == pytest.approx(np.sqrt(30), rel=0.3)


def test_graph_is_sparse_symmetric_and_approximate_neighbours_agree() -> None:
    x, _ = blobs(n=800, dim=16)
    unit = Features(x).cosine
    graph = knn_graph(unit, 10)
    assert graph.nnz <= 2 * 10 * len(x)  # sparse: never the dense N x N kernel
    assert abs(graph - graph.T).max() < 1e-6
    exact = _exact_knn(unit, 10)
    approximate = _approximate_knn(unit, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approximate, strict=True)])
    assert overlap >= 0.9
