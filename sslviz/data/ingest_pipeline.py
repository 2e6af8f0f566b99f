"""The ingest pipeline: list sources, decode in a process pool, record rows as it goes.

    report = ingest(store, ["~/photos"], progress=lambda done, total: ...)
    report.to_json()  # {"dataset": "photos", "accepted": 812, "rejected": [...], "duplicates": 3}

The parent only lists the sources and inserts rows into SQLite in batches; worker processes
decode, hash and store each file (:mod:`sslviz.data.decoding_pool`). Results are taken in
submission order, so which of two identical files is kept is deterministic (the first by path)
whatever the scheduling.

Every batch is recorded as soon as it is decoded (kept images, rejected files, duplicates), and
an ingest that stops — cancelled, Ctrl-C, a crash, SIGKILL — keeps what it did: its dataset shows
as ``interrupted`` (:mod:`sslviz.data.recovery`) and :func:`reingest` (or resuming its job,
:mod:`sslviz.data.ingest_job`) continues with the files not recorded yet. Ingesting again under
the same name starts over instead (it replaces the interrupted dataset).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled
from sslviz.core.workspace import SERVER_ROOTS_ENV, is_under_server_roots, server_roots
from sslviz.data.decoding_pool import decode_all
from sslviz.data.recovery import (
    HEARTBEAT_EVERY,
    UPLOAD_SOURCE,
    Heartbeat,
    check_retryable,
    clean_leftovers,
    delete_dataset,
    reap_ingests,
    recorded_sources,
    replace_retryable,
)
from sslviz.data.sources import Plan, default_name, plan_paths, unique_paths
from sslviz.data.uploads import adopt, plan_staged, stage_uploads, staged_upload
from sslviz.store import Dataset, Duplicate, Image, Rejection, Store

__all__ = [
    "IngestReport",
    "NothingUsable",
    "delete_dataset",
    "fill",
    "ingest",
    "ingest_server_folder",
    "ingest_uploads",
    "plan_of",
    "reingest",
    "start_dataset",
]

Progress = Callable[[int, int], None]
_BATCH = 500  # rows per SQLite transaction


class NothingUsable(UserError):
    """Not one usable image in the sources (the dataset is marked ``failed``)."""


@dataclass
class IngestReport:
    dataset: Dataset
    accepted: int
    rejected: list[Rejection]
    duplicates: int
    duplicate_files: list[Duplicate] = field(default_factory=list)
    seconds: float = 0.0
    replaced: Dataset | None = None  # the interrupted dataset of the same name this replaced

    def to_json(self) -> dict[str, Any]:
        """The ``sslviz ingest --json`` object (DESIGN 3.2), plus a few extra keys."""
        return {
            "dataset": self.dataset.name,
            "accepted": self.accepted,
            "rejected": [{"path": r.path, "reason": r.reason} for r in self.rejected],
            "duplicates": self.duplicates,
            "duplicate_files": [
                {"path": d.path, "duplicate_of": d.duplicate_of} for d in self.duplicate_files
            ],
            "dataset_id": self.dataset.id,
            "bytes": self.dataset.bytes,
            "seconds": round(self.seconds, 3),
            "replaced_interrupted": self.replaced is not None,
        }

    @classmethod
    def of(cls, store: Store, dataset: Dataset, **extra: Any) -> IngestReport:
        """The report of a dataset as the store has it (an ingest that ran elsewhere, a job)."""
        duplicates = store.datasets.duplicates(dataset.id)
        return cls(
            dataset=dataset,
            accepted=dataset.n_images,
            rejected=store.datasets.rejections(dataset.id),
            duplicates=len(duplicates),
            duplicate_files=duplicates,
            **extra,
        )


# --- public entry points ---------------------------------------------------------------------
def ingest(
    store: Store,
    sources: Sequence[Path | str],
    name: str | None = None,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Ingest folders (recursive), zips and image files as one dataset named ``name``.

    The default name is the first source's folder name, zip stem, or a loose file's parent folder.
    With several sources, each folder's or zip's images are prefixed with its name. An
    interrupted dataset of the same name is replaced (``report.replaced``).
    """
    paths = check_sources(sources)
    name = name or default_name(paths[0])
    plan = plan_paths(paths)
    source = ", ".join(str(p.resolve()) for p in paths)
    dataset, replaced = start_dataset(store, name, source, pid=os.getpid())
    return _foreground(store, dataset, plan, progress, workers, replaced)


def check_sources(sources: Sequence[Path | str]) -> list[Path]:
    """The sources as paths; UserError if there are none or one does not exist."""
    paths = [Path(s).expanduser() for s in sources]
    if not paths:
        raise UserError("nothing to ingest: give a folder, a .zip or image files")
    for path in paths:
        if not path.exists():
            raise UserError(f"no such file or folder: {path}")
    return paths


