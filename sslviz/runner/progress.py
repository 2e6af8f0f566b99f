"""How far a run is, in the terms it was planned in: epochs, or a time budget. Torch-free; the
CLI (``sslviz runs``/``status``) and the Runs page read the same numbers from here.

A run given only ``--time-budget`` is recorded with a ceiling of epochs (1000) that the budget ends
long before; that ceiling is not a plan worth reporting. Its planned epochs are what the budget
allows at the pace so far (and, once it finished, what it did).

    epochs_planned(run)     # 7, or None before the pace is known
    fraction_done(run)      # 0-1: steps done, or budget used if that ends the run sooner
"""

from __future__ import annotations

import math

from sslviz.store import Run


def time_budget(run: Run) -> float | None:
    """Seconds of training that end the run (``time_budget`` in its config), or None."""
    budget = run.config.get("time_budget")
    return float(budget) if budget else None


def epochs_planned(run: Run) -> int | None:
    """The epochs the run will have done when it ends: its planned epochs, or under a time budget
    the count the budget allows at the pace so far (never more than the planned epochs); a
    finished budgeted run reports what it did. None while the pace is unknown."""
    budget = time_budget(run)
    if budget is None:
        return run.epochs
    if run.status == "finished":
        return run.epoch
    if run.total_steps and run.step > 0 and run.train_seconds > 0:
        steps_per_epoch = run.total_steps / max(run.epochs, 1)
        epochs_per_second = run.step / steps_per_epoch / run.train_seconds
        return min(run.epochs, max(run.epoch, math.ceil(epochs_per_second * budget)))
    return None


def fraction_done(run: Run) -> float:
    """Fraction done, 0-1: planned steps, or the time budget if that ends the run sooner."""
    done = run.progress
    budget = time_budget(run)
    if budget and run.status != "finished":
        done = max(done, min(1.0, run.train_seconds / budget))
    return done
