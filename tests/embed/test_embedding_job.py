"""The background path: an embedding + map job through the one job runner (a real worker
process), stopped, resumed from the rows already embedded, and listed like any run."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from sslviz.cli import main
from sslviz.maps.embed import cached_embeddings
from sslviz.maps.embedding_job import INLINE_MAX_IMAGES, job_request, runs_inline
from sslviz.maps.project import cached_projection
from sslviz.maps.quality import effective_rank, knn_agreement
from sslviz.runner import jobs
from sslviz.runner.execute import execute
from sslviz.store import Run, Store


def test_large_datasets_go_to_the_job_runner() -> None:
    assert runs_inline(INLINE_MAX_IMAGES) and not runs_inline(INLINE_MAX_IMAGES + 1)


@pytest.mark.slow
def test_job_stops_resumes_in_a_worker_and_lists_like_a_run(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = store.datasets.get_by_name("tiny")
    run = store.runs.record(job_request(store, "tiny", "random"))  # queued, not scheduled
    # the executor the worker calls, told to stop at once: cancelled, nothing cached yet
    ended = execute(store, run.id, should_stop=lambda: True)
    assert ended.status == "cancelled" and ended.total_steps == dataset.n_images + 1
    assert cached_embeddings(store, "tiny", "random") is None
    # resumed: a real worker process claims it and finishes embedding + map, beating all along
    # though it counts as hung after 1 s without a sign of life (the UMAP fit in its child
    # process, which prints nothing for seconds, used to be such a silence)
    monkeypatch.setenv("SSLVIZ_PROGRESS_DEADLINE", "1")
    jobs.resume(store, run.id)
    ended, silence = follow(store, run.id, timeout=600)
    assert ended.status == "finished", (ended.error, ended.traceback)
    assert silence < SILENCE_ALLOWED, f"no heartbeat for {silence:.1f} s while working"
    assert ended.step == ended.total_steps and ended.progress == 1.0
    proj = cached_projection(store, "tiny", "random")
    assert proj is not None and np.isfinite(proj.coords).all()
    # `sslviz runs` and `status` show it like any run
    assert main(["runs", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["task"] for r in runs if r["run"] == run.id] == ["embedding"]
    assert main(["status", str(run.id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "finished"


SILENCE_ALLOWED = 10.0  # s: beats come every 2 s; a busy shared machine may delay a few


def follow(store: Store, run_id: int, timeout: float) -> tuple[Run, float]:
    """Wait for the run to end; also the longest time its heartbeat was older than while it
    worked (from its first progress on: before that the worker is importing torch)."""
    deadline = time.monotonic() + timeout
    silence = 0.0
    while time.monotonic() < deadline:
        run = store.runs.get(run_id)
        if run.status not in ("queued", "running"):
            return run, silence
        if run.status == "running" and run.step > 0 and run.heartbeat_at:
            silence = max(silence, time.time() - run.heartbeat_at)
        jobs.reap(store)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end within {timeout} s")


def test_quality_figures() -> None:
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(500, 32))
    collapsed = np.outer(rng.normal(size=500), rng.normal(size=32)) + 1e-6 * spread
    assert effective_rank(spread) > 25 and effective_rank(collapsed) < 1.5
    labels = np.repeat([0, 1], 250)
    apart = spread + 10 * labels[:, None]
    assert knn_agreement(apart[:, :2], labels) > 0.95
    assert 0.3 < knn_agreement(spread, labels) < 0.7
