"""``sslviz runs | status | cancel | resume | delete-run``: background runs from the command line.

Each command first lets the job runner catch up (reap dead workers, start queued runs whose device
is free), so what it prints is the truth, not a stale row. Runs of every kind are listed (pretext
tasks, fine-tunes, embedding jobs: ``sslviz.store.kinds``). A time-budgeted run reports the epochs its
budget allows at the pace so far (``epochs``; null until known), its ``time_budget`` and the
``epochs_limit`` it was recorded with.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sslviz.cli.output import emit_json, say
from sslviz.runner import jobs
from sslviz.store import Run, Store
from sslviz.store.kinds import run_kind
from sslviz.training.feature_quality import advice, feature_quality

CANCEL_WAIT = 15.0  # seconds `sslviz cancel` waits for the worker to checkpoint and stop


def register(subparsers: argparse._SubParsersAction) -> None:
    runs = subparsers.add_parser("runs", help="list training runs, newest last")
    runs.add_argument("--json", action="store_true", help='print {"runs": [...]} on stdout')
    runs.set_defaults(handler=list_runs)

    status = subparsers.add_parser("status", help="progress, timings and errors of one run")
    status.add_argument("run", type=int, metavar="RUN", help="run id (see `sslviz runs`)")
    status.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    status.set_defaults(handler=show_status)

    cancel = subparsers.add_parser(
        "cancel", help="stop a queued or running run (it checkpoints; `resume` continues it)"
    )
    cancel.add_argument("run", type=int, metavar="RUN", help="run id (see `sslviz runs`)")
    cancel.add_argument(
        "--wait",
        type=float,
        default=CANCEL_WAIT,
        metavar="SECONDS",
        help=f"how long to wait for the run to stop (default {CANCEL_WAIT:.0f}; 0 returns at once)",
    )
    cancel.add_argument("--json", action="store_true", help="print the run's status as JSON")
    cancel.set_defaults(handler=cancel_run)

    resume = subparsers.add_parser(
        "resume",
        help="continue an interrupted, cancelled or failed run from its last checkpoint",
    )
    resume.add_argument("run", type=int, metavar="RUN", help="run id (see `sslviz runs`)")
    resume.add_argument("--json", action="store_true", help="print the run's status as JSON")
    resume.set_defaults(handler=resume_run)

    delete = subparsers.add_parser(
        "delete-run", help="delete a run and its files (cancels it first if it is active)"
    )
    delete.add_argument("run", type=int, metavar="RUN", help="run id (see `sslviz runs`)")
    delete.add_argument("--json", action="store_true", help='print {"deleted": RUN}')
    delete.set_defaults(handler=delete_run)


# --- handlers ---------------------------------------------------------------------------------
def list_runs(args: argparse.Namespace) -> int:
    store = _open()
    facts = [describe(store, run) for run in store.runs.list()]
    if args.json:
        emit_json({"runs": facts})
        return 0
    if not facts:
        print("no runs yet: start one with `sslviz train --dataset NAME --task rotation`")
        return 0
    header = (
        "RUN",
        "STATUS",
        "TASK",
        "DATASET",
        "ENCODER",
        "DEVICE",
        "PROGRESS",
        "EPOCH",
        "ELAPSED",
        "ETA",
    )
    rows = [header] + [
        (
            str(f["run"]),
            f["status"],
            f["kind"] + (f" of #{f['parent']}" if f["parent"] is not None else ""),
            f["dataset"] or "?",
            f["encoder"],
            f["device"],
            f"{100 * f['progress']:.0f}%",
            _epoch_cell(f),
            _duration(f["elapsed_seconds"]),
            _duration(f["eta_seconds"]),
        )
        for f in facts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def show_status(args: argparse.Namespace) -> int:
    store = _open()
    run = store.runs.get(args.run)
    if args.json:
        facts = describe(store, run)
        facts["traceback"] = run.traceback
        # per measured checkpoint: is the run still learning? (sslviz.training.feature_quality)
        facts["feature_quality"] = feature_quality(store, run.id)
        facts["feature_advice"] = advice(facts["feature_quality"])
        emit_json(facts)
    else:
        _print_facts(store, run)
    return 0


def cancel_run(args: argparse.Namespace) -> int:
    store = _open()
    run = jobs.cancel(store, args.run)
    if run.status == "running":
        say(f"run {run.id}: cancel requested, waiting up to {args.wait:.0f} s for it to stop")
        run = jobs.wait(store, run.id, max(0.0, args.wait))
    if args.json:
        emit_json(describe(store, run))
    elif run.status == "running":
        print(f"run {run.id}: still running, cancel requested (see `sslviz status {run.id}`)")
    else:
        print(f"run {run.id}: {run.status}")
    return 0


def resume_run(args: argparse.Namespace) -> int:
    store = _open()
    run = jobs.resume(store, args.run)
    if args.json:
        emit_json(describe(store, run))
    elif run.status == "queued":
        print(f"run {run.id}: queued (starts when its device has a free slot)")
    else:
        print(
            f"run {run.id}: {run.status} (pid {run.pid}); follow it with `sslviz status {run.id}`"
        )
    return 0


def delete_run(args: argparse.Namespace) -> int:
    store = _open()
    jobs.delete_run(store, args.run)
    if args.json:
        emit_json({"deleted": args.run})
    else:
        print(f"run {args.run}: deleted with its files")
    return 0


# --- helpers ----------------------------------------------------------------------------------
def _open() -> Store:
    store = Store.open()
    jobs.schedule(store)  # reaps first; then starts queued runs a dead worker was holding back
    return store


def describe(store: Store, run: Run) -> dict[str, Any]:
    """``jobs.describe`` (progress in the terms the run was planned in, ``runner.progress``) plus
    the run's ``kind`` (its label) and ``parent``."""
    return {**jobs.describe(store, run), "kind": run_kind(run.kind).label, "parent": run.parent_id}


