"""Ingests that die: find them, show them, retry or delete them; clean what they left behind.

An ingest in the foreground (``sslviz ingest``) records its process in the dataset's row
(``pid``, and ``heartbeat_at`` while it decodes); an ingest job (the app, ``--background``:
:mod:`sslviz.data.ingest_job`) records no pid there and is judged by its run, which the job runner
reaps like any other. If the process ends without finishing — SIGKILL, a crash, a reboot — the
dataset would stay ``ingesting`` forever and hold its name. :func:`reap_ingests` finds such
datasets (:mod:`sslviz.core.processes`: the pid is gone, or now belongs to a process that started
later; or the job's run ended) and marks them ``interrupted``. An interrupted dataset is never
half-used (only ``ready`` datasets can be trained on); it keeps what was recorded, and can be
finished (:func:`sslviz.data.reingest`, or ``sslviz resume RUN`` for a job), started over
(ingesting again under the same name replaces it) or deleted.

    reap_ingests(store)              # every listing of datasets calls this first
    retry_hint(dataset)              # what to tell the user
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import time
from pathlib import Path

from sslviz.core.errors import UserError
from sslviz.core.processes import owns_process, pid_alive
from sslviz.core.workspace import SERVER_ROOTS_ENV, is_under_server_roots
from sslviz.data.uploads import STAGING_PREFIX, staged_upload
from sslviz.store import Dataset, Run, Store
from sslviz.store.rows import ACTIVE_STATUSES

START_GRACE = 30.0  # s: a row with no pid (written before pids were recorded) gets this long
HEARTBEAT_EVERY = 2.0  # s between heartbeats of an ingest that is decoding
UPLOAD_SOURCE = "upload"  # the recorded source of a browser upload: there is nothing to re-read
RETRYABLE = ("interrupted", "failed")
TMP_PREFIX = ".tmp-"  # temporary files of atomic writes: ``.tmp-<pid>-<random>``
INGEST_KIND = "ingest"  # the kind of run that ingests in the background (``ingest_job``)


def reap_ingests(store: Store, *, now: float | None = None) -> list[int]:
    """Mark ``ingesting`` datasets whose process is gone as ``interrupted``; their ids."""
    now = time.time() if now is None else now
    reaped = []
    for dataset in store.datasets.list(("ingesting",)):
        reason = _why_dead(store, dataset, now)
        if reason and store.datasets.mark_interrupted(dataset.id, reason, pid=dataset.pid):
            reaped.append(dataset.id)
    return reaped


def ingest_run(store: Store, dataset_id: int) -> Run | None:
    """The newest ingest job of a dataset (any status), or None (ingested in the foreground)."""
    jobs = [r for r in store.runs.list() if r.kind == INGEST_KIND and r.dataset_id == dataset_id]
    return jobs[-1] if jobs else None


def _why_dead(store: Store, dataset: Dataset, now: float) -> str | None:
    job = ingest_run(store, dataset.id) if dataset.pid is None else None
    if job is not None:  # the job runner reaps the run; the dataset follows it
        if job.status in ACTIVE_STATUSES:
            return None
        return (
            f"its ingest job #{job.id} ended {job.status}"
            + (f" ({job.error})" if job.error else "")
            + f": `sslviz resume {job.id}` finishes it"
        )
    if dataset.pid is None:  # a row from before pids were recorded, or a bare create()
        last_sign = dataset.heartbeat_at or dataset.created_at
        if now - last_sign > START_GRACE:
            return "its ingest stopped before finishing (no process recorded)"
        return None
    if owns_process(dataset.pid, since=dataset.created_at):
        return None
    return (
        f"its ingest (process {dataset.pid}) ended before finishing: killed, crashed, or the "
        "app or machine restarted"
    )


def is_live_ingest(store: Store, dataset: Dataset) -> bool:
    """True while a process (or a queued job) is still ingesting ``dataset``, or an interrupted
    one's job was resumed (``sslviz resume RUN``) and has not taken it over yet."""
    if dataset.status in RETRYABLE:
        job = ingest_run(store, dataset.id)
        return job is not None and job.status in ACTIVE_STATUSES
    return dataset.status == "ingesting" and _why_dead(store, dataset, time.time()) is None


class Heartbeat:
    """Beats for a dataset at most every ``HEARTBEAT_EVERY`` s; call :meth:`beat` on progress."""

    def __init__(self, store: Store, dataset_id: int) -> None:
        self.store, self.dataset_id = store, dataset_id
        self._last = time.monotonic()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= HEARTBEAT_EVERY:
            self._last = now
            self.store.datasets.heartbeat(self.dataset_id)


