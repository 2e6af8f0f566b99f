"""Suggestions: at cold start one typical image from each cluster no label covers yet; later the
least certain images, spread out."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_blobs

from sslviz.fewshot.suggest import _typicality, suggest


def clusters(k: int = 8, n: int = 400):
    x, y = make_blobs(n, 16, centers=k, cluster_std=0.5, center_box=(-20, 20), random_state=1)
    return x.astype(np.float32), y


def test_cold_start_covers_every_cluster_once() -> None:
    x, y = clusters()
    s = suggest(x, [], [], n=8)
    assert s.strategy == "typiclust"
    assert sorted(y[s.indices]) == list(range(8))


def test_cold_start_goes_to_the_clusters_labels_do_not_cover() -> None:
    x, y = clusters()
    labeled = np.concatenate([np.flatnonzero(y == c)[:1] for c in (0, 1, 2)])
    s = suggest(x, labeled, ["a", "b", "c"], n=5)
    assert sorted(y[s.indices]) == [3, 4, 5, 6, 7]
    assert not set(s.indices) & set(labeled)


def test_typical_means_dense() -> None:
    rng = np.random.default_rng(0)
    core = rng.normal(0, 0.1, (50, 2))
    outlier = np.array([[5.0, 5.0]])
    t = _typicality(np.vstack([core, outlier]))
    assert t.argmin() == 50 and t[:50].min() > t[50]


def test_later_suggestions_are_uncertain_spread_and_unlabeled() -> None:
    x, y = make_blobs(600, 2, centers=[[-2, 0], [2, 0]], cluster_std=1.2, random_state=0)
    labeled = np.concatenate([np.flatnonzero(y == c)[:10] for c in (0, 1)])
    s = suggest(x.astype(np.float32), labeled, [str(v) for v in y[labeled]], n=6)
    assert s.strategy == "margin+k-center"
    assert len(set(s.indices)) == 6 and not set(s.indices) & set(labeled)
    assert np.abs(x[s.indices, 0]).mean() < np.abs(x[:, 0]).mean()  # near the boundary x = 0
    assert np.ptp(x[s.indices, 1]) > 1.0  # not one spot: spread along the boundary


def test_asking_for_more_than_there_is() -> None:
    x, _ = clusters(k=3, n=12)
    s = suggest(x, np.arange(10), ["a", "b"] * 5, n=5)
    assert len(s.indices) == 2
