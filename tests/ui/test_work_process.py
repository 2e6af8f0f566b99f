"""The app's work process (``sslviz.ui.work_process``): a real child process predicts exactly
what ``sslviz predict`` gives, embeds a dataset into the workspace, says failures, and is
started again after it died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_for

from sslviz.core.settings import worker_nice
from sslviz.data import ensure_demo
from sslviz.fewshot.predict import predict
from sslviz.maps.embed import cached_embeddings, embed
from sslviz.store import Store
from sslviz.ui.work_process import TaskFailed, WorkProcess


@pytest.fixture
def process(store: Store) -> Iterator[WorkProcess]:
    ensure_demo(store)
    child = WorkProcess(str(store.workspace.root))
    yield child
    child.stop()


def labels_of(paths: list[str], per_class: int = 2) -> dict[str, str]:
    labels: dict[str, str] = {}
    for path in paths:
        folder = path.split("/")[0]
        if sum(v == folder for v in labels.values()) < per_class:
            labels[path] = folder
    return labels


def request(store: Store, emb, labels: dict[str, str], method: str = "auto") -> dict:
    return {
        "root": str(store.workspace.root),
        "dataset_id": 1,
        "source": emb.source,
        "layer": emb.layer,
        "grid": emb.grid,
        "method": method,
        "labels": sorted(labels.items()),
        "suggested": sorted(labels)[:3],
        "umap": False,
    }


def test_the_child_predicts_what_predict_gives(store: Store, process: WorkProcess) -> None:
    emb = embed(store, "demo", "pixels")
    labels = labels_of(emb.paths)
    stages: list[str] = []
    got = process.call("predict", request(store, emb, labels), on_stage=stages.append)
    want = predict(
        store, 1, "pixels", labels, embeddings=emb, suggested=set(sorted(labels)[:3]), umap=False
    )
    assert got.to_json() == want.to_json()
    np.testing.assert_array_equal(got.prediction.labels, want.prediction.labels)
    np.testing.assert_array_equal(got.prediction.confidence, want.prediction.confidence)
    np.testing.assert_array_equal(got.image_ids, want.image_ids)
    assert stages == ["loading the embedding", "cross-validating and predicting"]


def test_a_failure_is_said_and_a_dead_child_is_started_again(
    store: Store, process: WorkProcess
) -> None:
    emb = embed(store, "demo", "pixels")
    labels = labels_of(emb.paths)
    with pytest.raises(TaskFailed, match="unknown method 'nope'"):
        process.call("predict", request(store, emb, labels, method="nope"))
    first = process._process.pid
    os.kill(first, signal.SIGKILL)  # the child dies (out of memory, say)
    wait_for(lambda: not process._process.is_alive(), 30, 0.05)
    got = process.call("predict", request(store, emb, labels))  # a new child does it
    assert process._process.pid != first and got.method


def test_the_child_embeds_into_the_workspace(store: Store, process: WorkProcess) -> None:
    stages: list[str] = []
    args = {"root": str(store.workspace.root), "dataset_id": 1, "source": "random"}
    process.call("embed", {**args, "layer": None, "grid": None}, on_stage=stages.append)
    assert cached_embeddings(store, 1, "random") is not None
    assert stages[0] == "loading the encoder" and stages[-1] == "embedding: 306 of 306 images"


def test_the_child_works_below_the_servers_priority(store: Store, process: WorkProcess) -> None:
    """Its predictions and embeddings must not take the CPU from the pages other sessions load
    (issue 25): it runs at the background workers' priority, as a training run does."""
    emb = embed(store, "demo", "pixels")
    process.call("predict", request(store, emb, labels_of(emb.paths)))
    child = os.getpriority(os.PRIO_PROCESS, process._process.pid)
    assert child == min(19, os.nice(0) + worker_nice())


def test_background_priority_lowers_a_line_of_processes_once() -> None:
    """A child of a worker (a map job's UMAP fit) is already at the background priority: it
    stays there, it is not lowered once more; the first process is lowered by the setting from
    where it started (an app started at nice 3 has its workers at 13, not at 10)."""
    script = (
        "import os, subprocess, sys; from sslviz.core.processes import background_priority; "
        "background_priority(); first = os.nice(0); background_priority(); "
        "child = subprocess.run([sys.executable, '-c', 'import os; "
        "from sslviz.core.processes import background_priority; background_priority(); "
        "print(os.nice(0))'], capture_output=True, text=True, check=True).stdout; "
        "print(first, os.nice(0), child)"
    )
    done = subprocess.run(
        ["nice", "-n", "3", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    first, again, child = map(int, done.stdout.split())
    assert first == again == child == min(19, os.nice(0) + 3 + worker_nice())


def test_the_server_side_imports_no_streamlit_in_the_child() -> None:
    import sslviz.ui.work_process as module

    text = Path(module.__file__).read_text()
    assert "import streamlit" not in text and "from streamlit" not in text
