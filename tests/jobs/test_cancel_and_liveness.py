"""Cancel at any moment leaves nothing behind, and a worker is alive only while it makes progress.

Real worker processes and a real decode pool: a cancel (or Ctrl-C in the foreground) while the
decode cache is being built ends the run ``cancelled`` within seconds with every process of the
workspace gone; the heartbeat stops when the work is stuck (a hung file read), so the reaper
kills the worker; a broken moment of the database never ends the beats.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from waiting import wait_for

from sslviz.core import liveness, settings
from sslviz.data.cache import cache_path
from sslviz.runner import jobs
from sslviz.runner.heartbeat import Heartbeat
from sslviz.store import Dataset, Image, Store
from sslviz.training.config import TrainConfig
from sslviz.training.train import job_request

# The installed console script, as a user runs it (next to this interpreter, else on PATH).
SSLVIZ = shutil.which("sslviz", path=str(Path(sys.executable).parent)) or shutil.which("sslviz")
START_TIMEOUT = 120  # a worker imports torch on a busy 2-core machine
CACHE_SIZE = 128
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def jpeg_files() -> list[bytes]:
    """900 distinct 512 px JPEGs: decoding them to 128 px takes a few seconds on two cores."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(900):
        small = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        image = PILImage.fromarray(small).resize((512, 512), PILImage.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        files.append(buffer.getvalue() + i.to_bytes(4, "big"))  # trailing bytes: unique content
    return files


def make_jpeg_dataset(
    store: Store, files: list[bytes], name: str = "big", size: int = 512
) -> Dataset:
    """A ready dataset of ``files`` (``size`` px JPEGs) recorded the way ingestion records one."""
    dataset = store.datasets.create(name, f"/tests/{name}")
    folder = store.workspace.dataset_dir(dataset.id) / "files"
    folder.mkdir(parents=True)
    rows = []
    for i, data in enumerate(files):
        (folder / f"{i:05d}.jpg").write_bytes(data)
        rows.append(
            Image(
                id=0,
                dataset_id=dataset.id,
                path=f"class_{i // 100}/{i:05d}.jpg",
                sha256=f"{i:064x}",
                file=f"files/{i:05d}.jpg",
                width=size,
                height=size,
                mode="RGB",
                format="JPEG",
                bytes=len(data),
            )
        )
    store.datasets.add_images(rows)
    return store.datasets.finish(dataset.id)


def workspace_processes(home: Path) -> list[str]:
    """Live processes (not zombies) started with this workspace in their environment."""
    needle = f"SSLVIZ_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in environ and stat[stat.rfind(")") + 2] != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def building(store: Store, dataset_id: int) -> bool:
    """Whether a cache build of the dataset is under way (its temporary file exists)."""
    path = cache_path(store, dataset_id, CACHE_SIZE)
    return path.parent.is_dir() and any(path.parent.glob(f".{path.stem}.*.npy"))


def _config(dataset: str, **changes) -> TrainConfig:
    base = TrainConfig(
        dataset=dataset,
        task="rotation",
        image_size=CACHE_SIZE,
        epochs=1,
        batch_size=16,
        device="cpu",
    )
    return base.replace(**changes)


def test_importing_the_worker_installs_no_signal_handlers():
    # pool processes (forkserver, spawn) import the worker module as __mp_main__; they keep the
    # handlers they had (a shell's background job starts with SIGINT ignored, not the default)
    code = (
        "import runpy, signal\n"
        "before = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]\n"
        "runpy.run_module('sslviz.runner.worker', run_name='__mp_main__')\n"
        "after = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]\n"
        "print(before == after, after[1] is signal.SIG_IGN)\n"
    )
    # as a terminal starts it, and as a shell's `... &` does (SIGINT ignored)
    for sigint, ignored in ((signal.SIG_DFL, "False"), (signal.SIG_IGN, "True")):

        def start(handler: signal.Handlers = sigint) -> None:
            signal.signal(signal.SIGINT, handler)

        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=start
        )
        assert result.stdout.split() == ["True", ignored], result.stderr


@pytest.mark.slow
def test_cancel_during_the_cache_build_ends_cancelled_and_leaves_no_process(
    store, home, jpeg_files
):
    dataset = make_jpeg_dataset(store, jpeg_files)
    run = jobs.submit(store, job_request(store, _config(dataset.name)))
    wait_for(lambda: building(store, dataset.id), START_TIMEOUT, poll=0.02)
    started = time.monotonic()
    jobs.cancel(store, run.id)
    ended = jobs.wait(store, run.id, 30)
    assert ended.status == "cancelled", (ended.status, ended.error)
    assert time.monotonic() - started < 30 and ended.step == 0
    wait_for(lambda: not workspace_processes(home), 15)
    assert not building(store, dataset.id)  # no half cache left
    assert not cache_path(store, dataset.id, CACHE_SIZE).exists()
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert "ended cancelled" in log and "Traceback" not in log, log


