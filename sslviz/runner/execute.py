"""One way to carry out a run of any kind: claim it, keep its heartbeat, call the kind's executor,
and record how it ended. The background worker, a foreground ``sslviz train`` and the Python API
all go through :func:`execute`; executors (``sslviz.store.kinds``) only do the work.

An executor is ``work(store, run, *, should_stop, **options) -> (status, fields)``: it returns the
status the run ends with (``finished`` or ``cancelled``) and the run fields to set with it, raises
``core.liveness.Cancelled`` to end ``cancelled`` from anywhere (a cache build, an evaluation), and
anything else ends the run ``failed`` with the traceback stored (Ctrl-C: ``cancelled``). A kind
with a results writer then writes what its pages read as the run's last stage (``RESULTS_STAGE``,
with progress and cancel); a run that ended in that stage redoes only it when carried out again.

    run = execute(store, run_id, should_stop=stop.is_set)   # the run as it ended
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled, alive
from sslviz.runner.heartbeat import Heartbeat, is_beating
from sslviz.store import Run, Store
from sslviz.store.kinds import RESULTS_STAGE, RunKind, run_kind
from sslviz.store.rows import RESUMABLE_STATUSES


def execute(
    store: Store,
    run_id: int,
    *,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> Run:
    """Take a queued, claimed or resumable run to its end with its kind's executor; returns the
    run as it ended (finished, cancelled or failed: a failure is recorded, then re-raised). A run
    another process holds is refused with a UserError. ``options`` go to the executor (training
    and fine-tuning take ``callbacks``)."""
    run = claim(store, run_id)
    alive()
    kind = run_kind(run.kind)
    heartbeat = None if is_beating(store, run.id) else Heartbeat(store, run.id)
    try:
        if (run.stage or "").startswith(RESULTS_STAGE):  # it ended there: redo only that stage
            status, fields = "finished", {}
        else:
            work = kind.load_executor()
            status, fields = work(store, run, should_stop=should_stop, **options)
        if status == "finished" and kind.results_writer:
            _write_results(store, run.id, kind, should_stop)
            fields = {**fields, "stage": None, "stage_progress": None}
    except Cancelled:
        status, fields = "cancelled", {}
    except BaseException as error:
        record_crash(store, run.id, error)
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    store.runs.transition(
        run.id,
        status,
        allowed_from=("running",),
        owner=os.getpid(),
        ended_at=time.time(),
        pid=None,
        **fields,
    )
    return store.runs.get(run.id)


class RunTaken(UserError):
    """The run is owned by another process: this one must leave it alone."""


def claim(store: Store, run_id: int, *, worker: bool = False) -> Run:
    """Take the run for this process and return it as claimed: the claim, this pid and the
    claim time are one conditional update (``store.runs.take``), so a run has one owner. A queued
    run, an ended one restarting from its checkpoint (its cancel flag cleared), or for a
    ``worker`` one a scheduler claimed for a worker, can be taken; a run this process already
    owns (created claimed in the foreground) is returned as it is. Another process's run (or one
    a scheduler holds for its worker) raises :class:`RunTaken`, an unknown or finished one a
    UserError; neither is touched."""
    run = store.runs.get(run_id)
    me = os.getpid()
    if run.status == "running" and run.pid == me and run.claimed_at is not None:
        return run  # claimed for this process already
    if store.runs.take(run.id, me, resumable=RESUMABLE_STATUSES, worker=worker):
        return store.runs.get(run.id)
    now_run = store.runs.get(run.id)
    if now_run.status == "running":
        raise _taken(now_run)
    raise UserError(
        f"run {run.id} is {now_run.status}: only queued, running, "
        f"{', '.join(RESUMABLE_STATUSES)} runs can be carried out"
    )


def _write_results(
    store: Store, run_id: int, kind: RunKind, should_stop: Callable[[], bool] | None
) -> None:
    """The run's last stage: its kind's results writer, where the model is (not the first
    visitor of a page). Named in the store first, so a run that ends here (killed, cancelled)
    resumes here; a stop (``should_stop()`` or the store's cancel flag) raises ``Cancelled``."""
    store.runs.progress(run_id, stage=RESULTS_STAGE, stage_progress=None)

    def stop() -> bool:
        asked = should_stop is not None and should_stop()
        return asked or bool(store.runs.get(run_id).cancel_requested)

    kind.load("results_writer")(store, store.runs.get(run_id), should_stop=stop)


def record_crash(store: Store, run_id: int, error: BaseException) -> None:
    """End a running run because ``error`` escaped its executor: ``cancelled`` for a Ctrl-C,
    else ``failed`` with a one-line error and the traceback (call from an ``except`` block)."""
    cancelled = isinstance(error, KeyboardInterrupt)
    store.runs.transition(
        run_id,
        "cancelled" if cancelled else "failed",
        allowed_from=("running",),
        owner=os.getpid(),
        ended_at=time.time(),
        pid=None,
        error=None if cancelled else one_line(error),
        traceback=None if cancelled else traceback.format_exc(),
    )


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line, at most 500 characters (a run's ``error``)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def _taken(run: Run) -> RunTaken:
    by = "a worker that is starting" if run.pid is None else f"process {run.pid}"
    return RunTaken(
        f"run {run.id} is already being carried out by {by}: "
        f"follow it with `sslviz status {run.id}`"
    )
