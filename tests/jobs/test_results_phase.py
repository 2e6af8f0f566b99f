"""A run's end is part of the run: writing the results its pages read is a named stage with
progress, signs of life per batch and cancel, and a run that ended there redoes only that stage.

Real workers on 600 real JPEGs: training is cut short by a one-second time budget, then the
results phase passes over every image (the upright check and two channel indexes), each of its
~17 batches held up a second as on a slow device (``SSLVIZ_RESULTS_BATCH_PAUSE``). In that phase
the progress deadline is 3 s and the reaper's timeout 8 s (as a hung worker is reaped in
``test_cancel_and_liveness``): a phase without signs of life would be reaped within 11 s.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image as PILImage
from test_cancel_and_liveness import START_TIMEOUT, make_jpeg_dataset, workspace_processes
from waiting import wait_for

from sslviz.core import settings
from sslviz.runner import jobs
from sslviz.store import Run, Store
from sslviz.store.kinds import RESULTS_STAGE
from sslviz.training.config import TrainConfig
from sslviz.training.train import job_request

DEADLINE, STALE_AFTER = 3.0, 8.0  # seconds: the progress deadline and the reaper's timeout
pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """600 distinct 96 px JPEGs."""
    rng = np.random.default_rng(1)
    files = []
    for i in range(600):
        small = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
        image = PILImage.fromarray(small).resize((96, 96), PILImage.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        files.append(buffer.getvalue() + i.to_bytes(4, "big"))
    return files


@pytest.fixture
def run_to_its_end(store: Store, photos, monkeypatch) -> Run:
    """A rotation run trained for one second, submitted to a real worker."""
    monkeypatch.setenv(settings.DEADLINE_ENV, str(DEADLINE))  # the worker inherits them
    monkeypatch.setenv(settings.RESULTS_PAUSE_ENV, "1")
    dataset = make_jpeg_dataset(store, photos, size=96)
    config = TrainConfig(
        dataset=dataset.name,
        task="rotation",
        image_size=32,
        epochs=1000,
        time_budget=1,
        batch_size=16,
        device="cpu",
    )
    return jobs.submit(store, job_request(store, config))


def _ended(store: Store, run_id: int) -> Run | None:
    run = store.runs.get(run_id)
    return run if run.status not in ("queued", "running") else None


def _in_results(store: Store, run_id: int) -> Run | None:
    run = store.runs.get(run_id)
    return run if (run.stage or "").startswith(RESULTS_STAGE) else None


def test_a_results_phase_longer_than_the_deadline_ends_finished(store, run_to_its_end):
    run = run_to_its_end
    seen: set[str] = set()
    began = ended = None

    def ended_watching_its_stages() -> bool:
        nonlocal began, ended
        if began is not None:  # the reaper, as every page load runs it, with a short fuse
            jobs.reap(store, stale_after=STALE_AFTER)
        now = store.runs.get(run.id)
        if now.status not in ("queued", "running"):
            return True
        stage = jobs.describe(store, now)["stage"]
        if stage and began is None:
            began = time.monotonic()
        if stage:
            seen.add(stage)
            ended = time.monotonic()
        return False

    wait_for(ended_watching_its_stages, 400, 0.2, lambda: f"still running; saw {sorted(seen)}")
    done = store.runs.get(run.id)
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert done.status == "finished", (done.status, done.error, sorted(seen), log[-3000:])
    assert began is not None and ended - began > DEADLINE + STALE_AFTER, sorted(seen)
    assert done.stage is None and jobs.describe(store, done)["stage"] is None
    checks = [s for s in seen if s.startswith(f"{RESULTS_STAGE}: upright check ")]
    assert any(not s.endswith((" 0%", " 100%")) for s in checks), sorted(seen)  # on the way
    stored = store.workspace.run_dir(run.id) / "results"
    assert any(stored.glob("upright-*.npz")) and any(stored.glob("rotation-*.npz"))


def test_cancel_in_the_results_phase_ends_cancelled_and_resume_redoes_only_it(
    store, home, run_to_its_end
):
    run = run_to_its_end
    wait_for(lambda: _in_results(store, run.id), START_TIMEOUT + 120, poll=0.05)
    trained = store.runs.get(run.id)
    evaluated = {m.key: m.time for m in store.runs.metrics(run.id) if m.key.startswith("eval/")}
    assert evaluated, "the held-out evaluation comes before the results"
    started = time.monotonic()
    jobs.cancel(store, run.id)
    ended = jobs.wait(store, run.id, 30)
    assert ended.status == "cancelled", (ended.status, ended.error, ended.stage)
    assert time.monotonic() - started < 30
    assert ended.stage.startswith(RESULTS_STAGE)  # where it stopped, to resume there
    wait_for(lambda: not workspace_processes(home), 15)
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert "ended cancelled" in log and "Traceback" not in log, log

    jobs.resume(store, run.id)
    done = wait_for(lambda: _ended(store, run.id), START_TIMEOUT + 200, poll=0.5)
    assert done.status == "finished", (done.status, done.error)
    # only the results were written again: no step trained, the evaluation not redone
    assert (done.step, done.work_seconds) == (trained.step, trained.work_seconds)
    again = {m.key: m.time for m in store.runs.metrics(run.id) if m.key.startswith("eval/")}
    assert again == evaluated
    assert done.stage is None
    assert any((store.workspace.run_dir(run.id) / "results").glob("upright-*.npz"))
