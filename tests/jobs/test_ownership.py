"""One owner per run: the claim, the owner's pid and the claim time are one conditional update.

Real worker processes on a tiny dataset: a second ``python -m sslviz.runner.worker ID`` for a
running run exits at once without touching it; of two workers started together for one run,
exactly one carries it out; a process that re-claims an interrupted run is judged by when it
claimed it, not by the run's first start, so the reaper leaves it alone.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from waiting import wait_for

from sslviz.runner import jobs
from sslviz.store import Run, Store
from sslviz.training.config import TrainConfig
from sslviz.training.train import job_request

START_TIMEOUT = 120  # a worker imports torch on a busy 2-core machine
pytestmark = pytest.mark.timeout(300)


def _config(**changes) -> TrainConfig:
    base = TrainConfig(
        dataset="tiny", task="rotation", image_size=16, epochs=2, batch_size=8, device="cpu"
    )
    return base.replace(**changes)


def _worker(run_id: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sslviz.runner.worker", str(run_id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _ended(store: Store, run_id: int) -> Run | None:
    run = store.runs.get(run_id)
    return run if run.status not in ("queued", "running") else None


def test_a_second_worker_for_a_running_run_exits_at_once_and_leaves_it_alone(store, tiny_dataset):
    # long enough to still be training when the second worker has started and gone
    run = jobs.submit(store, job_request(store, _config(epochs=1000, time_budget=10)))
    owner = wait_for(
        lambda: (r := store.runs.get(run.id)).step > 0 and r.claimed_at and r, START_TIMEOUT
    )
    started = time.monotonic()
    second = _worker(run.id)
    try:
        output, _ = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
    assert time.monotonic() - started < 30
    assert second.returncode == 3, output
    assert "already being carried out by process" in output
    now = store.runs.get(run.id)
    assert (now.status, now.pid, now.claimed_at) == ("running", owner.pid, owner.claimed_at)
    done = wait_for(lambda: _ended(store, run.id), START_TIMEOUT)
    assert done.status == "finished", done.error


def test_of_two_workers_started_together_exactly_one_carries_the_run_out(store, tiny_dataset):
    # recorded as a scheduler claims a run (running, no owner yet), then two workers race
    run = store.runs.record(job_request(store, _config()))
    assert store.runs.transition(run.id, "running", allowed_from=("queued",))
    workers = [_worker(run.id), _worker(run.id)]
    outputs = [w.communicate(timeout=START_TIMEOUT)[0] for w in workers]
    codes = sorted(w.returncode for w in workers)
    assert codes == [0, 3], outputs
    winner = workers[[w.returncode for w in workers].index(0)]
    done = store.runs.get(run.id)
    assert done.status == "finished", done.error
    assert done.claimed_at is not None and f"pid {winner.pid}" in outputs[workers.index(winner)]


def test_a_re_claimed_interrupted_run_is_judged_by_its_new_claim(store, tiny_dataset):
    # interrupted an hour ago; now a foreground process (the Python API) carries it out again
    run = store.runs.record(job_request(store, _config(epochs=6)))
    hour_ago = time.time() - 3600
    store.runs.update(
        run.id, status="interrupted", started_at=hour_ago, ended_at=hour_ago, error="killed"
    )
    code = (
        "import sys; from sslviz.store import Store; from sslviz.runner.execute import execute; "
        "print(execute(Store.open(), int(sys.argv[1])).status)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(run.id)], stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: store.runs.get(run.id).pid == process.pid, START_TIMEOUT, poll=0.02)
        claimed = store.runs.get(run.id)
        assert claimed.status == "running" and claimed.claimed_at > hour_ago + 3000

        def ended_unreaped() -> bool:  # the reaper, as every page load runs it, meanwhile
            assert jobs.reap(store) == [], store.runs.get(run.id).error
            return process.poll() is not None

        wait_for(ended_unreaped, 600, 0.2, "the foreground run never ended")
        output, _ = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
    assert output.split() == ["finished"]
    done = store.runs.get(run.id)
    assert done.status == "finished" and done.started_at == hour_ago and done.epoch == 6
