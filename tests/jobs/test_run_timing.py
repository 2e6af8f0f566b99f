"""Progress that adds up on the Runs page: "elapsed" is running time (not queue, not the time a
run stayed cancelled), and a queued run's ETA is when it will end, the runs ahead included.
Real rows in a real SQLite store; times set as a worker sets them."""

from __future__ import annotations

import time
from pathlib import Path

from sslviz.runner import jobs
from sslviz.runner.progress import running_seconds
from sslviz.runner.timing import end_estimates
from sslviz.store import Store
from sslviz.ui.run_panel import log_tail

COMMON = {"kind": "rotation", "model_name": "small-cnn", "device": "cpu"}
SETUP = {"image_size": 32, "batch_size": 64}


def test_elapsed_counts_running_time_only(store: Store, tiny_dataset) -> None:
    now = time.time()
    # started 4 minutes ago, cancelled for most of it, resumed: 90 s of training in all
    run = store.runs.create(dataset_id=tiny_dataset.id, config=SETUP, epochs=10, **COMMON)
    store.runs.update(run.id, status="running", started_at=now - 244, work_seconds=90.0)
    assert running_seconds(store.runs.get(run.id), now) == 90.0
    assert jobs.describe(store, store.runs.get(run.id), now=now)["running_seconds"] == 90.0
    # a queued run has not run at all; one decoding its cache counts since its claim
    queued = store.runs.create(dataset_id=tiny_dataset.id, config=SETUP, epochs=10, **COMMON)
    assert running_seconds(store.runs.get(queued.id), now) is None
    store.runs.update(queued.id, status="running", started_at=now - 5)
    assert running_seconds(store.runs.get(queued.id), now) == 5.0


def test_a_queued_run_ends_after_the_runs_ahead_of_it(store: Store, tiny_dataset) -> None:
    now = time.time()
    kw = {"dataset_id": tiny_dataset.id, **COMMON}
    # a finished run of the same setup: 12 s per epoch
    done = store.runs.create(config=SETUP, epochs=5, **kw)
    store.runs.update(done.id, status="finished", epoch=5, work_seconds=60.0)
    # running: 30 of 100 steps in 30 s -> 70 s left
    running = store.runs.create(config=SETUP, epochs=10, **kw)
    store.runs.update(
        running.id, status="running", started_at=now - 30, step=30, total_steps=100,
        work_seconds=30.0,
    )  # fmt: skip
    budgeted = store.runs.create(config={**SETUP, "time_budget": 45}, epochs=1000, **kw)
    paced = store.runs.create(config=SETUP, epochs=10, **kw)  # 10 epochs at 12 s
    unknown = store.runs.create(config={**SETUP, "image_size": 64}, epochs=3, **kw)
    after = store.runs.create(config={**SETUP, "time_budget": 10}, epochs=1000, **kw)

    ends = end_estimates(store.runs.list(), per_device=1)
    assert ends[running.id].ends_in == 70.0
    assert (ends[budgeted.id].starts_in, ends[budgeted.id].ends_in) == (70.0, 115.0)
    assert ends[budgeted.id].after == running.id
    assert (ends[paced.id].starts_in, ends[paced.id].ends_in) == (115.0, 235.0)
    # no run of its setup ever finished: when it ends is unknown, and so is all behind it
    assert (ends[unknown.id].starts_in, ends[unknown.id].ends_in) == (235.0, None)
    assert (ends[after.id].starts_in, ends[after.id].ends_in) == (None, None)
    # with two slots the budgeted run starts at once
    two = end_estimates(store.runs.list(), per_device=2)
    assert (two[budgeted.id].starts_in, two[budgeted.id].ends_in) == (0.0, 45.0)


def test_log_tail_keeps_lines_through_progress_bar_redraws(tmp_path: Path) -> None:
    lines = [f"line {i}" for i in range(50)]
    bar = "".join(f"\r epoch 1: {p}%" for p in range(0, 101, 5))  # tqdm redraws one line
    log = tmp_path / "worker.log"
    log.write_text("\n".join(lines[:45]) + "\n" + bar + "\n" + "\n".join(lines[45:]) + "\n")
    tail = log_tail(log, lines=30).split("\n")
    assert len(tail) == 30
    assert tail[-1] == "line 49" and tail[-6] == " epoch 1: 100%" and tail[0] == "line 21"
