"""Suggestions: at cold start one typical image from each cluster no label covers yet; later the
least certain images, spread out."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_fewer_images_left_than_asked_gives_each_once() -> None:
    """With 8 unlabeled images (some in a group nobody labeled) and 10 asked for, the k-center loop
    picked index 0 again and again (9 picks, one twice: the page's widgets then shared a key and
    Streamlit raised)."""
    x, y = make_blobs(
        [6, 6, 6], 2, centers=[[-6, 0], [6, 0], [0, 30]], cluster_std=1.0, random_state=0
    )
    labeled = np.concatenate([np.flatnonzero(y == c)[:5] for c in (0, 1)])  # none of group 2
    names = [str(v) for v in y[labeled]]
    for n in (3, 8, 10, 50):
        s = suggest(x.astype(np.float32), labeled, names, n=n)
        assert s.uncovered_first >= 1, s.strategy
        assert len(s.indices) == min(n, 8), (n, s.indices, s.strategy)
        assert len(set(s.indices)) == len(s.indices) and not set(s.indices) & set(labeled)


@pytest.mark.parametrize("n", [1, 5, 12, 30])
def test_the_count_asked_for_is_the_count_given(n: int) -> None:
    x, y = clusters(k=6, n=300)
    for per in (1, 6):  # cold start and margin + k-center, with and without an uncovered lead
        labeled = np.concatenate([np.flatnonzero(y == c)[:per] for c in range(3)])
        s = suggest(x, labeled, [str(v) for v in y[labeled]], n=n)
        assert len(s.indices) == n, (per, s.strategy)
        assert len(set(s.indices)) == n and not set(s.indices) & set(labeled)
