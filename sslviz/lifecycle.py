"""How an executor lives inside the job runner: signs of life, a heartbeat that needs them, and a
cancellation it can raise from anywhere. Torch-free; every job kind uses it (pretext training,
fine-tuning, embedding).

    from sslviz import lifecycle
    lifecycle.progress(store, run_id, step=3, total=10)  # progress in the store + a sign of life
    lifecycle.alive()                                     # a sign of life only (no store write)
    raise lifecycle.Cancelled("stopped during ...")       # the executor ends the run `cancelled`

The worker's :class:`Heartbeat` thread writes ``heartbeat_at`` every few seconds, but only while the
process shows signs of life: a call of :func:`alive` or :func:`progress`, or a change of the run's
progress fields in the store (``step``, ``epoch``, ``total_steps``, ``train_seconds``, however they
were written). When there was none for :func:`progress_deadline` seconds (default 10 min,
``$SSLVIZ_PROGRESS_DEADLINE``), the beats stop,
and ``jobs.HEARTBEAT_TIMEOUT`` later the reaper kills the worker and marks the run
``interrupted``. A loop stuck on a dead DDP peer or a hung file read is then reaped instead of
looking alive forever. So call :func:`alive` at least every few minutes of real work (a step, a
chunk of decoded images, an evaluation batch, a UMAP epoch).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sslviz.store import Store

DEADLINE_ENV = "SSLVIZ_PROGRESS_DEADLINE"
DEFAULT_DEADLINE = 600.0  # seconds without a sign of life before the heartbeat stops
HEARTBEAT_SECONDS = 2.0  # how often a live run tells the store so

_last_sign = time.monotonic()  # the process starting is its first sign of life
_beating: set[tuple[str, int]] = set()  # (workspace, run id) with a Heartbeat in this process
_beating_lock = threading.Lock()


def record_crash(store: Store, run_id: int, error: BaseException) -> None:
    """End a running run because ``error`` escaped its executor: ``cancelled`` for a Ctrl-C,
    else ``failed`` with a one-line error and the traceback (call from an ``except`` block)."""
    cancelled = isinstance(error, KeyboardInterrupt)
    store.runs.transition(
        run_id,
        "cancelled" if cancelled else "failed",
        allowed_from=("running",),
        ended_at=time.time(),
        pid=None,
        error=None if cancelled else one_line(error),
        traceback=None if cancelled else traceback.format_exc(),
    )


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line, at most 500 characters (a run's ``error``)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


class Cancelled(Exception):
    """Raised inside an executor when a stop was asked (cancel, Ctrl-C): the run ends
    ``cancelled`` (after its last checkpoint), never ``failed``."""


def alive() -> None:
    """Record a sign of life of this process: it made progress just now."""
    global _last_sign
    _last_sign = time.monotonic()


def seconds_since_alive() -> float:
    return time.monotonic() - _last_sign


def progress_deadline() -> float:
    """Seconds without a sign of life after which the heartbeat stops: ``$SSLVIZ_PROGRESS_DEADLINE``
    (a positive number), else 10 minutes."""
    return positive_env(DEADLINE_ENV, DEFAULT_DEADLINE)


def positive_env(name: str, default: float) -> float:
    """``$name`` as a positive number of seconds, else ``default`` (unset, empty or invalid)."""
    try:
        value = float(os.environ.get(name, "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


def progress(
    store: Store,
    run_id: int,
    *,
    step: int | None = None,
    total: int | None = None,
    epoch: int | None = None,
    **fields: Any,
) -> None:
    """Write a run's progress (``step`` of ``total``, ``epoch``, any other run fields) with a fresh
    ``heartbeat_at``, and count it as a sign of life."""
    named = {"step": step, "total_steps": total, "epoch": epoch}
    values = {k: v for k, v in named.items() if v is not None} | fields
    store.runs.update(run_id, heartbeat_at=time.time(), **values)
    alive()


def is_beating(store: Store, run_id: int) -> bool:
    """Whether a :class:`Heartbeat` of this process already beats for ``run_id``."""
    with _beating_lock:
        return (str(store.workspace.root), int(run_id)) in _beating


class Heartbeat:
    """A daemon thread that writes the run's ``heartbeat_at`` every ``every`` seconds while this
    process shows signs of life (see the module docstring), on its own connection.

    Its connection waits at most ``every`` seconds for a lock: a beat that can't be written is
    skipped, reported on stderr and tried again at the next tick, so a busy or broken moment of
    the database never ends the beats.
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        *,
        every: float = HEARTBEAT_SECONDS,
        deadline: float | None = None,
    ) -> None:
        self.run_id, self.every = int(run_id), every
        self.deadline = progress_deadline() if deadline is None else float(deadline)
        self.failures = 0
        self._seen: tuple | None = None  # the run's progress fields at the last tick
        self._key = (str(store.workspace.root), self.run_id)
        self._stop = threading.Event()
        with _beating_lock:
            _beating.add(self._key)
        self._thread = threading.Thread(
            target=self._run, args=(store.workspace.root,), daemon=True, name="heartbeat"
        )
        self._thread.start()

    def _run(self, root: Any) -> None:
        from sslviz.store import Store

        store = None
        try:
            while not self._stop.wait(self.every):
                try:
                    if store is None:  # opened here, so a locked database at start is retried
                        store = Store.open(root)
                        store.connection.set_busy_timeout(max(0.05, min(self.every, 5.0)))
                    self._notice_progress(store)
                    if seconds_since_alive() > self.deadline:
                        continue  # stuck: let the reaper see the silence
                    store.runs.heartbeat(self.run_id)
                except Exception as error:  # noqa: BLE001 - the next tick tries again
                    self.failures += 1
                    print(f"heartbeat of run {self.run_id} failed: {error}", file=sys.stderr)
        finally:
            if store is not None:
                store.close()

    def _notice_progress(self, store: Store) -> None:
        """Progress an executor wrote to the run's row (``step``, ``epoch``, ...) with a plain
        ``store.runs.update`` is a sign of life too."""
        run = store.runs.get(self.run_id)
        seen = (run.step, run.epoch, run.total_steps, run.train_seconds)
        if self._seen is not None and seen != self._seen:
            alive()
        self._seen = seen

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with _beating_lock:
            _beating.discard(self._key)
