"""Poisson learning (Calder et al. 2020) on known structure: it follows connected chains from one
label per class, keeps the sources balanced within each connected component, gives a component
labeled with one class that class, and leaves a component without labels undecided."""

from __future__ import annotations

import numpy as np
from test_fewshot_predictors import blobs, chains

from sslviz.fewshot import poisson
from sslviz.fewshot.graph import _approximate_knn, _exact_knn
from sslviz.fewshot.poisson import potentials, probabilities, views, weighted_graph
from sslviz.fewshot.poisson_kept import KeptPoisson
from sslviz.fewshot.predictors import fit_predict


def test_poisson_follows_the_chains_from_one_label_per_class() -> None:
    x, y = chains()
    idx = np.array([0, 400])  # one label per class, at one end of its chain
    rest = np.setdiff1d(np.arange(len(y)), idx)
    p = fit_predict(x, idx, y[idx], "poisson")
    assert (p.labels[rest] == y[rest]).mean() >= 0.95
    assert (fit_predict(x, idx, y[idx], "logreg").labels[rest] == y[rest]).mean() < 0.9


def test_the_graphs_are_sparse_symmetric_and_weighted_by_distance() -> None:
    x, _ = blobs(n=400, dim=60)  # more than PCA_DIMS columns: reduced first
    graphs = views(x)
    assert len(graphs) == 2  # the plain and the whitened principal components
    for w in graphs:
        assert w.shape == (400, 400) and w.nnz <= 2 * 5 * 400
        assert abs(w - w.T).max() < 1e-12 and w.diagonal().max() == 0
        assert w.data.min() > 0 and w.data.max() <= 2.0  # exp(-4 (d / d_K)^2), both directions
    assert (graphs[0] != graphs[1]).nnz  # two different neighbourhoods


def test_a_direction_without_variance_is_not_blown_up() -> None:
    x, _ = blobs(n=200, dim=8)
    flat = np.hstack([x, np.zeros((200, 4), np.float32)])  # 4 constant columns
    whitened = views(flat)[1]
    np.testing.assert_allclose(whitened.toarray(), views(x)[1].toarray(), atol=1e-4)


def two_touching_groups(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian groups of 150 in 5-D, 3 standard deviations apart: one connected graph."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (300, 5))
    x[150:, 0] += 3.0
    return x.astype(np.float32), np.repeat([0, 1], 150)


def test_each_component_balances_its_own_sources() -> None:
    x, y = two_touching_groups()
    data = np.vstack([x, x[:150] + 1000.0])  # a far copy of group 0: a component of its own
    w = weighted_graph(data)
    # five labels of group 0 and one of group 1 in the first component: its sources must still
    # sum to zero, or the surplus of group 0 floods the component
    idx = np.array([0, 1, 2, 3, 4, 150])
    u, reached = potentials(w, idx, y[idx], 2)
    assert reached[:300].all() and not reached[300:].any()
    assert (u[:300].argmax(axis=1) == y).mean() >= 0.9
    np.testing.assert_allclose(probabilities(u, reached)[300:], 0.5)  # nobody labeled it
    # one label in the far copy: a component whose labels are all of one class takes that class
    u, reached = potentials(w, np.append(idx, 300), np.append(y[idx], 1), 2)
    assert reached.all() and (u[300:].argmax(axis=1) == 1).all()
    assert (u[:300].argmax(axis=1) == y).mean() >= 0.9  # the first component as before


def test_approximate_euclidean_neighbours_agree_with_exact_ones() -> None:
    x, _ = blobs(n=800, dim=16)
    x = x * np.linspace(0.5, 3.0, 16, dtype=np.float32)  # not unit rows: a euclidean search
    exact = _exact_knn(x, 5, "euclidean")
    truth = np.argsort(((x[:, None, :] - x[None]) ** 2).sum(axis=2), axis=1)[:, 1:6]
    assert all(set(a) == set(b) for a, b in zip(exact, truth, strict=True))
    approximate = _approximate_knn(x, 5, metric="euclidean")
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(exact, approximate, strict=True)])
    assert overlap >= 0.9


def test_kept_unit_potentials_give_the_answer_of_solving_afresh() -> None:
    """Each label's unit potential, kept and weighted by its source, is the same solution as the
    sources propagated at once: with labels in one component, in two (one of them all one class)
    and a component nobody labeled; for every row and for a few (cross-validation's case)."""
    x, y = two_touching_groups()
    data = np.vstack([x, x[:150] + 1000.0, x[150:] - 1000.0])  # three components
    truth = np.concatenate([y, y[:150], y[150:]])
    kept = KeptPoisson(data, shared_scale=True)
    rows = np.arange(0, 600, 7)
    for idx in ([0, 1, 2, 3, 4, 150], [0, 1, 2, 150, 300, 301], [0, 150, 300, 460]):
        idx = np.array(idx)
        direct = poisson.predict(kept.views, idx, truth[idx], 2)
        np.testing.assert_allclose(
            poisson.predict(kept.views, idx, truth[idx], 2, units=kept.units), direct, atol=1e-5
        )
        found = poisson.predict(kept.views, idx, truth[idx], 2, units=kept.units, rows=rows)
        np.testing.assert_allclose(found, direct[rows], atol=1e-5)
    assert kept.computed == len({0, 1, 2, 3, 4, 150, 300, 301, 460})  # each label's once


def test_many_labels_of_an_embedding_only_in_memory_are_solved_directly() -> None:
    """Nothing would reuse their unit potentials: past ``UNSAVED_MAX`` labels each fold is solved
    as it is, with the same answer."""
    x, y = two_touching_groups()
    kept = KeptPoisson(x, shared_scale=True)
    idx = np.arange(0, 300, 3)  # 100 labels
    found = poisson.predict(kept.views, idx, y[idx], 2, units=kept.units)
    assert kept.computed == 0
    np.testing.assert_allclose(found, poisson.predict(kept.views, idx, y[idx], 2), atol=1e-6)


def test_a_step_split_over_threads_gives_the_same_numbers(monkeypatch) -> None:
    """A new label's column is computed with each step's product split by rows over threads
    (``poisson_kept.THREADS``): every row is summed in the same order, so exactly the same."""
    x, _ = two_touching_groups()
    view = poisson.View.of(views(x)[0])
    rows = np.array([0, 5, 299])
    alone = poisson.unit_potentials(view, rows)
    monkeypatch.setattr(poisson, "SPLIT_ROWS", 0)  # the test's graph is small
    for threads in (2, 3):
        np.testing.assert_array_equal(poisson.unit_potentials(view, rows, threads=threads), alone)
