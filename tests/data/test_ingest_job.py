"""``sslviz ingest --background``: the ingest is a job of the one runner, followed, cancelled and
resumed with ``sslviz status/cancel/resume``; a worker killed midway leaves the dataset
interrupted with what it recorded, and resuming finishes it without starting over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from sslviz.store import Store
from tests.data.test_interrupted import make_photos

pytestmark = pytest.mark.slow


def sslviz(*args: str) -> Any:
    """``sslviz ARGS --json`` in a real process: its JSON object (exit code 0 asserted)."""
    out = subprocess.run(
        [sys.executable, "-m", "sslviz", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def dataset(name: str) -> dict[str, Any]:
    return next(d for d in sslviz("datasets")["datasets"] if d["name"] == name)


def test_a_background_ingest_ends_ready_with_every_image(home: Path, tmp_path: Path) -> None:
    root = make_photos(tmp_path / "photos", 400)
    submitted = sslviz("ingest", str(root), "--background")
    assert submitted["dataset"] == "photos" and submitted["status"] in ("queued", "running")
    run = submitted["run"]
    status = wait_for(lambda: (s := sslviz("status", str(run)))["status"] == "finished" and s)
    assert (status["task"], status["step"], status["progress"]) == ("ingest", 400, 1.0)
    assert (dataset("photos")["status"], dataset("photos")["images"]) == ("ready", 400)
    runs = sslviz("runs")["runs"]
    assert [(r["run"], r["task"]) for r in runs] == [(run, "ingest")]


def test_a_killed_or_cancelled_ingest_job_is_resumed_where_it_stopped(
    home: Path, tmp_path: Path
) -> None:
    root = make_photos(tmp_path / "many", 3000)
    run = sslviz("ingest", str(root), "--background", "--workers", "1")["run"]
    store = Store.open(home)
    first = wait_for(lambda: store.datasets.count_images(1) >= 300 and store.runs.get(run))
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its decoding processes, no word
    wait_for(lambda: sslviz("status", str(run))["status"] == "interrupted")
    killed = dataset("many")
    assert killed["status"] == "interrupted" and f"sslviz resume {run}" in killed["error"]
    kept = {i.path: i.id for i in store.datasets.images(1)}
    assert len(kept) >= 300  # what it recorded stays

    sslviz("resume", str(run))
    wait_for(lambda: store.datasets.count_images(1) >= len(kept) + 300)
    assert sslviz("cancel", str(run))["status"] in ("running", "cancelled")
    wait_for(lambda: sslviz("status", str(run))["status"] == "cancelled", timeout=60)
    assert dataset("many")["status"] == "interrupted"

    sslviz("resume", str(run))
    wait_for(lambda: sslviz("status", str(run))["status"] == "finished")
    assert (dataset("many")["status"], dataset("many")["images"]) == ("ready", 3000)
    # Resumed, not started over: the rows recorded before the kill are the same rows.
    after = {i.path: i.id for i in store.datasets.images(1)}
    assert all(after[path] == row for path, row in kept.items())
    store.close()
