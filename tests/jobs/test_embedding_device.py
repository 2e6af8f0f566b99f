"""An embedding job is recorded with the device it computes on, and counts against that device.

What a CPU machine can show: the job's recorded device is the one its embedding really uses
(``maps.embed.source_device``, as the worker's log says), and the scheduler keeps it in that
device's slots: a running job on the CPU holds back a queued CPU run, one recorded on a GPU
(as a GPU machine records it) does not.
"""

from __future__ import annotations

import os
import time

import pytest
from waiting import wait_for

from sslviz.maps.embed import source_device
from sslviz.maps.embedding_job import job_device, job_request
from sslviz.runner import jobs
from sslviz.store import Store
from sslviz.store.kinds import JobRequest
from sslviz.training.config import TrainConfig
from sslviz.training.train import job_request as train_request

START_TIMEOUT = 120  # a worker imports torch on a busy 2-core machine
pytestmark = pytest.mark.timeout(300)


def _training(store: Store) -> JobRequest:
    config = TrainConfig(
        dataset="tiny", task="rotation", image_size=16, epochs=1, batch_size=8, device="cpu"
    )
    return train_request(store, config)


def test_an_embedding_job_is_recorded_on_the_device_it_computes_on(store, tiny_dataset):
    for source in ("random", "pixels"):
        used = source_device(store, source)
        assert job_request(store, "tiny", source).device == job_device(store, source)
        assert jobs.device_key(job_device(store, source)) == jobs.device_key(str(used))
    run = jobs.submit(store, job_request(store, "tiny", "random", neighbors=5))
    done = wait_for(
        lambda: (r := store.runs.get(run.id)).status not in ("queued", "running") and r,
        START_TIMEOUT,
    )
    assert done.status == "finished", done.error
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert f"embeds on {done.device}" in log and done.device == job_device(store, "random")


def test_an_embedding_job_takes_the_slot_of_its_device(store, tiny_dataset, monkeypatch):
    monkeypatch.setenv("SSLVIZ_MAX_RUNS_PER_DEVICE", "1")
    request = job_request(store, "tiny", "random")
    # a job carried out by this process on the CPU (recorded claimed: no worker needed)
    job = jobs.submit(store, request, claim=True)
    assert (job.status, job.device) == ("running", "cpu")
    queued = jobs.submit(store, _training(store))
    assert store.runs.get(queued.id).status == "queued"  # the CPU's one slot is the job's
    assert jobs.slots(store)["cpu"] == {"running": 1, "queued": 1, "limit": 1}
    # the job ends: the slot is free and the queued run starts
    store.runs.transition(job.id, "finished", allowed_from=("running",), ended_at=time.time())
    assert jobs.schedule(store) == [queued.id]
    assert jobs.wait(store, queued.id, START_TIMEOUT).status == "finished"

    # a job on a GPU (as a GPU machine records it) leaves the CPU's slot free
    gpu_job = store.runs.record(JobRequest(**{**request.__dict__, "device": "cuda:0"}), claim=True)
    assert store.runs.get(gpu_job.id).pid == os.getpid()
    other = jobs.submit(store, _training(store))
    assert store.runs.get(other.id).status == "running"
    assert jobs.slots(store)["cuda:0"]["running"] == 1
    assert jobs.wait(store, other.id, START_TIMEOUT).status == "finished"
