"""Decode once: a dataset's images as one uint8 array at a training resolution, on disk.

    <dataset_dir>/cache/<size>-v<N>.npy   uint8 (N, 3, size, size), rows in the dataset's image order

``N`` is ``decode.DECODE_VERSION``: a cache decoded under older rules (transparency on black, thin
images cropped to a sliver) is rebuilt once, and removed.

Each image is decoded (EXIF orientation applied, RGB) by ``sslviz.data.decode.load_rgb``, its
shorter side resized to ``size`` and the centre cropped square. The array is built in a process
pool, written to a temporary file, flushed to disk and renamed into place (a crash never leaves a
half cache; the temporary files of a killed build are removed by the next one), then opened
memory-mapped: training reads only the rows of each batch, so memory does not grow with the
dataset and every epoch after the first decode is tensor work. One process builds a cache at a
time (a lock file beside it): another that needs it meanwhile waits, then reads that build.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sslviz.core.liveness import Cancelled, ChildWatch, alive
from sslviz.core.processes import die_with_parent, pid_alive
from sslviz.data.decode import DECODE_VERSION

if TYPE_CHECKING:
    from sslviz.store import Store

ProgressCallback = Callable[[int, int], None]  # (images done, total)
# Below this many images a process pool costs more to start than it saves.
_POOL_MIN_IMAGES = 64
_CHUNK = 256  # images per pool task: big enough to amortize pickling, small enough for progress
_POLL_SECONDS = 0.2  # how often a build checks whether it should stop


def cache_path(store: Store, dataset_id: int, size: int) -> Path:
    name = f"{int(size)}-v{DECODE_VERSION}.npy"
    return store.workspace.dataset_dir(dataset_id) / "cache" / name


def _remove_outdated(path: Path, size: int) -> None:
    """Caches of this size decoded under older rules (``<size>.npy``, ``<size>-v<M>.npy``)."""
    for old in [path.with_name(f"{size}.npy"), *path.parent.glob(f"{size}-v*.npy")]:
        if old != path:
            old.unlink(missing_ok=True)


def decode_square(path: str | Path, size: int) -> np.ndarray:
    """One image file -> uint8 (3, size, size): shorter side resized to ``size``, centre crop
    (a thin image shrunk whole and padded: ``decode.fit_square``)."""
    from sslviz.data.decode import fit_square, load_rgb

    square = fit_square(load_rgb(path), size)
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)  # (3, size, size)


def _decode_chunk(paths: Sequence[str], size: int) -> np.ndarray:
    return (
        np.stack([decode_square(p, size) for p in paths])
        if paths
        else np.empty((0, 3, size, size), np.uint8)
    )


def open_cache(
    store: Store,
    dataset_id: int,
    size: int,
    *,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """The dataset's uint8 (N, 3, size, size) cache, memory-mapped read-only; built if missing
    (or stale: its row count differs from the dataset's image count). Raises
    ``Cancelled`` if ``should_stop()`` turns true while it is built."""
    path = cache_path(store, dataset_id, size)
    shape = (store.datasets.count_images(dataset_id), 3, size, size)
    cache = _built(path, shape)
    if cache is not None:
        return cache
    # one build per cache at a time, across processes: the others wait, then read what it built
    with _build_lock(path, should_stop or (lambda: False)):
        cache = _built(path, shape)
        if cache is not None:
            return cache
        build_cache(
            store,
            dataset_id,
            size,
            on_progress=on_progress,
            workers=workers,
            should_stop=should_stop,
        )
    return np.load(path, mmap_mode="r")


def _built(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cache at ``path`` if it is there with ``shape`` (else it must be built)."""
    if not path.exists():
        return None
    cache = np.load(path, mmap_mode="r")
    return cache if cache.shape == shape else None


@contextlib.contextmanager
def _build_lock(path: Path, stop: Callable[[], bool]) -> Iterator[None]:
    """Hold the cache's build lock (``.<name>.lock``, an ``flock``: released when its process
    dies, so a killed build never blocks the next). While another process holds it, wait: its
    work (CPU use) is this process's sign of life too, and ``stop()`` raises ``Cancelled``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f".{path.stem}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        watch = ChildWatch()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                if holder.isdigit():
                    watch.check([int(holder)])
                if stop():
                    raise Cancelled("stopped while waiting for another cache build") from None
                time.sleep(_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def build_cache(
    store: Store,
    dataset_id: int,
    size: int,
    *,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Decode every image of the dataset into ``cache_path`` (atomically, durably); returns it.

    Each decoded chunk, and the decoding processes' CPU use between chunks, is a sign of life
    (``core.liveness``); ``on_progress(done, total)`` is called after each chunk (at least every
    few seconds on normal images). ``should_stop()`` is polled several
    times a second: when true, the decoding processes are killed, nothing is left behind and
    ``Cancelled`` is raised.
    """
    dataset_dir = store.workspace.dataset_dir(dataset_id)
    files = [str(dataset_dir / image.file) for image in store.datasets.images(dataset_id)]
    path = cache_path(store, dataset_id, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    _remove_outdated(path, int(size))
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{time.monotonic_ns()}.npy")
    total = len(files)
    stop = should_stop or (lambda: False)
    try:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(total, 3, size, size)
        )
        chunks = [(i, files[i : i + _CHUNK]) for i in range(0, total, _CHUNK)]
        if on_progress:
            on_progress(0, total)
        n_workers = workers or min(os.cpu_count() or 1, 8)
        if total < _POOL_MIN_IMAGES or n_workers <= 1:
            decoded = ((start, _decode_chunk(chunk, size)) for start, chunk in chunks)
        else:
            decoded = _decode_in_pool(chunks, size, n_workers, stop)
        done = 0
        try:
            for start, array in decoded:
                out[start : start + len(array)] = array
                done += len(array)
                alive()
                if on_progress:
                    on_progress(done, total)
                if stop():
                    raise Cancelled(f"stopped while decoding images ({done} of {total} done)")
        finally:
            decoded.close()  # now, not when garbage is collected: the pool goes with it
        out.flush()
        del out
        _fsync(tmp)  # the rename must not land on disk before the data does
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _decode_in_pool(
    chunks: list[tuple[int, list[str]]], size: int, n_workers: int, stop: Callable[[], bool]
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start row, uint8 (n, 3, size, size))`` per chunk, in order, decoded by a process
    pool; at most two chunks per process are in flight, so memory stays bounded.

    The pool's processes ignore SIGINT (Ctrl-C reaches the whole foreground process group; the
    trainer answers it): they start with it blocked, then ignore it. They die on SIGTERM. When
    ``stop()`` turns true, or on any error, they are killed at once rather than left to finish
    their chunks; an error while a stop is under way (a signal reached them first) is the stop.
    """
    # forkserver: the caller has threads (heartbeat, torch), which fork copies badly
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=context,
        initializer=_init_decoder,
    )
    pending: deque[tuple[int, Future]] = deque()
    todo = iter(chunks)
    watch = ChildWatch()  # a chunk of large photos takes seconds: their CPU use is progress
    try:
        while True:
            while len(pending) < 2 * n_workers and (item := next(todo, None)) is not None:
                with _sigint_blocked():  # inherited by the processes this submit starts
                    pending.append((item[0], pool.submit(_decode_chunk, item[1], size)))
            if not pending:
                return
            start, future = pending[0]
            # wake often so a stop is answered within a fraction of a second
            wait([future], timeout=_POLL_SECONDS)
            watch.check(process.pid for process in _pool_processes(pool))
            if stop():
                raise Cancelled("stopped while decoding images")
            if not future.done():
                continue
            pending.popleft()
            yield start, future.result()
    except (BrokenProcessPool, OSError, EOFError):
        if stop() or _stopped_soon(stop):  # a cancel's signal reached the pool first
            raise Cancelled("stopped while decoding images") from None
        raise
    finally:
        _kill_pool(pool)


def _init_decoder() -> None:
    """In each decoding process: Ctrl-C is for the parent; SIGTERM ends the process, and so
    does its parent's death. That parent is the forkserver, which exits when the process that
    builds the cache does, even by SIGKILL (which can't shut the pool down)."""
    die_with_parent(os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread meanwhile: processes started now inherit the block, so a
    Ctrl-C during their start-up can't kill them. One that arrives meanwhile is delivered to
    this process when it ends (Python runs the handler then)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stopped_soon(stop: Callable[[], bool], seconds: float = 1.0) -> bool:
    """Whether ``stop()`` turns true within ``seconds`` (a cancel's signal may be handled a
    moment after the pool saw its processes die from it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stop():
            return True
        time.sleep(0.05)
    return False


def _pool_processes(pool: ProcessPoolExecutor) -> list[multiprocessing.Process]:
    return list((getattr(pool, "_processes", None) or {}).values())


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down now: queued chunks dropped, running ones killed, processes reaped."""
    processes = _pool_processes(pool)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    pool.shutdown(wait=True)


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's: a rename in it) data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_orphans(path: Path) -> None:
    """Delete temporary caches (``.<size>.<pid>.<ns>.npy``) left by processes that died while
    building (SIGKILL, power loss); a build still running in a live process is left alone."""
    for tmp in path.parent.glob(f".{path.stem}.*.npy"):
        parts = tmp.name.split(".")
        if len(parts) == 5 and parts[2].isdigit() and not pid_alive(int(parts[2])):
            tmp.unlink(missing_ok=True)
