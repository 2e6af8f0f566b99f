"""How far a run is, in the terms it was planned in: epochs, or a time budget; how long it has
taken and how long it will still take. The one place these are computed: ``jobs.describe`` (so
``sslviz runs``/``status``), the Runs, Train and Explorer pages all read them from here, so every
number on a page matches the CLI's. Torch-free.

A run given only ``--time-budget`` is configured with a ceiling of epochs (1000) that the budget
ends long before; that ceiling is not a plan worth reporting. The trainer stores the plan in the
run's row as it goes (``training.callbacks``): ``epochs`` and ``total_steps`` are what the budget
allows at the measured pace, and once the run finished what it did; the ceiling stays in the
run's config (``epochs_limit``).

    epochs_planned(run)     # 7, or None before the pace is known
    fraction_done(run)      # 0-1: steps done, or budget used if that ends the run sooner
    eta_seconds(run)        # training seconds left, or None while unknown
    stage_text(run)         # "writing results: upright check 40%", or None
    progress_facts(run)     # all of them, as the CLI's JSON keys
"""

from __future__ import annotations

import time
from typing import Any

from sslviz.store import Run
from sslviz.store.rows import ACTIVE_STATUSES


def time_budget(run: Run) -> float | None:
    """Seconds of training that end the run (``time_budget`` in its config), or None."""
    budget = run.config.get("time_budget")
    return float(budget) if budget else None


def epochs_planned(run: Run) -> int | None:
    """The epochs the run will have done when it ends, as its trainer stored them: its planned
    epochs, or under a time budget the count the budget allows at the pace measured so far; a
    finished budgeted run, what it did. None while a budget's pace is unknown (no step yet)."""
    if time_budget(run) is None:
        return run.epochs
    if run.status == "finished":
        return run.epoch
    return run.epochs if run.step > 0 and run.total_steps else None


def epochs_limit(run: Run) -> int:
    """The epochs the run was configured with: under a time budget only a ceiling."""
    return int(run.config.get("epochs") or run.epochs)


def fraction_done(run: Run) -> float:
    """Fraction done, 0-1: planned steps, or the time budget if that ends the run sooner."""
    done = run.progress
    budget = time_budget(run)
    if budget and run.status != "finished":
        done = max(done, min(1.0, run.work_seconds / budget))
    return done


def elapsed_seconds(run: Run, now: float | None = None) -> float | None:
    """Wall-clock seconds since the run started (to its end, if it ended); None if never started.
    A run that ended without an end time (reaped) counts to its last sign of life."""
    if run.started_at is None:
        return None
    if run.ended_at is not None:
        end = run.ended_at
    elif run.status in ACTIVE_STATUSES:
        end = time.time() if now is None else now
    else:
        end = run.heartbeat_at or run.started_at
    return max(0.0, end - run.started_at)


def running_seconds(run: Run, now: float | None = None) -> float | None:
    """Seconds the run has spent running (the Runs page's "elapsed"): its training clock once it
    has trained, which stops while it waits in the queue or stays cancelled until a resume;
    before that (decoding the cache), or for a job without training steps, the wall clock since
    its claim. None for a run that never started."""
    if run.work_seconds > 0:
        return run.work_seconds
    if run.status == "queued":
        return None
    return elapsed_seconds(run, now)


def eta_seconds(run: Run) -> float | None:
    """Training seconds left, from the pace so far (and the time budget, if any); 0 once
    finished, None if unknown or the run ended otherwise."""
    if run.status not in ACTIVE_STATUSES:
        return None if run.status != "finished" else 0.0
    estimates = []
    done = run.progress
    if 0 < done < 1 and run.work_seconds > 0:
        estimates.append(run.work_seconds * (1 - done) / done)
    budget = time_budget(run)
    if budget:
        estimates.append(max(0.0, budget - run.work_seconds))
    return round(min(estimates), 1) if estimates else None


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def stage_text(run: Run) -> str | None:
    """What the run does (or did when it ended) outside its steps, with how far it is:
    ``"writing results: upright check 40%"``; None when it is in no such stage."""
    if not run.stage:
        return None
    if run.stage_progress is None:
        return run.stage
    return f"{run.stage} {run.stage_progress:.0%}"


def progress_facts(run: Run, now: float | None = None) -> dict[str, Any]:
    """The progress of a run as the CLI's JSON reports it: ``epochs`` (planned; under a time
    budget what it allows at the pace so far, or None), ``epochs_limit`` (as recorded),
    ``time_budget``, ``progress`` (0-1, budget-aware), ``elapsed_seconds``, ``eta_seconds``,
    ``stage`` (``stage_text``)."""
    elapsed = elapsed_seconds(run, now)
    return {
        "epochs": epochs_planned(run),
        "epochs_limit": epochs_limit(run),
        "time_budget": time_budget(run),
        "progress": round(fraction_done(run), 4),
        "elapsed_seconds": None if elapsed is None else round(elapsed, 2),
        "running_seconds": _rounded(running_seconds(run, now)),
        "eta_seconds": eta_seconds(run),
        "stage": stage_text(run),
    }
