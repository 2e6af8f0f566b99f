"""Progress, elapsed time and ETA are computed in one place (``sslviz.runner.progress``): the
CLI's JSON (``jobs.describe``) and the app's Runs table show the same numbers for every run."""

from __future__ import annotations

import time

from sslviz.runner import jobs
from sslviz.runner.progress import elapsed_seconds, eta_seconds, fraction_done
from sslviz.store import Store
from sslviz.ui import runs_view


def test_cli_and_app_read_the_same_progress(store: Store, tiny_dataset) -> None:
    now = time.time()
    common = {
        "dataset_id": tiny_dataset.id,
        "kind": "rotation",
        "model_name": "small-cnn",
        "device": "cpu",
        "epochs": 1000,
    }
    budgeted = store.runs.create(**common, config={"time_budget": 60.0})
    store.runs.update(
        budgeted.id,
        status="running",
        started_at=now - 40,
        step=10,
        total_steps=100_000,
        work_seconds=30.0,
        heartbeat_at=now,
    )
    reaped = store.runs.create(**common, config={})
    store.runs.update(
        reaped.id,
        status="interrupted",
        started_at=now - 100,
        heartbeat_at=now - 90,
        step=5,
        total_steps=10,
    )
    for run in (store.runs.get(budgeted.id), store.runs.get(reaped.id)):
        facts = jobs.describe(store, run, now=now)
        assert (
            facts["progress"] == round(fraction_done(run), 4) == round(runs_view.progress(run), 4)
        )
        assert facts["running_seconds"] == round(runs_view.elapsed(run, now), 2)
        assert facts["eta_seconds"] == eta_seconds(run)
    # a budgeted run is half way through its budget, whatever its step ceiling says
    assert jobs.describe(store, store.runs.get(budgeted.id), now=now)["progress"] == 0.5
    # a reaped run's time stops at its last sign of life, in the CLI as on the page
    assert elapsed_seconds(store.runs.get(reaped.id), now) == 10.0
