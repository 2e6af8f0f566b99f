"""Background runs: submit, schedule onto device slots, cancel, resume, reap, delete (DESIGN 3.3).

A run's state lives only in the store. A background run is a separate OS process
(``python -m sslviz.runner.worker RUN_ID``, in its own session) so the app stays responsive and a
browser refresh or an app restart loses nothing. Any process may call :func:`schedule`: the app on
a page load, the CLI, and every worker when it ends, so queued runs start with no browser open.

    run = submit(store, request)      # queued, then started if its device has a free slot
    cancel(store, run.id)             # the worker checkpoints and ends `cancelled`
    resume(store, run.id)             # from the last checkpoint to the planned end
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from functools import lru_cache, partial
from typing import Any

from sslviz.core.errors import UserError
from sslviz.core.processes import owns_process, pid_alive, read_proc
from sslviz.core.settings import HOME_ENV, max_runs_per_device
from sslviz.runner.progress import progress_facts
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest
from sslviz.store.rows import ACTIVE_STATUSES, ENDED_STATUSES, RESUMABLE_STATUSES

HEARTBEAT_TIMEOUT = 60.0  # seconds without a heartbeat before a running run counts as dead
START_GRACE = 30.0  # seconds a claimed run may wait for its worker's pid to be recorded
WORKER_MODULE = "sslviz.runner.worker"
LOG_NAME = "worker.log"

# Workers this process started: polled so finished ones don't linger as zombies in a long-lived
# parent (the Streamlit server), whose /proc entries would otherwise look alive.
_children: list[subprocess.Popen] = []


# --- device slots ---------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def device_key(spec: str) -> str:
    """The device a run occupies, for slot counting: "cpu", "cuda:0", "mps", ...

    Only ``auto`` needs torch to answer (lazily imported: reaping and listing stay cheap).
    """
    spec = (spec or "auto").strip().lower()
    if spec == "cuda":
        return "cuda:0"
    if spec != "auto":
        return spec
    from sslviz.core.devices import resolve_device

    device = resolve_device("auto")
    return device.type if device.type in ("cpu", "mps") else f"{device.type}:{device.index or 0}"


def slots(store: Store, *, limit: int | None = None) -> dict[str, dict[str, int]]:
    """Per device in use or waited for: ``{"cpu": {"running": 1, "queued": 2, "limit": 1}}``."""
    per_device = max_runs_per_device(limit)
    table: dict[str, dict[str, int]] = {}
    for run in store.runs.list(ACTIVE_STATUSES):
        row = table.setdefault(
            device_key(run.device), {"running": 0, "queued": 0, "limit": per_device}
        )
        row[run.status] += 1
    return table


# --- submit and schedule --------------------------------------------------------------------------
def submit(
    store: Store,
    request: JobRequest,
    *,
    claim: bool = False,
    reuse_active: bool = False,
    limit: int | None = None,
) -> Run:
    """Record a run of any kind (the request its own code built: ``training.train.job_request``,
    ``maps.embedding_job.job_request``, ``fewshot.finetune.job_request``).

    By default it is queued and started if its device has a free slot. With ``claim`` it is
    recorded ``running`` in this process (a foreground ``sslviz train``, the Python API): never
    queued, so no scheduler can claim it and start a second process; it takes its device slot
    even when the slot was full (the user asked for it here, now). With ``reuse_active`` an
    identical run already queued or running is returned instead of a second one.
    """
    if reuse_active:
        for run in store.runs.list(ACTIVE_STATUSES):
            if (run.kind, run.dataset_id, run.config) == (
                request.kind,
                request.dataset_id,
                request.config,
            ):
                return run
    run = store.runs.record(request, claim=claim)
    if not claim:
        schedule(store, limit=limit)
    return store.runs.get(run.id)


def schedule(store: Store, *, limit: int | None = None) -> list[int]:
    """Reap dead runs, then start queued runs (oldest first) while their device has a free slot.

    Safe to call from several processes at once: runs are claimed in one ``BEGIN IMMEDIATE``
    transaction, so no run starts twice and no device exceeds its limit. Returns the started ids.
    """
    reap(store)
    per_device = max_runs_per_device(limit)
    active = store.runs.list(ACTIVE_STATUSES)
    if not any(run.status == "queued" for run in active):
        return []  # the common case on a page load: no write lock needed
    # Resolve devices before the write lock is taken (``auto`` may import torch).
    keys = {run.id: device_key(run.device) for run in active}
    pick = partial(pick_runs, per_device=per_device, keys=keys)
    # heartbeat_at marks the claim time, so a scheduler that dies before spawning is reaped; the
    # worker it spawns becomes the owner by claiming the run itself (``execute.claim``).
    claimed = store.runs.claim(pick, pid=None, claimed_at=None, heartbeat_at=time.time())
    for run in claimed:
        _spawn(store, run.id)
    return [run.id for run in claimed]


def pick_runs(
    running: list[Run], queued: list[Run], *, per_device: int, keys: dict[int, str] | None = None
) -> list[int]:
    """The queued runs (oldest first) that fit in their device's free slots; pure.

    ``keys`` maps run ids to device keys already resolved (see :func:`device_key`).
    """
    keys = keys or {}
    busy = Counter(keys.get(r.id) or device_key(r.device) for r in running)
    chosen = []
    for run in queued:
        key = keys.get(run.id) or device_key(run.device)
        if busy[key] < per_device:
            busy[key] += 1
            chosen.append(run.id)
    return chosen


def _spawn(store: Store, run_id: int) -> None:
    """Start ``python -m sslviz.runner.worker RUN_ID`` in its own session, output to the run's log."""
    run_dir = store.workspace.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, HOME_ENV: str(store.workspace.root), "PYTHONUNBUFFERED": "1"}
    with open(run_dir / LOG_NAME, "ab") as log:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(run_id)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # signals to the app (Ctrl-C) don't reach the worker
                close_fds=True,
            )
        except OSError as error:
            store.runs.transition(
                run_id,
                "failed",
                allowed_from=("running",),
                ended_at=time.time(),
                error=f"could not start the worker process: {error}",
            )
            return
    _children.append(process)
    # So the reaper sees a live worker while it starts; the worker's own claim (pid and claim
    # time in one conditional update) makes it the owner. A process that claimed the run first
    # keeps it, and this worker then exits at once.
    store.runs.expect_worker(run_id, process.pid)


