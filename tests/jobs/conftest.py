"""Fixtures for the job runner's tests: a temp workspace, a tiny dataset of real PNG files, and
cleanup that stops any worker a test left behind (only ours: matched by run id and cmdline)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from job_data import SSLVIZ, make_dataset

from sslviz.runner import jobs
from sslviz.store import Dataset, Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SSLVIZ_HOME; workers inherit it and use one torch thread (2 shared cores)."""
    monkeypatch.setenv("SSLVIZ_HOME", str(tmp_path))
    monkeypatch.setenv("SSLVIZ_WORKER_THREADS", "1")
    monkeypatch.delenv("SSLVIZ_MAX_RUNS_PER_DEVICE", raising=False)
    return tmp_path


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    s = Store.open(home)
    yield s
    _stop_workers(s)
    s.close()


def _stop_workers(store: Store) -> None:
    for run in store.runs.list(("running", "queued")):
        if run.pid and jobs.is_worker_process(run.pid, run.id):
            os.killpg(run.pid, signal.SIGKILL)


@pytest.fixture
def tiny_dataset(store: Store) -> Dataset:
    return make_dataset(store)


@pytest.fixture
def sslviz(home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``sslviz ARGS...`` in the test's workspace; by default assert it exited 0."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([SSLVIZ, *args], capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run
