"""The heartbeat of a run's process: a thread that tells the store "still alive", but only while
the work shows signs of life (``sslviz.core.liveness.alive``, a progress write, or a change of the
run's progress fields in the store, however they were written).

When there was no sign for ``settings.progress_deadline()`` seconds (default 10 min,
``$SSLVIZ_PROGRESS_DEADLINE``) the beats stop, and ``jobs.HEARTBEAT_TIMEOUT`` later the reaper kills
the worker and marks the run ``interrupted``. A loop stuck on a dead DDP peer or a hung file read is
then reaped instead of looking alive forever. So work calls ``alive()`` at least every few minutes
(a step, a chunk of decoded images, an evaluation batch, a UMAP epoch).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from sslviz.core.liveness import alive, seconds_since_alive
from sslviz.core.settings import progress_deadline

if TYPE_CHECKING:
    from sslviz.store import Store

HEARTBEAT_SECONDS = 2.0  # how often a live run tells the store so
WORKER_STARTUP_SECONDS = 120.0  # a worker beats while it starts (imports torch on a busy machine)

_beating: set[tuple[str, int]] = set()  # (workspace, run id) with a Heartbeat in this process
_beating_lock = threading.Lock()


def is_beating(store: Store, run_id: int) -> bool:
    """Whether a :class:`Heartbeat` of this process already beats for ``run_id``."""
    with _beating_lock:
        return (str(store.workspace.root), int(run_id)) in _beating


class Heartbeat:
    """A daemon thread that writes the run's ``heartbeat_at`` every ``every`` seconds while this
    process shows signs of life (see the module docstring), on its own connection. Until the
    first sign after it began (at most ``startup`` seconds) it beats regardless: a worker
    importing torch on a busy machine has no work to show yet.

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
        startup: float = 0.0,
    ) -> None:
        self.run_id, self.every = int(run_id), every
        self.deadline = progress_deadline() if deadline is None else float(deadline)
        # a worker's first seconds import torch and friends: no work to show signs of yet
        self._born = time.monotonic()
        self._startup_ends = self._born + startup
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
                    if seconds_since_alive() > self.deadline and not self._starting():
                        continue  # stuck: let the reaper see the silence
                    store.runs.heartbeat(self.run_id)
                except Exception as error:  # the next tick tries again
                    self.failures += 1
                    print(f"heartbeat of run {self.run_id} failed: {error}", file=sys.stderr)
        finally:
            if store is not None:
                store.close()

    def _starting(self) -> bool:
        """Within ``startup`` seconds and no sign of life since this heartbeat began: the
        process is still starting (the first sign, e.g. the executor's start, ends that)."""
        now = time.monotonic()
        return now < self._startup_ends and now - seconds_since_alive() <= self._born

    def _notice_progress(self, store: Store) -> None:
        """Progress an executor wrote to the run's row (``step``, ``epoch``, ...) with a plain
        ``store.runs.update`` is a sign of life too."""
        run = store.runs.get(self.run_id)
        seen = (run.step, run.epoch, run.total_steps, run.work_seconds, run.stage_progress)
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