# --- reap -----------------------------------------------------------------------------------------
def reap(store: Store, *, stale_after: float = HEARTBEAT_TIMEOUT) -> list[int]:
    """Mark running runs whose worker died without a word as ``interrupted``; return their ids.

    Dead means: its pid is gone (or now belongs to another program), or its heartbeat is older
    than ``stale_after`` seconds (a hung worker is then killed, so it can't write any more). A run
    whose cancel was requested ends ``cancelled`` instead. A few /proc reads: cheap per page load.
    """
    _children[:] = [p for p in _children if p.poll() is None]
    now = time.time()
    reaped = []
    for run in store.runs.list(("running",)):
        reason = _why_dead(run, now, stale_after)
        if reason is None:
            continue
        status = "cancelled" if run.cancel_requested else "interrupted"
        if store.runs.transition(
            run.id, status, allowed_from=("running",), ended_at=now, error=reason
        ):
            reaped.append(run.id)
    return reaped


def _why_dead(run: Run, now: float, stale_after: float) -> str | None:
    last_sign = run.heartbeat_at or run.claimed_at or run.started_at or run.created_at
    if run.pid is None:
        if now - last_sign > START_GRACE:
            return f"its worker never started ({now - last_sign:.0f} s after it was claimed)"
        return None
    if not _owns_process(run):
        if run.claimed_at is None and pid_alive(run.pid) and now - last_sign <= START_GRACE:
            return None  # spawned a moment ago, not claimed yet: its /proc cmdline may be empty
        return (
            f"its worker (pid {run.pid}) ended without reporting (killed, crashed hard or the "
            f"machine restarted): `sslviz resume {run.id}` continues from the last checkpoint"
        )
    if now - last_sign > stale_after:
        if is_worker_process(run.pid, run.id):
            _signal_group(run.pid, signal.SIGKILL)
        return (
            f"no heartbeat from its worker (pid {run.pid}) for {now - last_sign:.0f} s; stopped it"
        )
    return None


def _owns_process(run: Run) -> bool:
    """Whether ``run.pid`` is still the process that runs ``run``: our worker for this run, or a
    foreground process (``sslviz train``, the Python API) that started before it claimed the run
    (its claim time, not the run's first start: a re-claimed run has a new owner)."""
    if run.pid is None or not pid_alive(run.pid):
        return False
    since = run.claimed_at or run.started_at
    return is_worker_process(run.pid, run.id) or owns_process(run.pid, since=since)


def is_worker_process(pid: int, run_id: int) -> bool:
    """True if ``pid`` runs ``python -m sslviz.runner.worker RUN_ID`` (guards against pid reuse)."""
    cmdline = read_proc(pid, "cmdline")
    if cmdline is None:
        return False
    args = cmdline.split("\0")
    return WORKER_MODULE in args and str(run_id) in args


