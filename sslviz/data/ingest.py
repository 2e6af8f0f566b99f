"""The ingest pipeline: list sources, decode in a process pool, store files, record rows.

    report = ingest(store, ["~/photos"], progress=lambda done, total: ...)
    report.to_json()  # {"dataset": "photos", "accepted": 812, "rejected": [...], "duplicates": 3}

Work is split so the parent stays light: worker processes read each file themselves, validate it
by decoding (:mod:`sslviz.data.decode`), hash it, write the original (named by its hash) and a
thumbnail; the parent only lists the sources, hands out chunks of items (a bounded number in
flight, so memory does not grow with the folder), and inserts rows into SQLite in batches.
Results are taken in submission order, so which of two identical files is kept is deterministic
(the first by path) whatever the scheduling.

The dataset's row records the ingesting process and a heartbeat while it decodes, so an ingest
that is killed is found and shown as ``interrupted`` (:mod:`sslviz.data.recovery`); ingesting again
under the same name, or :func:`reingest`, replaces it.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sslviz.core.errors import UserError
from sslviz.core.processes import die_with_parent
from sslviz.core.workspace import SERVER_ROOTS_ENV, is_under_server_roots, server_roots
from sslviz.data.decode import Rejected, decode
from sslviz.data.recovery import (
    STAGING_PREFIX,
    UPLOAD_SOURCE,
    Heartbeat,
    check_retryable,
    clean_leftovers,
    delete_dataset,
    reap_ingests,
    recorded_sources,
    replace_retryable,
)
from sslviz.data.sources import (
    MAX_FILE_BYTES,
    Item,
    Plan,
    close_zips,
    default_name,
    plan_paths,
    plan_uploads,
    read_bytes,
    unique_paths,
)
from sslviz.data.storage import THUMB_SIZE, stored_name, thumbnail_bytes, write_once
from sslviz.store import Dataset, Duplicate, Image, Rejection, Store

__all__ = [
    "IngestReport",
    "delete_dataset",
    "ingest",
    "ingest_server_folder",
    "ingest_uploads",
    "reingest",
]

Progress = Callable[[int, int], None]
_BATCH = 500  # rows per SQLite transaction
_MAX_CHUNK = 16  # items per worker task: amortizes inter-process overhead
_POOL_MIN_ITEMS = 32  # with fewer files (and no explicit workers), decode in this process


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
    paths = [Path(s).expanduser() for s in sources]
    if not paths:
        raise UserError("nothing to ingest: give a folder, a .zip or image files")
    for path in paths:
        if not path.exists():
            raise UserError(f"no such file or folder: {path}")
    name = name or default_name(paths[0])
    plan = plan_paths(paths)
    source = ", ".join(str(p.resolve()) for p in paths)
    return _run(store, name, source, plan, progress=progress, workers=workers)


def ingest_uploads(
    store: Store,
    files: Iterable[tuple[str, bytes | BinaryIO]],
    name: str,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Ingest browser uploads: (untrusted relative name, bytes or file object) pairs.

    A name ending in ``.zip`` is expanded as a zip. Names are labels only: files are stored by hash.
    """
    store.workspace.root.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later ingest remove it if this process is killed meanwhile.
    prefix = f"{STAGING_PREFIX}{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=store.workspace.root))
    try:
        uploads = [(n, _read_upload(f)) for n, f in files]
        plan = plan_uploads(uploads, (staging / f"{i}.zip" for i in itertools.count()))
        return _run(store, name, UPLOAD_SOURCE, plan, progress=progress, workers=workers)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    roots = server_roots() if roots is None else [Path(r).resolve() for r in roots]
    _check_server_path(Path(path), roots)
    return ingest(store, [path], name, progress=progress, workers=workers)


def _check_server_path(path: Path, roots: list[Path]) -> None:
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
    """Ingest an interrupted (or failed) dataset again from its recorded source, replacing it.

    ``roots``: when given (the app), every source must lie under them, as for
    :func:`ingest_server_folder`. UserError for a browser upload (upload again) or a gone source.
    """
    reap_ingests(store)
    dataset = store.datasets.get_by_name(dataset if isinstance(dataset, str) else dataset.name)
    check_retryable(dataset)
    paths = recorded_sources(dataset)
    if roots is not None:
        for path in paths:
            _check_server_path(path, roots)
    return ingest(store, paths, dataset.name, progress=progress, workers=workers)


