"""The Explorer's data checks of one map as a background run (kind ``checks``) of the one job
runner: the embedding's kNN graph (outliers, near-duplicates), for a run's map the untrained
network's graph beside it ("neighbours kept from random"), and a pretext run's per-image scores.

    request = job_request(store, dataset, "3", layer="block3", grid=2, score_run=3)
    run = jobs.submit(store, request, reuse_active=True)   # the Explorer submits it
    # the worker: execute_run below; the page then reads the stored results
    # (neighbour_checks.cached_graph, image_scores.cached_image_scores)

Everything it computes is stored in the workspace beside the embedding, so the page only reads.
Progress is ``step`` / ``total_steps``: one step per image of each stage. Cancel is answered
between batches of images and between stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from sslviz.maps.embed import BASELINES
from sslviz.store import Dataset, Run, Store
from sslviz.store.kinds import JobRequest

KIND = "checks"


@dataclass(frozen=True)
class ChecksSettings:
    """Which map's checks: its source, layer and pooling; its kNN graph (``graph``), whether to
    compare with ``random`` (``changed``), which pretext run's scores to add (None: none)."""

    source: str
    layer: str | None = None
    grid: int | None = None
    graph: bool = True
    changed: bool = False
    score_run: int | None = None

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> ChecksSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stages(self) -> int:
        """Passes over the images: the embedding (+ random's) (+ the scores)."""
        return int(self.graph) + int(self.changed) + int(self.score_run is not None)


def job_request(store: Store, dataset: Dataset, settings: ChecksSettings) -> JobRequest:
    """The job computing ``settings``' checks of ``dataset`` on the CPU."""
    source = settings.source
    return JobRequest(
        kind=KIND,
        dataset_id=dataset.id,
        encoder=source if source in BASELINES else f"run {source}",
        config=settings.to_dict(),
        device="cpu",
        parent_id=int(source) if source.isdigit() else settings.score_run,
    )


def job_for(store: Store, dataset: Dataset, settings: ChecksSettings) -> Run | None:
    """The newest checks job of exactly these settings on ``dataset`` (any status), if any."""
    config = settings.to_dict()
    for run in sorted(store.runs.list(), key=lambda r: r.id, reverse=True):
        if run.kind == KIND and run.dataset_id == dataset.id and run.config == config:
            return run
    return None


def execute_run(
    store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None
) -> tuple[str, dict[str, Any]]:
    """The executor of kind ``checks``: the map's embedding and its kNN graph, random's beside it,
    a pretext run's scores; each stored for the Explorer to read."""
    import time

    from sslviz.core.liveness import Cancelled
    from sslviz.maps import neighbour_checks
    from sslviz.maps.embed import embed
    from sslviz.results.image_scores import image_scores

    settings = ChecksSettings.from_dict(run.config)
    n = store.datasets.get(run.dataset_id).n_images
    total = n * settings.stages() + 1
    started = time.perf_counter()
    stage = [0]

    def progress(done: int, images: int) -> None:
        store.runs.progress(
            run.id,
            step=stage[0] * n + done,
            total=total,
            work_seconds=time.perf_counter() - started,
        )

    def stop() -> bool:
        return bool(should_stop and should_stop()) or bool(store.runs.get(run.id).cancel_requested)

    where = {"layer": settings.layer, "grid": settings.grid}
    if settings.graph:
        emb = embed(
            store, run.dataset_id, settings.source, **where, on_progress=progress, should_stop=stop
        )
        stage[0] += 1
        if stop():
            raise Cancelled("stopped before the neighbour search")
        neighbour_checks.neighbour_graph(store, emb)
    if settings.changed:
        neighbour_checks.changed_graphs(
            store, run.dataset_id, settings.source, **where, on_progress=progress
        )
        stage[0] += 1
    if settings.score_run is not None:
        image_scores(
            store, settings.score_run, run.dataset_id, on_progress=progress, should_stop=stop
        )
    return "finished", {"step": total, "epoch": 1, "work_seconds": time.perf_counter() - started}
