"""Decode an ingest's items in a pool of worker processes, in order, bounded, cancellable.

    for outcomes in decode_all(items, folder, workers=2, should_stop=stop):
        ...  # one list of Image | Rejection per chunk, in the items' order

Each worker reads its files itself, validates them by decoding (:mod:`sslviz.data.decode`),
hashes them and writes the original (named by its hash) and a thumbnail; the parent only hands
out chunks (a bounded number in flight, so memory does not grow with the folder).

A file can crash the process that decodes it (a segfault in a codec). The pool then breaks and
every chunk in flight fails with it, so none of them can be blamed: each of their items is
decoded again on its own, one at a time, and only the one that crashes a process again is
rejected ("crashed the image decoder"); its neighbours are kept.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled
from sslviz.core.processes import die_with_parent
from sslviz.data.decode import Rejected, decode
from sslviz.data.sources import MAX_FILE_BYTES, Item, close_zips, read_bytes
from sslviz.data.storage import THUMB_SIZE, stored_name, thumbnail_bytes, write_once
from sslviz.store import Image, Rejection

CRASHED = "crashed the image decoder"
MAX_CHUNK = 16  # items per worker task: amortizes inter-process overhead
POOL_MIN_ITEMS = 32  # with fewer files (and no explicit workers), decode in this process
_POLL_SECONDS = 0.2  # a stop is answered within this long while a chunk decodes

Outcomes = list[Image | Rejection]


def decode_all(
    items: list[Item],
    folder: Path,
    workers: int | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Outcomes]:
    """Outcomes of ``items`` chunk by chunk, in order. One worker: in this process, no pool.

    ``workers=None`` means one per core, or none (this process) for fewer than 32 files.
    ``should_stop`` is polled while waiting: Cancelled once it says so.
    """
    stop = should_stop or (lambda: False)
    if workers is None:
        # Starting worker processes costs ~0.3 s (more under Streamlit): not worth it for a few files.
        workers = cpu_count() if len(items) >= POOL_MIN_ITEMS else 1
    workers = max(1, workers)
    chunk = max(1, min(MAX_CHUNK, len(items) // (workers * 8)))
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    if workers == 1 or len(chunks) <= 1:
        try:
            for part in chunks:
                if stop():
                    raise Cancelled("stopped while decoding images")
                yield decode_chunk(part, str(folder))
        finally:
            close_zips()
        return
    method = _start_method()  # chosen once: a broken pool's threads may linger a moment
    pending: deque[list[Item]] = deque(chunks)
    suspects: deque[Item] = deque()  # items that were in flight when a decoder crashed
    while pending or suspects:
        # One item at a time after a crash: whichever breaks the pool now is the culprit.
        alone = bool(suspects)
        pool = _pool(1 if alone else workers, method)
        flight: deque[tuple[list[Item], Future]] = deque()
        try:
            while suspects if alone else (pending or flight):
                if alone:
                    part = [suspects[0]]
                    flight.append((part, pool.submit(decode_chunk, part, str(folder))))
                while not alone and pending and len(flight) < workers * 4:
                    future = pool.submit(decode_chunk, pending[0], str(folder))
                    flight.append((pending.popleft(), future))
                outcomes = _result(flight[0][1], stop)
                flight.popleft()
                if alone:
                    suspects.popleft()
                yield outcomes
        except BrokenProcessPool:
            if alone:  # this one item crashed a decoder on its own
                yield [Rejection(suspects.popleft().path, CRASHED)]
            else:
                suspects.extend(item for part, _ in flight for item in part)
        finally:
            _kill(pool)


def _result(future: Future, stop: Callable[[], bool]) -> Outcomes:
    """The chunk's outcomes, waking often to answer a stop."""
    while not future.done():
        wait([future], timeout=_POLL_SECONDS)
        if stop():
            raise Cancelled("stopped while decoding images")
    return future.result()


def _pool(workers: int, method: str) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_init_decoder,
        initargs=(os.getpid(),),
    )


def _init_decoder(parent: int) -> None:
    """In each decoding process: it dies with its parent (a killed ingest leaves no process
    behind), and signals meant for the parent (Ctrl-C, a job's cancel sent to its process
    group) are the parent's to answer: it stops the pool itself."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down now: queued chunks dropped, running ones killed, processes reaped."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()  # they ignore SIGTERM (see _init_decoder)
    deadline = time.monotonic() + 5
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=True)


def _start_method() -> str:
    """fork starts workers almost for free and is safe while this process runs one thread (the
    CLI); a threaded parent (the Streamlit server, a worker with its heartbeat) must spawn, as a
    fork would copy locks that other threads hold. The workers never touch the parent's SQLite
    handle."""
    single_threaded = threading.active_count() == 1
    return (
        "fork" if single_threaded and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# --- in the worker ---------------------------------------------------------------------------
def decode_chunk(items: list[Item], folder: str) -> Outcomes:
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
