"""A worker beats while it starts (imports torch on a busy machine: no work to show signs of yet),
and from its first sign of life on only while signs keep coming."""

from __future__ import annotations

import os
import time

from waiting import wait_for

from sslviz.core import liveness
from sslviz.runner import jobs
from sslviz.runner.heartbeat import Heartbeat


def test_a_starting_worker_beats_until_its_first_sign_then_only_with_signs(
    store, tiny_dataset
) -> None:
    now = time.time()
    run = store.runs.create(
        dataset_id=tiny_dataset.id,
        kind="rotation",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
        status="running",
    )
    store.runs.update(run.id, pid=os.getpid(), started_at=now, heartbeat_at=now - 100)
    liveness._last_sign = time.monotonic() - 60  # silent long before the heartbeat began
    beats = Heartbeat(store, run.id, every=0.05, deadline=0.2, startup=60)
    try:
        # starting: beats go on although the last sign is far past the deadline
        wait_for(lambda: store.runs.get(run.id).heartbeat_at > now + 0.5, 30)
        assert liveness.seconds_since_alive() > beats.deadline
        liveness.alive()  # the executor started: the start-up is over
        wait_for(lambda: time.time() - store.runs.get(run.id).heartbeat_at > 1.0, 30)
        assert jobs.reap(store, stale_after=1.0) == [run.id]
    finally:
        beats.stop()
        liveness.alive()