def _epoch_cell(f: dict[str, Any]) -> str:
    """``3/10``; under a time budget ``3/~7`` (the epochs it allows so far), or ``3`` before the pace
    is known; ``-`` for a run that has no epochs (an embedding job)."""
    if f["task"] == "embedding":
        return "-"
    if f["time_budget"] is None:
        return f"{f['epoch']}/{f['epochs']}"
    if f["epochs"] is None:
        return str(f["epoch"])
    return f"{f['epoch']}/{'' if f['status'] == 'finished' else '~'}{f['epochs']}"


def _print_facts(store: Store, run: Run) -> None:
    f: dict[str, Any] = describe(store, run)
    kind = run_kind(run.kind)
    parent = f" of run {run.parent_id}" if run.parent_id is not None else ""
    print(f"run: {run.id}")
    print(f"status: {run.status}")
    print(
        f"task: {kind.label}{parent} on dataset {f['dataset']!r} "
        f"({run.model_name}, device {run.device})"
    )
    steps = f"step {run.step}/{run.total_steps}" if run.total_steps else f"step {run.step}"
    budget = f", {_duration(f['time_budget'])} budget" if f["time_budget"] else ""
    epochs = f"epoch {_epoch_cell(f)}{budget}, " if kind.has_encoder else ""
    print(f"progress: {100 * f['progress']:.0f}% ({epochs}{steps})")
    if f["stage"]:
        print(f"stage: {f['stage']}")
    if f["elapsed_seconds"] is not None:
        print(
            f"elapsed: {_duration(f['elapsed_seconds'])} (training {_duration(run.work_seconds)})"
        )
    if f["eta_seconds"] is not None and run.status in ("queued", "running"):
        print(f"eta: {_duration(f['eta_seconds'])}")
    if f["pid"] is not None:
        print(f"pid: {f['pid']}")
    if run.cancel_requested and run.status == "running":
        print("cancel: requested")
    if run.error:
        print(f"error: {run.error}")
    if run.traceback:
        print(
            f"traceback: {len(run.traceback.splitlines())} lines (`sslviz status {run.id} --json`)"
        )
    quality = feature_quality(store, run.id)
    if quality:
        last = quality[-1]
        said = advice(quality)
        print(
            f"feature quality: effective rank {last['effective_rank']:.1f} at step {last['step']}"
            + (f" ({said})" if said else "")
        )
    if run.status == "finished" and kind.pretext:
        print(f"held-out metrics: `sslviz eval {run.id}`")
    print(f"log: {f['log']}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return (
        time.strftime("%Hh%M", time.gmtime(seconds)) if seconds < 86400 else f"{seconds // 3600}h"
    )
