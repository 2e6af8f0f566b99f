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