def ingest_uploads(
    store: Store,
    files: Iterable[tuple[str, bytes | BinaryIO]],
    name: str,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Ingest browser uploads: (untrusted relative name, bytes or file object) pairs, in this
    process. A name ending in ``.zip`` is expanded as a zip. Names are labels only: files are
    stored by hash. (The app submits a job instead: ``ingest_job``.)"""
    staged = stage_uploads(store.workspace.root, files)
    try:
        dataset, replaced = start_dataset(store, name, UPLOAD_SOURCE, pid=os.getpid())
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    staged = adopt(staged, store.workspace.dataset_dir(dataset.id))
    return _foreground(store, dataset, plan_staged(staged), progress, workers, replaced)


def ingest_server_folder(
    store: Store,
    path: Path | str,
    name: str | None = None,
    *,
    roots: list[Path] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Ingest a folder (or zip) already on the server, only if it lies under the allowed roots."""
    check_server_path(Path(path), roots)
    return ingest(store, [path], name, progress=progress, workers=workers)


def check_server_path(path: Path, roots: list[Path] | None = None) -> None:
    """UserError unless ``path`` lies under the folders the app may read (``roots``, default:
    ``$SSLVIZ_SERVER_ROOTS``)."""
    roots = server_roots() if roots is None else [Path(r).resolve() for r in roots]
    if not roots:
        raise UserError(
            f"reading server folders is disabled: set {SERVER_ROOTS_ENV} to the folders "
            "sslviz may read (e.g. /data/images)"
        )
    if not is_under_server_roots(path, roots):
        allowed = os.pathsep.join(str(r) for r in roots)
        raise UserError(
            f"{path} is not under the allowed server folders ({SERVER_ROOTS_ENV}={allowed})"
        )


def reingest(
    store: Store,
    dataset: Dataset | str,
    *,
    roots: list[Path] | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Finish an interrupted (or failed) ingest in this process: the files it has not recorded
    yet are read from its recorded source (or its staged upload), the rest is kept.

    ``roots``: when given (the app), every source must lie under them, as for
    :func:`ingest_server_folder`. UserError for a browser upload whose staged copy is gone
    (upload again) or a gone source.
    """
    reap_ingests(store)
    dataset = store.datasets.get_by_name(dataset if isinstance(dataset, str) else dataset.name)
    check_retryable(dataset)
    plan = plan_of(store, dataset, roots=roots)
    clean_leftovers(store)  # half-written files of the process that died
    if not store.datasets.take_over(dataset.id, pid=os.getpid()):
        check_retryable(store.datasets.get(dataset.id))  # taken meanwhile: says by whom
    return _foreground(store, dataset, plan, progress, workers, replaced=dataset)


def plan_of(store: Store, dataset: Dataset, *, roots: list[Path] | None = None) -> Plan:
    """What ``dataset``'s ingest reads: its staged upload, or its recorded sources (under
    ``roots`` when given). UserError if they are gone."""
    if dataset.source == UPLOAD_SOURCE:
        staged = staged_upload(store.workspace.dataset_dir(dataset.id))
        if staged is not None:
            return plan_staged(staged)
    paths = recorded_sources(dataset)
    if roots is not None:
        for path in paths:
            check_server_path(path, roots)
    return plan_paths(paths)


def _foreground(
    store: Store,
    dataset: Dataset,
    plan: Plan,
    progress: Progress | None,
    workers: int | None,
    replaced: Dataset | None,
) -> IngestReport:
    """:func:`fill` in this process; nothing usable at all leaves nothing behind."""
    try:
        return fill(store, dataset, plan, progress=progress, workers=workers, replaced=replaced)
    except NothingUsable:
        delete_dataset(store, dataset.id)
        raise


# --- the pipeline ----------------------------------------------------------------------------
def start_dataset(
    store: Store, name: str, source: str, *, pid: int | None
) -> tuple[Dataset, Dataset | None]:
    """A new ``ingesting`` dataset row for process ``pid`` (None: a job), replacing an
    interrupted one of the same name (returned second). UserError if the name is taken."""
    name = _check_name(name)
    replaced = replace_retryable(store, name)  # reaps dead ingests first
    dataset = store.datasets.create(name, source, pid=pid)
    clean_leftovers(store)
    return dataset, replaced


def fill(
    store: Store,
    dataset: Dataset,
    plan: Plan,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    replaced: Dataset | None = None,
) -> IngestReport:
    """Decode ``plan`` into ``dataset`` (taken over by this process), skipping the paths it has
    recorded already, and mark it ``ready``. Anything that stops it leaves it ``interrupted``
    (or ``failed``) with everything recorded so far; :class:`NothingUsable` marks it failed."""
    started = time.perf_counter()
    unique_paths(plan.items)
    folder = store.workspace.dataset_dir(dataset.id)
    (folder / "files").mkdir(parents=True, exist_ok=True)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    done_before = store.datasets.recorded_paths(dataset.id)
    todo = [item for item in plan.items if item.path not in done_before]
    batch = _Batch(store, dataset.id, store.datasets.kept_hashes(dataset.id))
    batch.rejected += [r for r in plan.rejected if r.path not in done_before]
    heartbeat = Heartbeat(store, dataset.id)
    total = len(plan.items)
    done = total - len(todo)
    try:
        if progress:
            progress(done, total)
        for outcomes in decode_all(todo, folder, workers, should_stop=should_stop):
            batch.add(outcomes)
            done += len(outcomes)
            batch.flush(full_only=True)
            heartbeat.beat()
            if progress:
                progress(done, total)
        batch.flush()
        if not store.datasets.count_images(dataset.id):
            raise NothingUsable(
                _nothing_usable(dataset.source, store.datasets.rejections(dataset.id))
            )
        dataset = store.datasets.finish(dataset.id)
    except BaseException as error:
        with contextlib.suppress(Exception):
            batch.flush()  # what was decoded is kept for the resume
        _stopped(store, dataset.id, error)
        raise
    staged = staged_upload(folder)
    if staged is not None:
        shutil.rmtree(staged, ignore_errors=True)  # complete: the stored files are the copy
    return IngestReport.of(store, dataset, seconds=time.perf_counter() - started, replaced=replaced)


class _Batch:
    """Outcomes not yet written, written together (images, rejected files, duplicates)."""

    def __init__(self, store: Store, dataset_id: int, seen: dict[str, str]) -> None:
        self.store, self.dataset_id, self.seen = store, dataset_id, seen  # seen: sha -> path kept
        self.images: list[Image] = []
        self.rejected: list[Rejection] = []
        self.duplicates: list[Duplicate] = []
        self._written = time.monotonic()

    def add(self, outcomes: list[Image | Rejection]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Rejection):
                self.rejected.append(outcome)
            elif outcome.sha256 in self.seen:
                self.duplicates.append(Duplicate(outcome.path, self.seen[outcome.sha256]))
            else:
                self.seen[outcome.sha256] = outcome.path
                self.images.append(_with_dataset(outcome, self.dataset_id))

    def flush(self, *, full_only: bool = False) -> None:
        """Write (with ``full_only``: only once a batch is full or a few seconds old, so a
        killed ingest loses little)."""
        size = len(self.images) + len(self.rejected) + len(self.duplicates)
        due = size >= _BATCH or time.monotonic() - self._written >= HEARTBEAT_EVERY
        if not size or (full_only and not due):
            return
        self.store.datasets.add_images(self.images)
        self.store.datasets.add_rejections(self.dataset_id, self.rejected)
        self.store.datasets.add_duplicates(self.dataset_id, self.duplicates)
        self.images, self.rejected, self.duplicates = [], [], []
        self._written = time.monotonic()


def _stopped(store: Store, dataset_id: int, error: BaseException) -> None:
    """Mark the dataset as its ingest ended early, keeping every row and file."""
    if isinstance(error, NothingUsable):
        status, why = "failed", str(error)
    elif isinstance(error, (Cancelled, KeyboardInterrupt)):
        status, why = "interrupted", "the ingest was stopped before finishing"
    else:
        status = "failed" if isinstance(error, UserError) else "interrupted"
        why = f"the ingest stopped: {' '.join(str(error).split()) or type(error).__name__}"
    with contextlib.suppress(Exception):  # a deleted dataset, a closed store: nothing to mark
        store.datasets.finish(dataset_id, status=status, error=why[:500])


# --- helpers ---------------------------------------------------------------------------------
def _with_dataset(image: Image, dataset_id: int) -> Image:
    return Image(
        0,
        dataset_id,
        *(
            getattr(image, f)
            for f in ("path", "sha256", "file", "width", "height", "mode", "format", "bytes")
        ),
    )


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise UserError("a dataset name must be 1-100 printable characters: pass --name NAME")
    return name


def _nothing_usable(source: str, rejected: list[Rejection]) -> str:
    if not rejected:
        return f"no files found in {source}: point at a folder, zip or files with images"
    shown = "; ".join(f"{r.path} ({r.reason})" for r in rejected[:3])
    more = f" and {len(rejected) - 3} more" if len(rejected) > 3 else ""
    return f"no usable images in {source}: {shown}{more}"
