"""Embedding + map of a large dataset as a background run (kind ``embedding``) of the one job
runner: same claim, heartbeat, cancel, reap and resume as training (DESIGN 3.3).

    request = job_request(store, "big", 3)                # checked: UserError on a bad request
    run = jobs.submit(store, request, reuse_active=True)  # the page or the CLI submits it
    execute(store, run.id)                                # the worker, through runner.execute

The run's config is the map's ``MapSettings`` plus the source's checkpoint version, so a job
matches exactly one map file. Progress is ``step`` / ``total_steps``: one step per embedded
image, then one for the map. Cancel works at any moment: between decode chunks, between
embedding batches (the rows done are kept) and during the UMAP fit (its child process is ended).
Resume continues from the cached rows; a finished embedding is not recomputed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from sslviz.maps.embed import BASELINES, RANDOM_ENCODER, source_device, source_run
from sslviz.maps.project import MapRequest, map_request, project
from sslviz.maps.settings import MapSettings
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest

KIND = "embedding"
INLINE_MAX_IMAGES = 5_000  # above this, pages submit a job instead of computing inline
PROGRESS_EVERY = 1.0  # seconds between progress writes (and cancel polls) to the store


def runs_inline(n_images: int) -> bool:
    """Whether a dataset this size is embedded and mapped inline (a spinner) or as a job."""
    return n_images <= INLINE_MAX_IMAGES


def job_request(store: Store, dataset: Any, source: int | str, **options: Any) -> JobRequest:
    """The job that embeds and maps ``dataset`` from ``source`` (``options``: ``MapSettings``
    fields), checked first: UserError on a bad request."""
    request = map_request(store, dataset, source, **options)
    source = request.settings.source
    is_run = source not in BASELINES
    encoder = source_run(store, source).model_name if is_run else RANDOM_ENCODER
    return JobRequest(
        kind=KIND,
        dataset_id=request.dataset.id,
        encoder="pixels" if source == "pixels" else encoder,
        config=request.job_config(),
        device=job_device(store, source),
        parent_id=int(source) if is_run else None,
    )


def job_device(store: Store, source: str) -> str:
    """The device a job embeds ``source`` on (``maps.embed.source_device``: the run's own, or
    the best here), as the runner counts devices ("cpu", "cuda:0", "mps"): the job is recorded
    with it, so it takes that device's slot (its UMAP fit then runs on the CPU, as a child)."""
    device = source_device(store, source)
    return device.type if device.type in ("cpu", "mps") else f"{device.type}:{device.index or 0}"


def job_for(store: Store, request: MapRequest) -> Run | None:
    """The newest job of exactly this map (same settings, same checkpoint version), if any: a
    job of another layer or of an older checkpoint is another map's."""
    config = request.job_config()
    for run in sorted(store.runs.list(), key=lambda r: r.id, reverse=True):
        if run.kind == KIND and run.dataset_id == request.dataset.id and run.config == config:
            return run
    return None


def execute_run(
    store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None
) -> tuple[str, dict[str, Any]]:
    """The executor of kind ``embedding`` (``sslviz.store.kinds``; ``sslviz.runner.execute``
    claims the run, keeps its heartbeat and records how it ended)."""
    settings = MapSettings.from_dict(run.config)
    total = store.datasets.get(run.dataset_id).n_images + 1  # images, then the map
    # the device it really computes on now (a job queued on another machine's record, or before
    # its source's device was known, is counted where it runs)
    device = job_device(store, settings.source)
    print(f"embedding job: run {run.id} embeds on {device}", file=sys.stderr, flush=True)
    store.runs.progress(run.id, step=0, total=total, device=device)
    started = time.perf_counter()
    last = {"poll": 0.0, "stop": False}

    def stop() -> bool:
        now = time.monotonic()
        if should_stop is not None and should_stop():
            return True
        if now - last["poll"] >= PROGRESS_EVERY:  # a store read at most once a second
            last["poll"] = now
            last["stop"] = bool(store.runs.get(run.id).cancel_requested)
        return last["stop"]

    def progress(done: int, images: int) -> None:
        store.runs.progress(
            run.id, step=min(done, total - 1), work_seconds=time.perf_counter() - started
        )

    options = {k: v for k, v in settings.to_dict().items() if k != "source"}
    project(
        store,
        run.dataset_id,
        settings.source,
        on_progress=_throttled(progress),
        should_stop=stop,
        **options,
    )
    return "finished", {"step": total, "epoch": 1, "work_seconds": time.perf_counter() - started}


def _throttled(progress: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """Calls ``progress`` at most every PROGRESS_EVERY seconds (and always at the end)."""
    last = [0.0]

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            progress(done, total)

    return update
