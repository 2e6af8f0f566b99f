"""Work a page asks for and never does in its script: one background thread per kind of work
("lane") in the server process, which runs requests one at a time and keeps their state for the
pages to poll. The work itself runs in child processes (``background_maps``: a UMAP fit per child;
``background_requests``: the labeling page's embedding and predictions in ``work_process``), so
neither a page script nor the server's GIL is held by it.

    lane = Lane("sslviz-maps")
    state = lane.submit(key, work)               # work(state) -> result; state.stage says where
    state.done, state.stage, state.error, state.result   # a page polls this (a fragment)
    lane.submit(key, work, slot="session 3")     # queued requests of a slot: the newest wins
    lane.last(slot)                              # what the slot computed last (shown meanwhile)

A request already queued, running or ended is shared (the same key: the same state), and done
again only with ``retry``. A request with a ``slot`` supersedes that slot's requests still
waiting in the queue: a burst of five label clicks computes the first and the last, not five.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger(__name__)


@dataclass
class WorkState:
    """Where a request is: ``stage`` in words for the page, ``done`` once it ended (``result``,
    or ``error`` in one line); ``superseded``: a newer request of its slot replaced it while it
    waited (it never ran)."""

    stage: str = "queued"
    done: bool = False
    error: str | None = None
    result: Any = None
    started: float = 0.0
    slot: str | None = None
    superseded: bool = False


Work = Callable[[WorkState], Any]


def one_line(error: BaseException) -> str:
    """An exception as the page says it: its first line, or its repr when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


class Lane:
    """One daemon worker thread and a queue (not a ThreadPoolExecutor, whose worker the
    interpreter joins at exit: a server told to stop would wait for the work to end). ``keep``:
    how many ended requests are remembered (their results held in memory) besides each slot's
    last one."""

    def __init__(self, name: str, *, keep: int = 256) -> None:
        self.queue: queue.Queue[tuple[str, WorkState, Work]] = queue.Queue()
        self.states: OrderedDict[str, WorkState] = OrderedDict()
        self.lock = threading.Lock()
        self.keep = keep
        self._last: OrderedDict[str, WorkState] = OrderedDict()
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while True:
            key, state, work = self.queue.get()
            if not state.superseded:
                self._run(key, state, work)

    def submit(
        self, key: str, work: Work, *, retry: bool = False, slot: str | None = None
    ) -> WorkState:
        """The state of the request ``key``, queued now unless it is queued, running or ended
        already (a retry is asked for: ended ones run again)."""
        with self.lock:
            state = self.states.get(key)
            if state is not None and not (retry and state.done):
                self.states.move_to_end(key)
                return state
            if slot is not None:
                self._supersede(slot)
            state = WorkState(started=time.monotonic(), slot=slot)
            self.states[key] = state
            self.queue.put((key, state, work))
            return state

    def _supersede(self, slot: str) -> None:
        # under the lock: the slot's requests that have not begun are dropped (never run)
        for key, state in list(self.states.items()):
            if state.slot == slot and state.stage == "queued" and not state.done:
                state.superseded, state.stage, state.done = True, "superseded", True
                del self.states[key]

    def peek(self, key: str) -> WorkState | None:
        """The state of ``key`` if it was asked for here (never queues it: what a poll reads)."""
        with self.lock:
            return self.states.get(key)

    def last(self, slot: str) -> WorkState | None:
        """The slot's newest request that ended with a result (None before the first)."""
        with self.lock:
            return self._last.get(slot)

    def _run(self, key: str, state: WorkState, work: Work) -> None:
        state.stage = "starting"
        try:
            state.result = work(state)
            state.stage = "done"
        except Exception as error:  # said on the page that asked for it
            _log.warning("background work %s failed", key, exc_info=True)
            state.error = one_line(error)
            state.stage = "failed"
        finally:
            state.done = True
            self._ended(key, state)

    def _ended(self, key: str, state: WorkState) -> None:
        with self.lock:
            if state.slot is not None and state.error is None:
                self._last[state.slot] = state
                self._last.move_to_end(state.slot)
                while len(self._last) > self.keep:
                    self._last.popitem(last=False)
            ended = [k for k, s in self.states.items() if s.done]
            for old in ended[: max(0, len(ended) - self.keep)]:
                del self.states[old]  # the oldest ended ones: their results are let go
