"""Fixtures for the job runner's tests: a temp workspace, a tiny dataset of real PNG files, and
cleanup that stops any worker a test left behind (only ours: matched by run id and cmdline)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from sslviz.runner import jobs
from sslviz.store import Dataset, Image, Store


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


def make_dataset(store: Store, name: str = "tiny", n: int = 40, size: int = 24) -> Dataset:
    """``n`` real PNG files with asymmetric shapes (so rotation is learnable), recorded as a
    ready dataset the way ingestion records one (files named by content hash)."""
    rng = np.random.default_rng(0)
    dataset = store.datasets.create(name, f"/tests/{name}")
    files_dir = store.workspace.dataset_dir(dataset.id) / "files"
    files_dir.mkdir(parents=True)
    rows = []
    for i in range(n):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[:] = rng.integers(0, 60, 3)  # background colour
        top, left = rng.integers(0, size // 2, 2)
        pixels[top : top + size // 3, left : left + size // 2] = rng.integers(120, 255, 3)
        pixels[: size // 6] = 255  # a bright top band: "up" is visible
        buffer = io.BytesIO()
        PILImage.fromarray(pixels).save(buffer, format="PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        (files_dir / f"{sha}.png").write_bytes(data)
        rows.append(
            Image(
                id=0,
                dataset_id=dataset.id,
                path=f"img_{i:03d}.png",
                sha256=sha,
                file=f"files/{sha}.png",
                width=size,
                height=size,
                mode="RGB",
                format="PNG",
                bytes=len(data),
            )
        )
    store.datasets.add_images(rows)
    return store.datasets.finish(dataset.id)


# The installed console script, as a user runs it (next to this interpreter, else on PATH).
SSLVIZ = shutil.which("sslviz", path=str(Path(sys.executable).parent)) or shutil.which("sslviz")


@pytest.fixture
def sslviz(home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``sslviz ARGS...`` in the test's workspace; by default assert it exited 0."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([SSLVIZ, *args], capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run