@pytest.mark.slow
def test_ctrl_c_in_the_foreground_during_the_cache_build(store, home, jpeg_files):
    dataset = make_jpeg_dataset(store, jpeg_files)
    args = [
        SSLVIZ,
        "train",
        "--dataset",
        dataset.name,
        "--task",
        "rotation",
        "--image-size",
        str(CACHE_SIZE),
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    # its own process group, as a terminal gives a foreground job: Ctrl-C reaches all of it
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for(lambda: building(store, dataset.id) or process.poll() is not None, START_TIMEOUT)
        assert process.poll() is None, process.communicate()
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    [run] = store.runs.list()
    assert run.status == "cancelled" and run.error is None, (run.status, run.error)
    assert "Traceback" not in stderr and f"sslviz resume {run.id}" in stderr
    wait_for(lambda: not workspace_processes(home), 15)


def test_the_heartbeat_beats_only_while_the_process_shows_signs_of_life(store, tiny_dataset):
    now = time.time()
    run = store.runs.create(
        dataset_id=1,
        kind="rotation",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
        status="running",
    )
    store.runs.update(run.id, pid=os.getpid(), started_at=now, heartbeat_at=now - 100)
    liveness.alive()
    beats = Heartbeat(store, run.id, every=0.05, deadline=0.6)
    try:
        wait_for(lambda: store.runs.get(run.id).heartbeat_at > now, 5)
        assert jobs.reap(store, stale_after=1.0) == []
        store.runs.progress(run.id, step=1, total=4)  # a sign of life, and progress
        assert store.runs.get(run.id).step == 1 and liveness.seconds_since_alive() < 0.5
        # no progress past the deadline: the beats (every 0.05 s) stop, so the last one ages
        wait_for(lambda: time.time() - store.runs.get(run.id).heartbeat_at > 1.0, 30)
        assert liveness.seconds_since_alive() > beats.deadline
        assert jobs.reap(store, stale_after=1.0) == [run.id]
        assert "no heartbeat" in store.runs.get(run.id).error
    finally:
        beats.stop()
        liveness.alive()


def test_progress_written_to_the_store_by_any_executor_keeps_the_heartbeat(store, tiny_dataset):
    run = store.runs.create(
        dataset_id=tiny_dataset.id,
        kind="embedding",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
        status="running",
    )
    liveness.alive()
    beats = Heartbeat(store, run.id, every=0.05, deadline=0.5)
    try:
        # no sign of life past the deadline: the beats stop and the last one ages
        wait_for(lambda: time.time() - (store.runs.get(run.id).heartbeat_at or 0) > 1.0, 30)
        for step in (1, 2):  # a plain row update (never liveness.alive()) brings them back
            written = time.time()
            store.runs.update(run.id, step=step)
            wait_for(lambda w=written: (store.runs.get(run.id).heartbeat_at or 0) > w, 30)
    finally:
        beats.stop()


def test_a_failed_beat_never_ends_the_heartbeat(store, tiny_dataset):
    run = store.runs.create(
        dataset_id=1,
        kind="rotation",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
        status="running",
    )
    liveness.alive()
    beats = Heartbeat(store, run.id, every=0.05, deadline=60)
    try:
        wait_for(lambda: store.runs.get(run.id).heartbeat_at, 5)
        # a broken moment of the database: every beat fails while the table is renamed
        other = sqlite3.connect(store.workspace.db_path, isolation_level=None)
        other.execute("ALTER TABLE runs RENAME TO runs_away")
        wait_for(lambda: beats.failures >= 2, 5)
        other.execute("ALTER TABLE runs_away RENAME TO runs")
        other.close()
        before = store.runs.get(run.id).heartbeat_at
        wait_for(lambda: store.runs.get(run.id).heartbeat_at > before, 5)
        assert beats.is_alive()
    finally:
        beats.stop()


@pytest.mark.slow
def test_a_worker_stuck_without_progress_is_reaped_and_killed(
    store, home, tiny_dataset, monkeypatch
):
    dataset = tiny_dataset
    # one image is a named pipe nobody writes to: reading it blocks forever (a hung mount)
    first = store.datasets.images(dataset.id)[0]
    stuck = store.workspace.dataset_dir(dataset.id) / first.file
    stuck.unlink()
    os.mkfifo(stuck)
    monkeypatch.setenv(settings.DEADLINE_ENV, "2")  # the worker inherits it
    run = jobs.submit(
        store,
        job_request(
            store,
            TrainConfig(
                dataset="tiny", task="rotation", image_size=16, epochs=1, batch_size=8, device="cpu"
            ),
        ),
    )
    path = cache_path(store, dataset.id, 16)
    wait_for(
        lambda: path.parent.is_dir() and any(path.parent.glob(f".{path.stem}.*.npy")), START_TIMEOUT
    )
    pid = store.runs.get(run.id).pid
    assert jobs.is_worker_process(pid, run.id)
    reaped = wait_for(lambda: jobs.reap(store, stale_after=3), 30, poll=0.5)
    assert reaped == [run.id]
    ended = store.runs.get(run.id)
    assert ended.status == "interrupted" and "no heartbeat" in ended.error
    wait_for(lambda: not workspace_processes(home), 15)


def test_an_executor_that_raises_cancelled_ends_its_run_cancelled(store, tiny_dataset):
    from sslviz.runner import worker

    run = store.runs.create(
        dataset_id=tiny_dataset.id,
        kind="embedding",
        model_name="small-cnn",
        config={},
        device="cpu",
        epochs=1,
        status="running",
        pid=os.getpid(),  # the worker that owns it records how it ended
    )
    worker._record_failure(store, run.id, liveness.Cancelled("stopped while projecting"))
    ended = store.runs.get(run.id)
    assert (ended.status, ended.error, ended.traceback) == ("cancelled", None, None)
