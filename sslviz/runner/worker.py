"""The background worker: ``python -m sslviz.runner.worker RUN_ID`` carries out one run (pretext
training, fine-tuning or embedding: ``sslviz.store.kinds``), then hands over.

Started by :func:`sslviz.runner.jobs.schedule` in its own session, output in ``runs/<id>/worker.log``.
It first claims the run (its pid and the claim time in one conditional update,
``sslviz.runner.execute.claim``): a second worker for a run another process owns exits at once
and writes nothing. It runs at a lower priority with few torch threads so the app on the same machine stays
responsive, writes a heartbeat from a thread while the executor shows signs of life
(``sslviz.runner.heartbeat``: a slow step or cache build never looks dead, a stuck one is reaped),
carries the run out through ``sslviz.runner.execute`` (the one executor wrapper),
turns SIGTERM/SIGINT into a stop flag the executor polls (checkpoint, then ``cancelled``),
records any crash — even an import error — as ``failed`` with its traceback, and on the way out
calls ``schedule`` so queued runs start with no browser open.

Importing this module has no side effects: process pools (forkserver, spawn) import it again as
``__mp_main__`` in their children, which must keep the default signal handlers.
"""

from __future__ import annotations

# Signals first: a cancel that arrives while torch is still importing must not kill us unrecorded.
import signal
import threading

_stop = threading.Event()


def _on_signal(signum: int, frame: object) -> None:
    if _stop.is_set():  # a second signal: the user means it
        raise KeyboardInterrupt
    _stop.set()


if __name__ == "__main__":  # not in a pool process that imports us as __mp_main__
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from sslviz.store import Store


def _record_failure(store: Store, run_id: int, error: BaseException) -> None:
    """Mark the run failed with a one-line error and the traceback (unless it already ended or
    is no longer this process's); a stop (``Cancelled`` from any executor, or a second signal)
    ends it cancelled."""
    from sslviz.core.liveness import Cancelled

    mine = {"allowed_from": ("queued", "running"), "owner": os.getpid(), "ended_at": time.time()}
    if isinstance(error, Cancelled) or (isinstance(error, KeyboardInterrupt) and _stop.is_set()):
        store.runs.transition(
            run_id,
            "cancelled",
            error=None if isinstance(error, Cancelled) else "stopped by a second signal",
            **mine,
        )
        return
    message = (f"{type(error).__name__}: {error}".splitlines() or ["crashed"])[0][:500]
    store.runs.transition(run_id, "failed", error=message, traceback=traceback.format_exc(), **mine)


def run(run_id: int) -> int:
    """Claim ``run_id`` and carry it out to its end; the exit code is 0 unless the run failed
    (3: another process owns the run, which is left untouched)."""
    from sslviz.core.errors import UserError
    from sslviz.runner.execute import RunTaken, claim
    from sslviz.store import Store

    print(f"worker: run {run_id}, pid {os.getpid()}, started {time.ctime()}", flush=True)
    store = Store.open()
    # Claim first (no torch yet: a second worker for a running run exits at once), so nothing
    # below ever writes to a run another process owns.
    try:
        claim(store, run_id, worker=True)
    except RunTaken as error:
        print(f"worker: {error}; leaving it alone", flush=True)
        store.close()
        return 3
    except UserError as error:  # deleted or ended meanwhile
        print(f"worker: {error}", flush=True)
        store.close()
        return 2
    code = _carry_out(store, run_id)
    status = _status(store, run_id)
    if status is None:
        print(f"worker: run {run_id} was deleted", flush=True)
    else:
        if status not in ("queued", "running") and store.runs.get(run_id).ended_at is None:
            store.runs.update(run_id, ended_at=time.time())  # the runs table shows how long it took
        print(f"worker: run {run_id} ended {status} at {time.ctime()}", flush=True)
    code = 1 if status == "failed" else code
    _hand_over(store)
    store.close()
    return code


def _carry_out(store: Store, run_id: int) -> int:
    """The claimed run, from importing torch to its end (every crash recorded as the run's)."""
    from sslviz.core.liveness import Cancelled
    from sslviz.core.settings import worker_threads
    from sslviz.runner.heartbeat import WORKER_STARTUP_SECONDS, Heartbeat

    me = os.getpid()
    # beats while it starts, then while the executor shows signs of life
    beats = Heartbeat(store, run_id, startup=WORKER_STARTUP_SECONDS)
    code = 0
    try:
        import torch

        threads = worker_threads()
        torch.set_num_threads(threads)
        print(f"worker: torch threads {threads}, nice {os.nice(0)}", flush=True)
        from sslviz.runner.execute import execute

        if _stop.is_set() or store.runs.get(run_id).cancel_requested:
            store.runs.transition(
                run_id, "cancelled", allowed_from=("running",), owner=me, ended_at=time.time()
            )
        else:  # pretext training, fine-tuning, embedding: each kind names its executor
            execute(store, run_id, should_stop=_stop.is_set)
        store.runs.transition(
            run_id,
            "failed",
            allowed_from=("running",),
            owner=me,
            ended_at=time.time(),
            error="the training loop returned without ending the run (a bug in sslviz)",
        )
    except BaseException as error:  # every crash is recorded, then reported
        if _status(store, run_id) is not None:  # a deleted run has nothing left to record
            if not isinstance(error, Cancelled):
                traceback.print_exc()
                code = 1
            _record_failure(store, run_id, error)
    finally:
        beats.stop()
    return code


def _status(store: Store, run_id: int) -> str | None:
    """The run's status, or None if it was deleted meanwhile (``sslviz delete-run``)."""
    try:
        return store.runs.get(run_id).status
    except LookupError:
        return None


def _hand_over(store: Store) -> None:
    """Start whatever is queued now that this run's slot is free."""
    try:
        from sslviz.runner import jobs

        started = jobs.schedule(store)
        if started:
            print(f"worker: started queued runs {started}", flush=True)
    except Exception:
        traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m sslviz.runner.worker RUN_ID", file=sys.stderr)
        return 2
    from sslviz.core.processes import background_priority

    background_priority()
    return run(int(args[0]))


if __name__ == "__main__":
    exit_code = main()
    # Everything is in the store and the log by now: skip the interpreter's teardown, seconds of
    # garbage collection over torch's objects at a low priority on a busy machine, so a cancelled
    # or deleted run's process is gone as soon as it has said so.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
