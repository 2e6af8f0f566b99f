"""The map-job panel ends with its job: once the job ended (cancelled, failed, finished) the poll
draws the whole page again, which registers no poll and shows no Cancel; a Cancel clicked on a
panel drawn while the job ran, after it ended, raises nothing.

The panel's poll (a fragment run every 2 s in the browser) is called here as such a poll calls it,
in a real Streamlit script run (AppTest) over a real store: the job is a real ``embedding`` run
row of a dataset of real PNGs, ended through the job runner."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from conftest import open_app, png_bytes
from streamlit.testing.v1 import AppTest

from sslviz.maps.embedding_job import job_request
from sslviz.runner import jobs
from sslviz.store import Image, Run, Store


def _poll_script() -> None:
    """The panel's poll, then (when it asks for it) the page drawn again."""
    import streamlit as st

    from sslviz.store import Store
    from sslviz.ui.explorer_view import MapSpec, _job_progress

    store = Store.open()
    run = store.runs.get(int(st.session_state["run_id"]))
    if st.session_state.get("polled"):
        st.markdown("the whole page, drawn again")
        st.stop()
    if run.status not in ("queued", "running"):
        st.session_state["polled"] = True  # a poll that sees the end asks for the page again
    dataset = store.datasets.get(run.dataset_id)
    _job_progress(store, dataset, MapSpec(source="random", neighbors=7), run.id)


def _dataset(store: Store, n: int = 12) -> None:
    """``n`` real PNG files recorded as a ready dataset ``tiny``, as ingestion records one (no
    decoding pool: an AppTest run earlier in this process leaves a main module pools can't load)."""
    dataset = store.datasets.create("tiny", "/tests/tiny")
    folder = store.workspace.dataset_dir(dataset.id) / "files"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        data = png_bytes(i)
        sha = hashlib.sha256(data).hexdigest()
        (folder / f"{sha}.png").write_bytes(data)
        rows.append(
            Image(
                0,
                dataset.id,
                f"{i:02d}.png",
                sha,
                f"files/{sha}.png",
                40,
                40,
                "RGB",
                "PNG",
                len(data),
            )
        )
    store.datasets.add_images(rows)
    store.datasets.finish(dataset.id)


@pytest.fixture
def job(home: Path) -> Run:
    store = Store.open()
    _dataset(store)
    request = job_request(store, "tiny", "random", neighbors=7)
    run = store.runs.record(request, claim=True)  # carried out "here": no worker needed
    yield run
    store.close()


def _panel(run_id: int) -> AppTest:
    return open_app(script=_poll_script, state={"run_id": run_id})


@pytest.mark.parametrize("ended", ["cancelled", "failed", "finished"])
def test_a_poll_after_the_job_ended_draws_the_page_again(job: Run, ended: str) -> None:
    store = Store.open()
    assert store.runs.transition(job.id, ended, allowed_from=("running",), ended_at=time.time())
    at = _panel(job.id)
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown] == ["the whole page, drawn again"]
    assert not [b for b in at.button if b.label == "Cancel"] and not at.get("progress")


def test_cancel_on_a_panel_drawn_while_the_job_ran_raises_nothing(job: Run) -> None:
    at = _panel(job.id)
    assert not at.exception and at.get("progress")
    (cancel,) = [b for b in at.button if b.label == "Cancel"]
    # the job ends before the person clicks (the panel on screen still shows Cancel)
    store = Store.open()
    jobs.cancel(store, job.id)
    store.runs.transition(job.id, "cancelled", allowed_from=("running",), ended_at=time.time())
    cancel.click().run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.label == "Cancel"]
    assert store.runs.get(job.id).status == "cancelled"
