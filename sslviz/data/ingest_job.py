"""An ingest as a background run (kind ``ingest``) of the one job runner: the app's ingests
(server folders and uploads) and ``sslviz ingest --background`` (DESIGN 3.3).

    request = job_request(store, ["/data/photos"], "photos")   # the dataset row exists now
    run = jobs.submit(store, request)                           # sslviz.api.submit_ingest
    execute(store, run.id)                                      # the worker, via runner.execute

The dataset is created (``ingesting``, no pid: its job answers for it) when the job is
requested, so its name is taken at once and the Datasets page can show it. An upload is staged
to disk first (``uploads.stage_uploads``) and moved into the dataset's folder; the job reads it
from there. Progress is ``step`` / ``total_steps``, one step per file. Cancel is answered between
chunks of files; a cancelled, killed or crashed ingest keeps what it recorded, and resuming the run
(``sslviz resume RUN``) continues with the files not recorded yet.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sslviz.core.errors import UserError
from sslviz.data.ingest_pipeline import (
    check_server_path,
    check_sources,
    fill,
    plan_of,
    start_dataset,
)
from sslviz.data.recovery import (
    INGEST_KIND,
    UPLOAD_SOURCE,
    check_retryable,
    clean_leftovers,
    ingester,
)
from sslviz.data.sources import default_name
from sslviz.data.uploads import adopt
from sslviz.store import Dataset, Run, Store
from sslviz.store.kinds import JobRequest

KIND = INGEST_KIND
DEVICE = "io"  # its own slot: an ingest never waits for a training run to free the CPU slot
PROGRESS_EVERY = 1.0  # seconds between progress writes (and cancel polls) to the store


@dataclass(frozen=True)
class IngestSettings:
    """An ingest job's config: where it reads (the dataset's recorded source, or its staged
    upload) and how many decoding processes it uses (None: one per core)."""

    upload: bool = False
    workers: int | None = None

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> IngestSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_request(
    store: Store,
    sources: Sequence[str | Path] = (),
    name: str | None = None,
    *,
    staged: Path | None = None,
    roots: list[Path] | None = None,
    workers: int | None = None,
) -> JobRequest:
    """The job that ingests ``sources`` (or the ``staged`` upload) as dataset ``name``. Checked
    first, and the dataset row created: UserError for a missing source, a taken name, or (with
    ``roots``, the app) a folder outside the ones the app may read."""
    if staged is not None:
        try:
            if not name:
                raise UserError("name the dataset of an upload")
            dataset, _ = start_dataset(store, name, UPLOAD_SOURCE, pid=None)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        adopt(staged, store.workspace.dataset_dir(dataset.id))
    else:
        paths = check_sources(sources)
        if roots is not None:
            for path in paths:
                check_server_path(path, roots)
        source = ", ".join(str(p.resolve()) for p in paths)
        dataset, _ = start_dataset(store, name or default_name(paths[0]), source, pid=None)
    settings = IngestSettings(upload=staged is not None, workers=int(workers) if workers else None)
    return JobRequest(
        kind=KIND, dataset_id=dataset.id, encoder="none", config=settings.to_dict(), device=DEVICE
    )


def reopen(store: Store, dataset: Dataset) -> None:
    """Mark an interrupted ``dataset`` as being ingested by a job again (before the job is
    submitted or resumed: it shows as ``ingesting`` at once, and no second resume starts).
    UserError unless it is interrupted or failed, or its source (or staged upload) is gone."""
    check_retryable(dataset)
    plan_of(store, dataset)
    if not store.datasets.take_over(dataset.id, pid=None):
        check_retryable(store.datasets.get(dataset.id))  # resumed meanwhile: says by whom


def resume_request(store: Store, dataset: Dataset) -> JobRequest:
    """A job that finishes an interrupted ``dataset`` (ingested in the foreground before, or
    whose job is gone): it reads the files not recorded yet."""
    reopen(store, dataset)
    upload = dataset.source == UPLOAD_SOURCE
    return JobRequest(
        kind=KIND,
        dataset_id=dataset.id,
        encoder="none",
        config=IngestSettings(upload=upload).to_dict(),
        device=DEVICE,
    )


def execute_run(
    store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None
) -> tuple[str, dict[str, Any]]:
    """The executor of kind ``ingest`` (``sslviz.store.kinds``; ``sslviz.runner.execute`` claims
    the run, keeps its heartbeat and records how it ended)."""
    dataset = store.datasets.get(run.dataset_id)
    plan = plan_of(store, dataset)
    clean_leftovers(store)  # half-written files of a worker that was killed
    if not store.datasets.take_over(dataset.id, pid=None):
        now = store.datasets.get(dataset.id)
        raise UserError(
            f"dataset {now.name!r} is {now.status}"
            + (f" (being ingested by {ingester(store, now)})" if now.status == "ingesting" else "")
            + ": nothing for this job to do"
        )
    started = time.perf_counter()
    stop = _StopPoll(store, run.id, should_stop)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            store.runs.progress(
                run.id, step=done, total=total, work_seconds=time.perf_counter() - started
            )

    workers = IngestSettings.from_dict(run.config).workers
    report = fill(store, dataset, plan, progress=progress, workers=workers, should_stop=stop)
    total = max(1, len(plan.items))
    fields = {"step": total, "total_steps": total, "epoch": 1}
    return "finished", {**fields, "work_seconds": report.seconds}


class _StopPoll:
    """Whether to stop: the worker's signal flag, or the run's cancel flag in the store (read
    at most once every PROGRESS_EVERY seconds)."""

    def __init__(self, store: Store, run_id: int, flag: Callable[[], bool] | None) -> None:
        self.store, self.run_id, self.flag = store, run_id, flag
        self._read, self._cancelled = 0.0, False

    def __call__(self) -> bool:
        if self.flag is not None and self.flag():
            return True
        if time.monotonic() - self._read >= PROGRESS_EVERY:
            self._read = time.monotonic()
            self._cancelled = bool(self.store.runs.get(self.run_id).cancel_requested)
        return self._cancelled
