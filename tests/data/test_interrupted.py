"""Ingests that die midway: a real `sslviz ingest` killed with SIGKILL is found and shown as
interrupted, leaves no process behind, and can be retried or replaced; pids that died or were
reused are told apart from live ingests; leftovers of killed processes are cleaned up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from waiting import wait_for

from sslviz.cli import main
from sslviz.core.errors import UserError
from sslviz.core.processes import children, pid_alive
from sslviz.data import (
    DEMO_NAME,
    delete_dataset,
    ensure_demo,
    ingest,
    ingest_uploads,
    reap_ingests,
    reingest,
)
from sslviz.store import Store
from tests.data.make_files import encoded, noise

SSLVIZ = shutil.which("sslviz", path=str(Path(sys.executable).parent)) or shutil.which("sslviz")


def make_photos(root: Path, n: int, side: int = 32) -> Path:
    """``n`` distinct small PNGs (random pixels: no two alike)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:05d}.png", compress_level=0)
    return root


def finished_pid() -> int:
    """The pid of a real process that has exited (and been collected)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def set_created_at(store: Store, dataset_id: int, when: float) -> None:
    store.connection.execute("UPDATE datasets SET created_at = ? WHERE id = ?", (when, dataset_id))


@pytest.mark.slow
def test_a_killed_ingest_is_interrupted_leaves_no_process_and_can_be_retried(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_photos(tmp_path / "photos", 1500)
    process = subprocess.Popen(
        [SSLVIZ, "ingest", str(root), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def decoding():  # the row exists and the first files are written: killed mid-ingest
        rows = store.datasets.list()
        files = store.workspace.dataset_dir(rows[0].id) / "files" if rows else None
        return rows[0] if files and files.is_dir() and any(files.iterdir()) else None

    try:
        dataset = wait_for(decoding, timeout=90, poll=0.02)
        workers = children(process.pid)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (dataset.status, dataset.pid) == ("ingesting", process.pid)
    assert workers, "the ingest decodes in a pool of worker processes"
    # Its decoding processes die with it (they would otherwise wait for work forever).
    wait_for(lambda: not any(pid_alive(pid) for pid in workers), timeout=10, poll=0.1)

    assert reap_ingests(store) == [dataset.id]
    dead = store.datasets.get(dataset.id)
    assert dead.status == "interrupted" and f"process {process.pid}" in dead.error
    assert reap_ingests(store) == []  # once

    assert main(["datasets"]) == 0
    out, err = capsys.readouterr()
    assert "photos" in out and "[interrupted]" in out
    assert "`sslviz reingest photos`" in err and "sslviz delete-dataset photos" in err

    report = reingest(store, "photos", workers=1)
    assert report.replaced is not None and report.replaced.id == dataset.id
    assert [(d.name, d.status, d.n_images) for d in store.datasets.list()] == [
        ("photos", "ready", 1500)
    ]
    folder = store.workspace.dataset_dir(report.dataset.id)
    assert len(list((folder / "files").iterdir())) == 1500  # no temporary file left among them


def test_dead_and_reused_pids_are_reaped_live_ingests_are_not(store: Store) -> None:
    live = store.datasets.create("live", "/data/live", pid=os.getpid())
    dead = store.datasets.create("dead", "/data/dead", pid=finished_pid())
    # An app restart: the pid recorded is alive again, but it is a process that started later.
    reused = store.datasets.create("reused", "/data/reused", pid=None)
    set_created_at(store, reused.id, time.time() - 60)
    later = subprocess.Popen(["sleep", "30"])
    store.connection.execute("UPDATE datasets SET pid = ? WHERE id = ?", (later.pid, reused.id))
    # Rows written before pids were recorded: dead after a grace period, not at once.
    legacy = store.datasets.create("legacy", "/data/legacy")
    set_created_at(store, legacy.id, time.time() - 3600)
    store.connection.execute("UPDATE datasets SET heartbeat_at = NULL WHERE id = ?", (legacy.id,))
    store.datasets.create("fresh", "/data/fresh")
    try:
        assert sorted(reap_ingests(store)) == sorted([dead.id, reused.id, legacy.id])
    finally:
        later.kill()
        later.wait()
    status = {d.name: d.status for d in store.datasets.list()}
    assert status == {
        "live": "ingesting",
        "dead": "interrupted",
        "reused": "interrupted",
        "legacy": "interrupted",
        "fresh": "ingesting",
    }
    assert f"process {later.pid}" in store.datasets.get(reused.id).error
    assert live.heartbeat_at is not None


def test_ingesting_again_under_the_same_name_replaces_an_interrupted_dataset(
    store: Store, tmp_path: Path
) -> None:
    root = make_photos(tmp_path / "photos", 3)
    stuck = store.datasets.create("photos", str(root), pid=finished_pid())
    (store.workspace.dataset_dir(stuck.id) / "files").mkdir(parents=True)
    report = ingest(store, [root], workers=1)
    assert report.replaced is not None and report.to_json()["replaced_interrupted"] is True
    assert [(d.name, d.status, d.n_images) for d in store.datasets.list()] == [
        ("photos", "ready", 3)
    ]
    # A complete dataset is never replaced silently.
    with pytest.raises(UserError, match="already exists"):
        ingest(store, [root], workers=1)


def test_what_can_be_retried_and_deleted(store: Store, tmp_path: Path) -> None:
    uploaded = ingest_uploads(store, [("a.png", encoded(noise(16, 16), "PNG"))], "up").dataset
    store.connection.execute(
        "UPDATE datasets SET status = 'interrupted', error = 'killed' WHERE id = ?", (uploaded.id,)
    )
    with pytest.raises(UserError, match="browser upload: upload the files again"):
        reingest(store, "up")
    gone = store.datasets.create("gone", str(tmp_path / "moved"), pid=finished_pid())
    with pytest.raises(UserError, match="no longer there"):
        reingest(store, "gone")
    ingest(store, [make_photos(tmp_path / "fine", 2)], workers=1)
    with pytest.raises(UserError, match="complete"):
        reingest(store, "fine")
    live = store.datasets.create("busy", str(tmp_path), pid=os.getpid())
    with pytest.raises(UserError, match="still being ingested"):
        reingest(store, "busy")
    with pytest.raises(UserError, match="being ingested by process"):
        delete_dataset(store, live.id)
    for dataset in (uploaded, gone):
        delete_dataset(store, dataset.id)
    assert {d.name for d in store.datasets.list()} == {"fine", "busy"}


def test_cli_lists_and_retries_interrupted_datasets(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_photos(tmp_path / "shots", 4)
    store.datasets.create("shots", str(root), pid=finished_pid())
    assert main(["datasets", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["datasets"]
    assert entry["status"] == "interrupted" and "ended before finishing" in entry["error"]
    assert main(["reingest", "shots", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["dataset"], report["accepted"], report["replaced_interrupted"]) == (
        "shots",
        4,
        True,
    )
    assert main(["reingest", "shots"]) == 1
    assert "complete (4 images)" in capsys.readouterr().err


def test_leftovers_of_dead_processes_are_cleaned_live_ones_kept(
    store: Store, tmp_path: Path
) -> None:
    dead_pid = finished_pid()
    stuck = store.datasets.create("stuck", "/data/stuck", pid=dead_pid)
    files = store.workspace.dataset_dir(stuck.id) / "files"
    files.mkdir(parents=True)
    (files / f".tmp-{dead_pid}-abc").write_bytes(b"half")
    (files / f".tmp-{os.getpid()}-def").write_bytes(b"mine")  # a live process's: kept
    (files / "0123.png").write_bytes(b"kept")
    staged_dead = store.workspace.root / f"upload-{dead_pid}-xyz"
    staged_live = store.workspace.root / f"upload-{os.getpid()}-uvw"
    for folder in (staged_dead, staged_live):
        folder.mkdir()
        (folder / "0.zip").write_bytes(b"zip")
    ingest(store, [make_photos(tmp_path / "next", 2)], workers=1)  # cleans on start
    assert sorted(p.name for p in files.iterdir()) == [f".tmp-{os.getpid()}-def", "0123.png"]
    assert not staged_dead.exists() and staged_live.exists()


def test_an_interrupted_demo_is_prepared_again(store: Store) -> None:
    store.datasets.create(DEMO_NAME, "/somewhere/demo", pid=finished_pid())
    demo = ensure_demo(store, workers=1)
    assert demo is not None and demo.status == "ready" and demo.n_images > 0
    assert [(d.name, d.status) for d in store.datasets.list()] == [(DEMO_NAME, "ready")]
