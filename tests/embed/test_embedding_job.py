"""The background path: an embedding + map job stopped at once ends cancelled with nothing
cached; the worker, the CLI and resume are exercised in test_cli_embeddings."""

from __future__ import annotations

import numpy as np

from sslviz.maps.embed import cached_embeddings
from sslviz.maps.embedding_job import INLINE_MAX_IMAGES, job_request, runs_inline
from sslviz.maps.quality import effective_rank, knn_agreement
from sslviz.runner.execute import execute
from sslviz.store import Store


def test_large_datasets_go_to_the_job_runner() -> None:
    assert runs_inline(INLINE_MAX_IMAGES) and not runs_inline(INLINE_MAX_IMAGES + 1)


def test_job_stopped_at_once_ends_cancelled_with_nothing_cached(store: Store) -> None:
    # (resumed in a real worker, followed and listed through the CLI: test_cli_embeddings)
    dataset = store.datasets.get_by_name("tiny")
    run = store.runs.record(job_request(store, "tiny", "random"))  # queued, not scheduled
    ended = execute(store, run.id, should_stop=lambda: True)  # the executor the worker calls
    assert ended.status == "cancelled" and ended.total_steps == dataset.n_images + 1
    assert cached_embeddings(store, "tiny", "random") is None


def test_quality_figures() -> None:
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(500, 32))
    collapsed = np.outer(rng.normal(size=500), rng.normal(size=32)) + 1e-6 * spread
    assert effective_rank(spread) > 25 and effective_rank(collapsed) < 1.5
    labels = np.repeat([0, 1], 250)
    apart = spread + 10 * labels[:, None]
    assert knn_agreement(apart[:, :2], labels) > 0.95
    assert 0.3 < knn_agreement(spread, labels) < 0.7
