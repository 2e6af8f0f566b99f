"""A run carried out in this process (``sslviz train``, ``sslviz finetune`` without
``--background``): Ctrl-C asks it to checkpoint and end ``cancelled``, a second Ctrl-C aborts."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any

from sslviz.cli.output import say
from sslviz.core.errors import UserError


def run_here(store: Any, run_id: int, what: str, callbacks: Sequence[Any] = ()) -> Any:
    """Carry out run ``run_id`` (claimed by this process) to its end; the run as it ended.
    A crash is recorded on the run and reported as a one-line UserError."""
    from sslviz.runner.execute import execute

    stop = threading.Event()

    def on_interrupt(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: the user means it
        say("\nstopping: saving a checkpoint (Ctrl-C again to abort)")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    say(f"{what} {run_id}: training (Ctrl-C to stop; `sslviz resume {run_id}` continues it)")
    try:
        return execute(store, run_id, should_stop=stop.is_set, callbacks=list(callbacks))
    except UserError:
        raise
    except Exception as error:
        raise UserError(
            f"{what} {run_id} failed: {error} (traceback: `sslviz status {run_id}`)"
        ) from None
    finally:
        signal.signal(signal.SIGINT, previous)
