"""The job runner without training: reaping dead workers, race-free claims, cancel/resume rules,
and a worker that crashes before training (its traceback is stored). Real processes, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from functools import partial

import pytest

from sslviz.core import settings
from sslviz.core.errors import UserError
from sslviz.runner import jobs
from sslviz.store import Store


def _run_row(store: Store, status: str = "queued", device: str = "cpu", **fields):
    if not store.datasets.list():
        store.datasets.finish(store.datasets.create("rows-only", "/nowhere").id)
    dataset = store.datasets.list()[0]
    run = store.runs.create(
        dataset_id=dataset.id,
        kind="rotation",
        model_name="small-cnn",
        config={"dataset": dataset.name, "task": "rotation", "device": device},
        device=device,
        epochs=3,
        status=status,
    )
    if fields:
        store.runs.update(run.id, **fields)
    return store.runs.get(run.id)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # collected: the pid no longer exists
    return process.pid


def test_reap_marks_a_run_whose_worker_is_gone_interrupted(store):
    now = time.time()
    run = _run_row(store, "running", pid=_dead_pid(), started_at=now, heartbeat_at=now)
    assert jobs.reap(store) == [run.id]
    reaped = store.runs.get(run.id)
    assert reaped.status == "interrupted"
    assert "ended without reporting" in reaped.error and "resume" in reaped.error
    assert jobs.reap(store) == []  # idempotent


def test_reap_sees_a_reused_pid_as_dead(store):
    # A run claimed earlier, whose pid now belongs to a program started after the claim.
    claimed = time.time() - 30
    run = _run_row(
        store, "running", started_at=claimed, claimed_at=claimed, heartbeat_at=time.time()
    )
    other = subprocess.Popen(["sleep", "30"])
    try:
        store.runs.update(run.id, pid=other.pid)
        assert jobs.reap(store) == [run.id]
        assert other.poll() is None  # never signal a process that is not our worker
    finally:
        other.kill()
        other.wait()


def test_reap_keeps_a_live_foreground_run_and_stops_a_silent_one(store):
    # This test process plays a foreground `sslviz train`: it started before the run did.
    run = _run_row(
        store, "running", pid=os.getpid(), started_at=time.time(), heartbeat_at=time.time()
    )
    assert jobs.reap(store) == []
    store.runs.update(run.id, heartbeat_at=time.time() - 120)
    assert jobs.reap(store, stale_after=60) == [run.id]
    assert "no heartbeat" in store.runs.get(run.id).error


def test_reap_gives_a_claimed_run_a_grace_period_to_start(store):
    run = _run_row(store, "running", heartbeat_at=time.time())  # claimed, no pid yet
    assert jobs.reap(store) == []
    store.runs.update(run.id, heartbeat_at=time.time() - jobs.START_GRACE - 1)
    assert jobs.reap(store) == [run.id]
    assert "never started" in store.runs.get(run.id).error


def test_reap_ends_a_run_whose_cancel_was_requested_cancelled(store):
    run = _run_row(store, "running", pid=_dead_pid(), started_at=time.time(), cancel_requested=1)
    jobs.reap(store)
    assert store.runs.get(run.id).status == "cancelled"


def test_pick_runs_fills_free_slots_oldest_first_per_device(store):
    cpu_running = _run_row(store, "running", "cpu")
    queued = [_run_row(store, "queued", d) for d in ("cpu", "cuda:0", "cuda:0", "cuda:1", "cpu")]
    chosen = jobs.pick_runs([cpu_running], queued, per_device=1)
    assert chosen == [queued[1].id, queued[3].id]
    assert jobs.pick_runs([cpu_running], queued, per_device=2) == [
        queued[0].id,
        queued[1].id,
        queued[2].id,
        queued[3].id,
    ]


CLAIMER = textwrap.dedent(
    """
    import json, sys
    from functools import partial
    from sslviz.runner import jobs
    from sslviz.store import Store
    store = Store.open(sys.argv[1])
    sys.stdin.readline()  # start together
    claimed = []
    for _ in range(20):
        runs = store.runs.claim(partial(jobs.pick_runs, per_device=2))
        claimed += [r.id for r in runs]
    print(json.dumps(claimed))
    """
)


def test_concurrent_schedulers_never_claim_a_run_twice_nor_exceed_the_limit(store, home):
    queued = [_run_row(store, "queued", "cpu") for _ in range(6)]
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for claimer in claimers:
        claimer.stdin.write("go\n")
        claimer.stdin.flush()
    claimed = [json.loads(c.communicate(timeout=60)[0]) for c in claimers]
    everything = [run_id for ids in claimed for run_id in ids]
    assert sorted(everything) == [queued[0].id, queued[1].id]  # each once, limit 2
    assert [r.id for r in store.runs.list(("running",))] == [queued[0].id, queued[1].id]
    # The same policy in-process: nothing more fits.
    assert store.runs.claim(partial(jobs.pick_runs, per_device=2)) == []


def test_cancel_a_queued_run_at_once_and_refuse_what_cannot_be(store):
    run = _run_row(store, "queued")
    assert jobs.cancel(store, run.id).status == "cancelled"
    with pytest.raises(UserError, match="only queued or running"):
        jobs.cancel(store, run.id)
    finished = _run_row(store, "finished")
    with pytest.raises(UserError, match="already finished"):
        jobs.resume(store, finished.id)
    with pytest.raises(UserError, match="no run with id 999"):
        jobs.cancel(store, 999)


def test_max_runs_per_device_reads_the_environment(monkeypatch):
    assert settings.max_runs_per_device() == 1
    monkeypatch.setenv(settings.MAX_RUNS_ENV, "3")
    assert settings.max_runs_per_device() == 3
    assert settings.max_runs_per_device(2) == 2
    monkeypatch.setenv(settings.MAX_RUNS_ENV, "many")
    with pytest.raises(UserError, match="whole number"):
        settings.max_runs_per_device()


def test_a_worker_that_cannot_even_import_torch_stores_its_traceback(store, home, tmp_path):
    # A broken install: a `torch` package that fails to import shadows the real one.
    broken = tmp_path / "broken_site" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('simulated broken torch install')\n")
    run = _run_row(store, "running")  # as claimed by schedule
    env = {**os.environ, "PYTHONPATH": str(broken.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "sslviz.runner.worker", str(run.id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    failed = store.runs.get(run.id)
    assert failed.status == "failed"
    assert failed.error == "ImportError: simulated broken torch install"
    assert "Traceback" in failed.traceback and "sslviz/runner/worker.py" in failed.traceback
    assert failed.ended_at is not None


def test_delete_run_removes_rows_and_files(store):
    run = _run_row(store, "queued")
    run_dir = store.workspace.run_dir(run.id)
    run_dir.mkdir(parents=True)
    (run_dir / "worker.log").write_text("log\n")
    jobs.delete_run(store, run.id)
    assert not run_dir.exists()
    assert store.runs.list() == []
