"""The Explorer's data checks as jobs (kind ``checks``): the page never computes a kNN graph,
an embedding or a pass of a model over the images in its script; it submits a job, shows its
progress with Cancel, and reruns once the job has stored what the page then only reads.

    if ready(store, dataset, settings, key="ex_table"):   # a finished job, or submits/polls one
        graph = neighbour_checks.cached_graph(store, emb)
"""

from __future__ import annotations

import streamlit as st

from sslviz.results.checks_job import ChecksSettings, job_for, job_request
from sslviz.runner import jobs
from sslviz.runner.progress import fraction_done
from sslviz.store import Dataset, Store
from sslviz.store.rows import ACTIVE_STATUSES
from sslviz.ui.widgets import user_errors

POLL_SECONDS = 1.0


def ready(store: Store, dataset: Dataset, settings: ChecksSettings, *, key: str) -> bool:
    """Whether a job of exactly ``settings`` has finished (its results are stored). Otherwise
    submits one (once: an active one is followed) and shows its progress; False meanwhile."""
    run = job_for(store, dataset, settings)
    if run is not None and run.status == "finished":
        return True
    if run is None or run.status not in ACTIVE_STATUSES:
        if run is not None and run.status == "failed":
            st.caption(f"The last data-check job (#{run.id}) failed: {run.error}")
            if not st.button("Try again", key=f"{key}_retry", icon=":material/replay:"):
                return False
        elif run is not None and not st.button(  # cancelled or interrupted: only on a click
            "Run the data checks", key=f"{key}_restart", icon=":material/play_arrow:"
        ):
            return False
        with user_errors():
            run = jobs.submit(store, job_request(store, dataset, settings), reuse_active=True)
    if run is not None:
        st.fragment(_poll, run_every=POLL_SECONDS)(store, run.id, key)
    return False


def _poll(store: Store, run_id: int, key: str) -> None:
    run = store.runs.get(run_id)
    if run.status not in ACTIVE_STATUSES:
        st.rerun()  # ended: the page reads what it stored (or offers to try again)
    done = fraction_done(run)
    doing = "queued" if run.status == "queued" else f"{done:.0%}"
    st.progress(done, text=f"Data-check job #{run.id} ({doing}): the page updates when it ends.")
    if st.button("Cancel", key=f"{key}_cancel_{run.id}", icon=":material/stop_circle:"):
        with user_errors():
            jobs.cancel(store, run.id)
        st.rerun()