def _signal_group(pid: int, sig: int) -> bool:
    """Signal the worker's process group (its session: it and anything it started)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# --- cancel, resume, delete ------------------------------------------------------------------------
def cancel(store: Store, run_id: int) -> Run:
    """Cancel a queued run at once, or ask a running one to checkpoint and end ``cancelled``.

    Returns promptly (use :func:`wait` to see the end). Ended runs raise a UserError.
    """
    reap(store)
    run = store.runs.get(run_id)
    if run.status == "queued" and store.runs.transition(
        run_id, "cancelled", allowed_from=("queued",), ended_at=time.time()
    ):
        return store.runs.get(run_id)
    run = store.runs.get(run_id)  # it may have been claimed in between
    if run.status == "running":
        store.runs.request_cancel(run_id)  # read by the training loop every step
        if run.pid is not None and is_worker_process(run.pid, run_id):
            _signal_group(run.pid, signal.SIGTERM)  # wakes it even outside the training loop
        return store.runs.get(run_id)
    raise UserError(f"run {run_id} is {run.status}: only queued or running runs can be cancelled")


def wait(store: Store, run_id: int, timeout: float, *, poll: float = 0.2) -> Run:
    """Poll until the run is no longer queued/running or ``timeout`` seconds pass; the last row."""
    deadline = time.monotonic() + timeout
    while True:
        run = store.runs.get(run_id)
        if run.status in ENDED_STATUSES or time.monotonic() >= deadline:
            return run
        time.sleep(poll)
        reap(store)


def resume(store: Store, run_id: int, *, limit: int | None = None) -> Run:
    """Queue an interrupted, cancelled or failed run again; its worker continues from the last
    checkpoint to the planned end. Returns the run (queued or running)."""
    reap(store)
    run = store.runs.get(run_id)
    if run.status not in RESUMABLE_STATUSES:
        raise UserError(_why_not_resumable(run))
    if not store.runs.transition(
        run_id,
        "queued",
        allowed_from=RESUMABLE_STATUSES,
        cancel_requested=0,
        error=None,
        traceback=None,
        ended_at=None,
        pid=None,
        claimed_at=None,
    ):
        raise UserError(_why_not_resumable(store.runs.get(run_id)))
    schedule(store, limit=limit)
    return store.runs.get(run_id)


def _why_not_resumable(run: Run) -> str:
    if run.status == "finished":
        return f"run {run.id} already finished: start a new run to train longer"
    if run.status == "running":
        return f"run {run.id} is running: nothing to resume (`sslviz cancel {run.id}` stops it)"
    return f"run {run.id} is already queued: it starts when its device has a free slot"


def delete_run(store: Store, run_id: int, *, timeout: float = 15.0) -> None:
    """Delete a run: cancel it if active (killing it after ``timeout`` s), its rows and its files.
    A run carried out in the foreground (``sslviz train``) by a live process is refused: that
    process is no worker of ours to stop, and it would go on writing into the deleted folder."""
    reap(store)
    run = store.runs.get(run_id)
    pid = run.pid
    foreground = pid is not None and not is_worker_process(pid, run_id)
    if run.status == "running" and foreground and _owns_process(run):
        raise UserError(
            f"run {run_id} is running in the foreground (pid {pid}): cancel it first "
            f"(`sslviz cancel {run_id}`, or Ctrl-C where it runs), then delete it"
        )
    if run.status in ACTIVE_STATUSES:
        cancel(store, run_id)
        run = wait(store, run_id, timeout)
        pid = pid or run.pid
        if pid is not None and is_worker_process(pid, run_id):
            if run.status == "running":
                _signal_group(pid, signal.SIGKILL)
            # Let it exit before its folder goes, so nothing is written back into it.
            deadline = time.monotonic() + 5
            while is_worker_process(pid, run_id) and time.monotonic() < deadline:
                time.sleep(0.1)
        store.runs.transition(run_id, "cancelled", allowed_from=ACTIVE_STATUSES)
    store.runs.delete(run_id)
    shutil.rmtree(store.workspace.run_dir(run_id), ignore_errors=True)
    schedule(store)  # its slot is free (a killed worker can't hand it over itself)


# --- what the CLI and the pages show ------------------------------------------------------------------
def describe(store: Store, run: Run, *, now: float | None = None) -> dict[str, Any]:
    """A run as plain JSON-able facts: ids, status, progress, timings, ETA (``runner.progress``),
    error, log path."""
    now = time.time() if now is None else now
    try:
        dataset: str | None = store.datasets.get(run.dataset_id).name
    except LookupError:
        dataset = None
    return {
        "run": run.id,
        "status": run.status,
        "task": run.kind,
        "dataset": dataset,
        "encoder": run.model_name,
        "device": run.device,
        "pid": run.pid if run.status == "running" else None,
        "epoch": run.epoch,
        "step": run.step,
        "total_steps": run.total_steps,
        "train_seconds": round(run.work_seconds, 2),
        **progress_facts(run, now),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "claimed_at": run.claimed_at,
        "ended_at": run.ended_at,
        "heartbeat_age": round(now - run.heartbeat_at, 2) if run.heartbeat_at else None,
        "cancel_requested": bool(run.cancel_requested),
        "error": run.error,
        "log": str(store.workspace.run_dir(run.id) / LOG_NAME),
        "config": run.config,
    }
