"""Runs page: every run from the store, a live panel for one, curves of several overlaid."""

import streamlit as st

from sslviz.runner import jobs
from sslviz.store.rows import ACTIVE_STATUSES
from sslviz.ui.resources import get_store
from sslviz.ui.run_panel import compare_runs, render_run
from sslviz.ui.runs_view import opening_run, run_label, runs_table
from sslviz.ui.widgets import user_errors

REFRESH_SECONDS = 2.0

store = get_store()
st.title("Runs")
with user_errors():
    jobs.schedule(store)  # reap dead workers, start queued runs whose device is free

if not store.runs.list():
    st.info("No runs yet: start one on the Train page.", icon=":material/info:")
    st.page_link("app_pages/train.py", label="Train an encoder →", icon=":material/model_training:")
    st.stop()


def _selected_run(ids: list[int], labels: dict[int, str], default: int) -> int:
    """The run picked in the selectbox (``default`` at first); ``?run=ID`` picks it on load (kept in
    sync, so a reload or a shared link shows the same run). A link on this page (a fine-tune's
    "Started from run #3") changes the URL to another run than the one this page wrote there last:
    that run is then picked, though the selectbox already has a value."""
    wanted = st.query_params.get("run", "")
    known = wanted.isdigit() and int(wanted) in ids
    followed = (
        known and "runs_pick" in st.session_state and wanted != st.session_state.get("runs_url")
    )
    if followed:
        st.session_state["runs_pick"] = int(wanted)
    first = int(wanted) if known else default
    index = ids.index(first) if "runs_pick" not in st.session_state else 0
    chosen = st.selectbox("Run", ids, index=index, key="runs_pick", format_func=labels.get)
    # Setting it unchanged still sends the browser a message: only when it differs, or after a
    # link to this page (whose new query string the browser's address bar doesn't show by itself).
    if wanted != str(chosen) or followed:
        st.query_params["run"] = str(chosen)
    st.session_state["runs_url"] = str(chosen)
    return chosen


def live(polling: bool) -> None:
    """Table and selected run, re-read from the store on every tick while a run is active."""
    if polling:
        with user_errors():
            jobs.schedule(store)
    runs = store.runs.list()
    active = any(r.status in ACTIVE_STATUSES for r in runs)
    if polling and not active:
        st.rerun()  # the last active run ended: a full rerun stops the polling
    if not runs:
        st.rerun()
    names = {d.id: d.name for d in store.datasets.list()}
    runs_table(runs, names, key="runs_table")
    ids = [r.id for r in sorted(runs, key=lambda r: r.id, reverse=True)]
    chosen = _selected_run(ids, {r.id: run_label(r, names) for r in runs}, opening_run(runs))
    with st.container(border=True):
        render_run(store, next(r for r in runs if r.id == chosen), names)
    st.divider()
    compare_runs(store, runs, names)


polling = any(r.status in ACTIVE_STATUSES for r in store.runs.list())
st.fragment(live, run_every=REFRESH_SECONDS if polling else None)(polling)
