"""Signs of life and cancellation, for any long piece of work (torch-free, store-free).

Executors (training, fine-tuning, embedding) and the layers below them (the decode cache) call
:func:`alive` after each chunk of real work and raise :class:`Cancelled` when asked to stop; the
job runner's heartbeat (``sslviz.runner.heartbeat``) beats only while such signs keep coming, so a
stuck process is reaped instead of looking alive forever.

    from sslviz.core.liveness import Cancelled, alive
    alive()                                  # made progress just now
    raise Cancelled("stopped while decoding")  # the run ends `cancelled`, never `failed`
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from sslviz.core.processes import cpu_seconds

_last_sign = time.monotonic()  # the process starting is its first sign of life


class Cancelled(Exception):
    """Raised inside an executor when a stop was asked (cancel, Ctrl-C): the run ends
    ``cancelled`` (after its last checkpoint), never ``failed``."""


def alive() -> None:
    """Record a sign of life of this process: it made progress just now."""
    global _last_sign
    _last_sign = time.monotonic()


def seconds_since_alive() -> float:
    return time.monotonic() - _last_sign


class ChildWatch:
    """Signs of life of work this process waits on in other processes (a decoding pool, the UMAP
    fit): whenever one of them used more CPU, or a file it writes (its verbose output) grew,
    since the last :meth:`check`, that counts as this process's sign of life (:func:`alive`).

    So a child that compiles numba code for a minute without printing is not mistaken for a
    hang, while one that waits forever on nothing (no CPU, no output) still is.

        watch = ChildWatch(output=folder / "umap.log")
        while process.is_alive():
            process.join(0.5)
            watch.check([process.pid])
    """

    def __init__(self, output: Path | None = None) -> None:
        self.output = output
        self._cpu: dict[int, float] = {}
        self._size = 0

    def check(self, pids: Iterable[int]) -> bool:
        """Whether the children worked since the last check (then :func:`alive` was called)."""
        worked = False
        for pid in pids:
            used = cpu_seconds(pid)
            if used is not None and used > self._cpu.get(pid, 0.0):
                worked = True
                self._cpu[pid] = used
        if self.output is not None:
            try:
                size = self.output.stat().st_size
            except OSError:
                size = self._size
            worked = worked or size > self._size
            self._size = max(size, self._size)
        if worked:
            alive()
        return worked
