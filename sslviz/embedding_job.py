"""Embedding + map of a large dataset as a background run (kind ``embedding``) of the one job
runner: same claim, heartbeat, cancel, reap and resume as training (DESIGN 3.3).

    run = submit(store, "big", 3)                 # queued, started when the CPU has a free slot
    execute_run(store, run.id, should_stop=...)   # what the worker calls

The run's config holds the request (source, layer, grid, UMAP parameters). Progress is
``step`` / ``total_steps``: one step per embedded image, plus one for the map. Cancel works at
any moment: between embedding batches (the rows done are kept) and during the UMAP fit (its child
process is ended). Resume continues from the cached rows; a finished embedding is not recomputed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from sslviz.embed import BASELINES, RANDOM_ENCODER, EmbeddingStopped, source_run
from sslviz.errors import UserError
from sslviz.lifecycle import record_crash
from sslviz.store import Run, Store
from sslviz.store.rows import ACTIVE_STATUSES, RESUMABLE_STATUSES

KIND = "embedding"
INLINE_MAX_IMAGES = 5_000  # above this, pages submit a job instead of computing inline
PROGRESS_EVERY = 1.0  # seconds between progress writes (and cancel polls) to the store
MAP_OPTIONS = ("neighbors", "min_dist", "metric", "dims")


def runs_inline(n_images: int) -> bool:
    """Whether a dataset this size is embedded and mapped inline (a spinner) or as a job."""
    return n_images <= INLINE_MAX_IMAGES


def submit(
    store: Store,
    dataset: Any,
    source: int | str,
    *,
    layer: str | None = None,
    grid: int | None = None,
    neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    dims: int = 2,
) -> Run:
    """Queue the embedding and map of ``dataset`` from ``source`` (checked first: UserError on a
    bad request); an identical job already queued or running is returned instead of a second."""
    from sslviz import jobs
    from sslviz.project import map_request

    row, source, params, _ = map_request(
        store, dataset, source, layer, grid,
        neighbors=neighbors, min_dist=min_dist, metric=metric, dims=dims,
    )  # fmt: skip
    for run in store.runs.list(ACTIVE_STATUSES):
        if run.task == KIND and run.dataset_id == row.id and run.config == params:
            return run
    is_run = source not in BASELINES
    encoder = source_run(store, source).encoder if is_run else RANDOM_ENCODER
    if source == "pixels":
        encoder = "pixels"
    return jobs.submit_job(
        store,
        kind=KIND,
        dataset_id=row.id,
        config=params,
        encoder=encoder,
        device="cpu",
        total=1,
        parent_id=int(source) if is_run else None,
    )


def execute_run(store: Store, run_id: int, *, should_stop: Callable[[], bool] | None = None) -> Run:
    """Take a claimed (or resumable) embedding run to its end: finished, cancelled or failed."""
    from sslviz.project import project

    run = store.runs.get(run_id)
    _mark_running(store, run)
    params = run.config
    total = store.datasets.get(run.dataset_id).n_images + 1  # images, then the map
    store.runs.update(run_id, total_steps=total)
    started = time.perf_counter()
    last = {"poll": 0.0, "stop": False}

    def stop() -> bool:
        now = time.monotonic()
        if should_stop is not None and should_stop():
            return True
        if now - last["poll"] >= PROGRESS_EVERY:  # a store read at most once a second
            last["poll"] = now
            last["stop"] = bool(store.runs.get(run_id).cancel_requested)
        return last["stop"]

    def progress(done: int, images: int) -> None:
        store.runs.update(
            run_id, step=min(done, total - 1), train_seconds=time.perf_counter() - started
        )

    try:
        project(
            store,
            run.dataset_id,
            params["source"],
            layer=params["layer"],
            grid=params["grid"],
            **{k: params[k] for k in MAP_OPTIONS},
            on_progress=_throttled(progress),
            should_stop=stop,
        )
    except EmbeddingStopped:
        store.runs.transition(
            run_id, "cancelled", allowed_from=("running",), ended_at=time.time(), pid=None
        )
        return store.runs.get(run_id)
    except BaseException as error:
        record_crash(store, run_id, error)
        raise
    store.runs.transition(
        run_id,
        "finished",
        allowed_from=("running",),
        ended_at=time.time(),
        pid=None,
        step=total,
        epoch=1,
        train_seconds=time.perf_counter() - started,
    )
    return store.runs.get(run_id)


def _throttled(progress: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """Calls ``progress`` at most every PROGRESS_EVERY seconds (and always at the end)."""
    last = [0.0]

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            progress(done, total)

    return update


def _mark_running(store: Store, run: Run) -> None:
    now = time.time()
    common = {"pid": os.getpid(), "heartbeat_at": now, "started_at": run.started_at or now}
    allowed = ("queued", "running", *RESUMABLE_STATUSES)
    if not store.runs.transition(
        run.id,
        "running",
        allowed_from=allowed,
        cancel_requested=0 if run.status in RESUMABLE_STATUSES else run.cancel_requested,
        error=None,
        traceback=None,
        ended_at=None,
        **common,
    ):
        raise UserError(f"run {run.id} is {store.runs.get(run.id).status}: it can't be started")