# --- what can be retried, and how -------------------------------------------------------------
def recorded_sources(dataset: Dataset) -> list[Path]:
    """The folders, zips or files ``dataset`` was ingested from, to ingest them again.

    UserError for a browser upload (nothing on disk to re-read) or a source that is gone.
    """
    if dataset.source == UPLOAD_SOURCE:
        raise UserError(
            f"dataset {dataset.name!r} came from a browser upload: upload the files again under "
            "the same name (that replaces it) or delete it"
        )
    # Several sources are recorded joined by ", " (see ingest); a path may contain ", " itself.
    whole = Path(dataset.source)
    paths = [whole] if whole.exists() else [Path(p) for p in dataset.source.split(", ")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(
            f"dataset {dataset.name!r} was ingested from {', '.join(missing)}, which is no longer "
            "there: delete it, or ingest the images again from where they are now"
        )
    return paths


def retry_hint(dataset: Dataset) -> str:
    """One line: how to retry or delete an interrupted dataset from the command line."""
    name = shlex.quote(dataset.name)
    delete = f"`sslviz delete-dataset {name}` removes it"
    if dataset.source == UPLOAD_SOURCE:
        return f"upload the files again under the same name (it replaces this one), or {delete}"
    return f"`sslviz reingest {name}` ingests it again from {dataset.source}; {delete}"


def app_retry_problem(store: Store, dataset: Dataset, roots: list[Path]) -> str | None:
    """Why the app can't finish ``dataset``'s ingest by itself, with what to do instead; None if
    it can (its upload is still staged, or its source is on the server, under the folders the app
    may read: ``roots``)."""
    if dataset.source == UPLOAD_SOURCE and staged_upload(store.workspace.dataset_dir(dataset.id)):
        return None
    try:
        paths = recorded_sources(dataset)
    except UserError as error:
        return str(error)
    outside = [str(p) for p in paths if not is_under_server_roots(p, roots)]
    if not outside:
        return None
    where = (
        f"this app may not read server folders ({SERVER_ROOTS_ENV} is not set)"
        if not roots
        else f"that is outside the folders this app may read ({SERVER_ROOTS_ENV})"
    )
    return (
        f"It was read from {', '.join(outside)}, and {where}: run "
        f"`sslviz reingest {shlex.quote(dataset.name)}` on the server, or delete it."
    )


def ingester(store: Store, dataset: Dataset) -> str:
    """Who ingests ``dataset``: ``"process 123"`` or ``"job #7"``."""
    if dataset.pid is not None:
        return f"process {dataset.pid}"
    job = ingest_run(store, dataset.id)
    return f"job #{job.id}" if job is not None else "a process that has not started yet"


def check_retryable(dataset: Dataset) -> None:
    """UserError unless ``dataset`` is interrupted or failed (after reaping)."""
    if dataset.status in RETRYABLE:
        return
    if dataset.status == "ingesting":
        who = f"process {dataset.pid}" if dataset.pid is not None else "its ingest job"
        raise UserError(
            f"dataset {dataset.name!r} is still being ingested by {who}: wait for it to finish"
        )
    raise UserError(
        f"dataset {dataset.name!r} is complete ({dataset.n_images:,} images): to read its source "
        "again, delete it first or ingest under another name"
    )


def replace_retryable(store: Store, name: str) -> Dataset | None:
    """Delete an interrupted (or failed) dataset called ``name``, freeing the name for a new
    ingest; returns it, or None if there was none. Other datasets are left alone (the new ingest
    then reports that the name is taken)."""
    reap_ingests(store)
    for dataset in store.datasets.list(RETRYABLE):
        if dataset.name == name:
            delete_dataset(store, dataset.id)
            return dataset
    return None


def delete_dataset(store: Store, dataset_id: int) -> None:
    """Remove a dataset: its rows, its files, and its runs' rows and folders."""
    reap_ingests(store)
    dataset = store.datasets.get(dataset_id)
    if is_live_ingest(store, dataset):
        raise UserError(
            f"dataset {dataset.name!r} is being ingested by {ingester(store, dataset)}: wait for "
            "it to finish (or stop it) before deleting it"
        )
    # the check and the delete are one transaction: a run submitted meanwhile is never deleted
    active, deleted = store.datasets.delete_unless_active(dataset.id)
    if active:
        raise UserError(
            f"dataset {dataset.name!r} has active runs {active}: cancel them first (`sslviz cancel RUN`)"
        )
    for run_id in deleted:
        shutil.rmtree(store.workspace.run_dir(run_id), ignore_errors=True)
    shutil.rmtree(store.workspace.dataset_dir(dataset.id), ignore_errors=True)


# --- leftovers of killed processes ------------------------------------------------------------
def clean_leftovers(store: Store) -> int:
    """Remove what killed ingests left: staged uploads in the workspace root and temporary files
    in the folders of datasets nobody is ingesting. Only files of dead processes (the pid is in
    their names) are touched, so a concurrent ingest elsewhere keeps its own. Returns the count."""
    removed = 0
    root = store.workspace.root
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if entry.name.startswith(STAGING_PREFIX) and _owner_dead(entry.name, STAGING_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    # Ready datasets finished every write; ingesting ones (after reaping) belong to live processes.
    for dataset in store.datasets.list(RETRYABLE):
        folder = store.workspace.dataset_dir(dataset.id)
        for sub in ("files", "thumbs"):
            with contextlib.suppress(OSError):
                for entry in os.scandir(folder / sub):
                    if entry.name.startswith(TMP_PREFIX) and _owner_dead(entry.name, TMP_PREFIX):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                            removed += 1
    return removed


def _owner_dead(name: str, prefix: str) -> bool:
    """Whether the process named in ``<prefix><pid>-<random>`` is gone (unknown: keep it)."""
    pid, sep, _ = name[len(prefix) :].partition("-")
    return bool(sep) and pid.isdigit() and not pid_alive(int(pid))