# --- the pipeline ----------------------------------------------------------------------------
def _run(
    store: Store,
    name: str,
    source: str,
    plan: Plan,
    *,
    progress: Progress | None,
    workers: int | None,
) -> IngestReport:
    started = time.perf_counter()
    name = _check_name(name)
    unique_paths(plan.items)
    replaced = replace_retryable(store, name)  # reaps dead ingests first
    # UserError if the name is taken. The pid lets a later look at the store tell a live ingest
    # from one that was killed.
    dataset = store.datasets.create(name, source, pid=os.getpid())
    clean_leftovers(store)
    folder = store.workspace.dataset_dir(dataset.id)
    heartbeat = Heartbeat(store, dataset.id)
    try:
        (folder / "files").mkdir(parents=True, exist_ok=True)
        (folder / "thumbs").mkdir(parents=True, exist_ok=True)
        rejected = list(plan.rejected)
        seen: dict[str, str] = {}  # sha256 -> path of the image kept
        duplicates: list[Duplicate] = []
        images: list[Image] = []
        total = len(plan.items)
        if progress:
            progress(0, total)
        done = 0
        for outcomes in _decode_all(plan.items, folder, workers):
            for outcome in outcomes:
                if isinstance(outcome, Rejection):
                    rejected.append(outcome)
                elif outcome.sha256 in seen:
                    duplicates.append(Duplicate(outcome.path, seen[outcome.sha256]))
                else:
                    seen[outcome.sha256] = outcome.path
                    images.append(_with_dataset(outcome, dataset.id))
            if len(images) >= _BATCH:
                store.datasets.add_images(images)
                images = []
            done += len(outcomes)
            heartbeat.beat()
            if progress:
                progress(done, total)
        store.datasets.add_images(images)
        if not seen:
            raise UserError(_nothing_usable(source, rejected))
        rejected.sort(key=lambda r: r.path)
        store.datasets.add_rejections(dataset.id, rejected)
        store.datasets.add_duplicates(dataset.id, duplicates)
        dataset = store.datasets.finish(dataset.id)
    except BaseException:
        # An ingest either completes or leaves nothing behind (no half dataset to clean up).
        store.datasets.delete(dataset.id)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return IngestReport(
        dataset=dataset,
        accepted=len(seen),
        rejected=rejected,
        duplicates=len(duplicates),
        duplicate_files=duplicates,
        seconds=time.perf_counter() - started,
        replaced=replaced,
    )


def _decode_all(
    items: list[Item], folder: Path, workers: int | None
) -> Iterator[list[Image | Rejection]]:
    """Outcomes of ``items`` chunk by chunk, in order. One worker: in this process, no pool.

    ``workers=None`` means one per core, or none (this process) for fewer than 32 files.
    """
    if workers is None:
        # Starting worker processes costs ~0.3 s (more under Streamlit): not worth it for a few files.
        workers = _cpu_count() if len(items) >= _POOL_MIN_ITEMS else 1
    workers = max(1, workers)
    chunk = max(1, min(_MAX_CHUNK, len(items) // (workers * 8)))
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    if workers == 1 or len(chunks) <= 1:
        for part in chunks:
            yield decode_chunk(part, str(folder))
        close_zips()
        return
    context = multiprocessing.get_context(_start_method())
    window = workers * 4  # chunks in flight: keeps both cores busy, bounds memory
    pending = deque(chunks)
    while pending:
        # Workers die with this process: a killed ingest leaves no process behind.
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        flight: deque[tuple[list[Item], Future]] = deque()
        try:
            while pending or flight:
                while pending and len(flight) < window:
                    part = pending.popleft()
                    flight.append((part, pool.submit(decode_chunk, part, str(folder))))
                part, future = flight.popleft()
                yield future.result()
        except BrokenProcessPool:
            # A decoder crashed its worker (e.g. a segfault in a codec): reject that chunk and
            # retry what was in flight with a fresh pool.
            yield [Rejection(i.path, "crashed the image decoder") for i in part]
            pending.extendleft(reversed([p for p, _ in flight]))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _start_method() -> str:
    """fork starts workers almost for free and is safe while this process runs one thread (the
    CLI); a threaded parent (the Streamlit server) must spawn, as a fork would copy locks that other
    threads hold. The workers never touch the parent's SQLite handle."""
    single_threaded = threading.active_count() == 1
    return (
        "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )


def decode_chunk(items: list[Item], folder: str) -> list[Image | Rejection]:
    """Worker task: validate, hash and store each item. Never raises for a bad file."""
    return [_decode_item(item, Path(folder)) for item in items]


def _decode_item(item: Item, folder: Path) -> Image | Rejection:
    try:
        data = read_bytes(item)
    except OSError as error:
        return Rejection(item.path, f"unreadable file ({error.strerror or error})")
    except Exception as error:  # zipfile: bad CRC, unsupported compression, ...
        return Rejection(item.path, f"unreadable zip entry ({error})")
    if len(data) > MAX_FILE_BYTES:
        return Rejection(item.path, f"file too large (over {MAX_FILE_BYTES // 1024**2} MB)")
    try:
        image = decode(data, reduce_to=THUMB_SIZE)
        sha = hashlib.sha256(data).hexdigest()
        file = "files/" + stored_name(sha, image.format)
        write_once(folder / file, data)
        write_once(folder / "thumbs" / f"{sha}.jpg", thumbnail_bytes(image.rgb))
    except Rejected as error:
        return Rejection(item.path, str(error))
    except OSError as error:  # disk full, permissions in the workspace: not the file's fault
        raise UserError(
            f"cannot write into the workspace ({error}): free space or fix permissions"
        ) from error
    return Image(
        0, 0, item.path, sha, file, image.width, image.height, image.mode, image.format, len(data)
    )


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


def _read_upload(f: bytes | BinaryIO) -> bytes:
    if isinstance(f, (bytes, bytearray, memoryview)):
        return bytes(f)
    if hasattr(f, "seek"):
        f.seek(0)
    return f.read(MAX_FILE_BYTES + 1)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
