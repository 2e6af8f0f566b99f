"""A time-budgeted run stores what it planned and reports it the same everywhere: while it runs,
the epochs the budget allows at the measured pace (not the 1,000-epoch ceiling it is configured
with); when it ends, the epochs it did, in ``train --json``, ``status --json`` and on the Runs
page alike (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from waiting import wait_for

from sslviz.store import Store
from sslviz.training.callbacks import StoreLogger, TrainState
from sslviz.ui.runs_view import epoch_text

BUDGET = 8.0  # seconds of training


def test_the_plan_is_what_the_rest_of_the_budget_allows_at_the_recent_pace(store, tiny) -> None:
    """The first steps are slow (allocation, warm-up): a plan from the average pace since the
    start would undershoot; the recent pace predicts where the run ends."""
    run = store.runs.create(
        dataset_id=tiny.id,
        kind="rotation",
        model_name="small-cnn",
        config={"dataset": "tiny", "task": "rotation", "time_budget": 60.0, "epochs": 1000},
        device="cpu",
        epochs=1000,
    )
    state = TrainState(run.id, "accuracy", 10, 10_000, 1000, time_budget=60.0)
    logger = StoreLogger(store, run.id)
    logger.on_train_start(state)
    assert store.runs.get(run.id).total_steps is None  # no pace yet: nothing planned
    clock = [(1.0, 1)]  # 1 s for the first step, then 10 steps a second
    while clock[-1][0] < 60.0:
        clock.append((round(clock[-1][0] + 0.1, 1), clock[-1][1] + 1))
    final = clock[-1][1]  # 591 steps: 59 epochs
    estimates = []
    for seconds, step in clock[::20]:
        state.step, state.train_seconds = step, seconds
        logger.flush(state)
        row = store.runs.get(run.id)
        assert row.total_steps <= 10_000 and row.epochs <= 1000
        estimates.append((seconds, row.epochs, row.total_steps))
    late = [(e, s) for seconds, e, s in estimates if seconds > 10]
    assert all(abs(s - final) <= 10 and abs(e - final // 10) <= 1 for e, s in late), estimates
    state.step, state.train_seconds = final, 60.0
    logger.on_train_end(state, "finished")
    row = store.runs.get(run.id)
    assert (row.epochs, row.total_steps, row.epoch) == (final // 10, final, final // 10)


def _status(home, run_id: int) -> dict:
    env = {**os.environ, "SSLVIZ_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-m", "sslviz", "status", str(run_id), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_budgeted_run_ends_at_its_estimate_and_says_so_everywhere(home, tiny) -> None:
    env = {**os.environ, "SSLVIZ_HOME": str(home), "OMP_NUM_THREADS": "1"}
    args = ["train", "--dataset", "tiny", "--task", "rotation", "--image-size", "16"]
    trainer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sslviz",
            *args,
            "--batch-size",
            "4",
            "--time-budget",
            str(BUDGET),
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store.open(home)
    seen = []  # (train seconds, epochs planned) while it runs

    def ended_watching_its_plan() -> bool:
        runs = store.runs.list()
        if runs and runs[0].status == "running" and runs[0].step > 0:
            seen.append((runs[0].work_seconds, runs[0].epochs, runs[0].config["epochs"]))
        return trainer.poll() is not None

    try:
        wait_for(ended_watching_its_plan, 600, 0.2, "the run never ended")
        out, err = trainer.communicate(timeout=60)
        assert trainer.returncode == 0, err
        result = json.loads(out)
        run = store.runs.get(result["run"])
    finally:
        if trainer.poll() is None:
            trainer.kill()
        store.close()
    assert seen, "no progress was stored while it ran"
    assert all(epochs < limit for _, epochs, limit in seen)  # never the ceiling
    status = _status(home, run.id)
    assert run.status == "finished" and run.total_steps == run.step
    for facts in (result, status):
        assert facts["epoch"] == facts["epochs"] == run.epoch > 0
        assert (facts["epochs_limit"], facts["time_budget"], facts["progress"]) == (
            1000,
            BUDGET,
            1.0,
        )
    assert epoch_text(run).startswith(f"{run.epoch} (")  # the Runs page: what it did
    # the estimate from the second half of the budget was where it ended (the machine is shared:
    # within a quarter)
    late = [epochs for seconds, epochs, _ in seen if seconds > BUDGET / 2]
    assert late and all(abs(e - run.epoch) <= max(1, 0.25 * run.epoch) for e in late), (
        late,
        run.epoch,
    )
