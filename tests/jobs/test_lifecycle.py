"""Background runs end to end: real worker processes training a tiny dataset on the CPU.

submit -> finished; cancel mid-run -> cancelled with a checkpoint; SIGKILL -> interrupted ->
resume -> finished at the planned epoch; a crashing run stores its traceback; the queue never
runs more than its limit at once.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from waiting import wait_for

from sslviz.core import settings
from sslviz.core.errors import UserError
from sslviz.runner import jobs
from sslviz.store import Run, Store
from sslviz.training.config import TrainConfig
from sslviz.training.train import job_request

SIZE = 16  # tiny images: a step takes milliseconds, so a run's length is set by its epochs
START_TIMEOUT = 120  # a worker imports torch on a busy 2-core machine
pytestmark = pytest.mark.timeout(300)


def _config(**changes) -> TrainConfig:
    base = TrainConfig(
        dataset="tiny",
        task="rotation",
        image_size=SIZE,
        epochs=2,
        batch_size=8,
        device="cpu",
        warmup_epochs=0.5,
    )
    return base.replace(**changes)


def _ended(store: Store, run_id: int) -> Run | None:
    run = store.runs.get(run_id)
    return run if run.status not in ("queued", "running") else None


def test_an_invalid_config_is_refused_before_anything_is_recorded(store, tiny_dataset):
    with pytest.raises(UserError, match="no dataset named 'nope'"):
        jobs.submit(store, job_request(store, _config(dataset="nope")))
    with pytest.raises(UserError, match="batch size"):
        jobs.submit(store, job_request(store, _config(batch_size=1)))
    assert store.runs.list() == []


def test_submit_trains_in_a_separate_process_to_finished(store, tiny_dataset):
    run = jobs.submit(store, job_request(store, _config(epochs=2)))
    assert run.status in ("queued", "running")
    done = wait_for(lambda: _ended(store, run.id), START_TIMEOUT)
    assert done.status == "finished", done.error
    assert (done.epoch, done.epochs) == (2, 2) and done.progress == 1.0
    assert done.started_at and done.ended_at and done.pid is None  # no worker any more
    keys = {m.key for m in store.runs.metrics(run.id)}
    assert {"loss", "lr", "accuracy", "eval/accuracy"} <= keys
    # the worker says so in its log after it recorded the end: wait for that line
    log_file = store.workspace.run_dir(run.id) / jobs.LOG_NAME

    def ended_log() -> str:
        text = log_file.read_text()
        return text if "ended finished" in text else ""

    log = wait_for(ended_log, 60)
    assert f"worker: run {run.id}, pid " in log
    assert f"pid {os.getpid()}," not in log  # trained in another process, not this one
    assert "torch threads 1," in log  # SSLVIZ_WORKER_THREADS from the fixture reached the worker
    assert f"nice {min(19, os.nice(0) + 10)}" in log  # below the app's priority


def test_cancel_mid_run_checkpoints_and_ends_cancelled_within_seconds(store, tiny_dataset):
    run = jobs.submit(store, job_request(store, _config(epochs=2000)))
    running = wait_for(lambda: (r := store.runs.get(run.id)).epoch >= 1 and r, START_TIMEOUT)
    # A worker in its own session, beating its heart.
    assert jobs.is_worker_process(running.pid, run.id) and os.getsid(running.pid) == running.pid
    assert time.time() - running.heartbeat_at < 10
    started = time.monotonic()
    jobs.cancel(store, run.id)
    ended = jobs.wait(store, run.id, 15)
    assert ended.status == "cancelled", (ended.status, ended.error)
    assert time.monotonic() - started < 15
    assert (store.workspace.run_dir(run.id) / "checkpoints" / "last.pt").exists()
    assert ended.epoch < ended.epochs
    wait_for(lambda: not jobs.is_worker_process(running.pid, run.id), 15)


@pytest.mark.slow
def test_sigkill_is_reaped_as_interrupted_and_resume_finishes_the_plan(store, tiny_dataset, sslviz):
    epochs = 40
    run = jobs.submit(store, job_request(store, _config(epochs=epochs)))
    checkpoint = store.workspace.run_dir(run.id) / "checkpoints" / "last.pt"
    victim = wait_for(
        lambda: (r := store.runs.get(run.id)).epoch >= 2 and checkpoint.exists() and r,
        START_TIMEOUT,
        poll=0.02,
    )
    assert victim.status == "running" and victim.epoch < epochs, "the run ended before the kill"
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: not jobs.is_worker_process(victim.pid, run.id), 10)

    status = json.loads(sslviz("status", str(run.id), "--json").stdout)
    assert (status["status"], status["pid"]) == ("interrupted", None)
    assert "resume" in status["error"]

    assert "run" in sslviz("resume", str(run.id)).stdout
    done = wait_for(lambda: _ended(store, run.id), START_TIMEOUT)
    assert done.status == "finished", done.error
    assert (done.epoch, done.epochs) == (epochs, epochs) and done.error is None
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert log.count(f"worker: run {run.id}, pid") == 2  # killed once, resumed once


def test_a_crashing_run_stores_its_traceback(store, tiny_dataset):
    from sslviz.data.cache import cache_path

    corrupt = cache_path(store, tiny_dataset.id, SIZE)
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"this is not a numpy file" * 10)
    run = jobs.submit(store, job_request(store, _config()))
    failed = wait_for(lambda: _ended(store, run.id), START_TIMEOUT)
    assert failed.status == "failed"
    assert failed.error and "\n" not in failed.error
    assert failed.traceback.startswith("Traceback") and "cache" in failed.traceback
    assert "Traceback" in (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()


@pytest.mark.slow
def test_the_queue_never_runs_more_than_its_limit(store, tiny_dataset, monkeypatch):
    monkeypatch.setenv(settings.MAX_RUNS_ENV, "1")  # workers hand over with the same limit
    ids = [jobs.submit(store, job_request(store, _config(epochs=2, seed=i))).id for i in range(3)]
    most_running = 0

    def all_ended() -> list[Run] | None:
        nonlocal most_running
        runs = [store.runs.get(i) for i in ids]
        most_running = max(most_running, sum(r.status == "running" for r in runs))
        return runs if all(r.status not in ("queued", "running") for r in runs) else None

    runs = wait_for(all_ended, 3 * START_TIMEOUT, 0.05)
    assert most_running == 1
    assert [r.status for r in runs] == ["finished"] * 3, [r.error for r in runs]
    # Started one after another, oldest first, each after the previous one ended.
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.ended_at <= later.started_at


@pytest.mark.slow
def test_deleting_a_running_run_stops_it_and_the_next_one_starts(store, tiny_dataset):
    first = jobs.submit(store, job_request(store, _config(epochs=2000)))
    second = jobs.submit(store, job_request(store, _config(epochs=1)))
    running = wait_for(lambda: (r := store.runs.get(first.id)).step >= 1 and r, START_TIMEOUT)
    assert store.runs.get(second.id).status == "queued"  # one CPU slot
    jobs.delete_run(store, first.id)
    assert first.id not in [r.id for r in store.runs.list()]
    assert not store.workspace.run_dir(first.id).exists()
    assert not jobs.is_worker_process(running.pid, first.id)
    # The deleted run's worker handed its slot over on the way out.
    done = wait_for(lambda: _ended(store, second.id), START_TIMEOUT)
    assert done.status == "finished", done.error
    assert not store.workspace.run_dir(first.id).exists()  # nothing wrote it back
