"""The pages' long work, asked of the background and never done in a script: the labeling page's
predictions after each label (cross-validation and the fit: seconds, tens of seconds on a large
dataset) and the embedding of a small dataset, for the labeling page and the Explorer (a large
one is a map job: ``explorer_view``).

    emb = embedding_or_progress(store, dataset, source, layer, grid, key=...)  # None meanwhile
    result = session_predictions(store, session, emb, method, labels, suggested, umap=umap)

Both run in the app's work process (``work_process``: one child per server, which keeps what a
prediction derives from the embedding alone), one request at a time on one background thread
(``background_work.Lane``). A page shows the session's last predictions with "updating…" while
the new ones are computed, polls with a fragment and draws the new ones once they are there.
Requests of one session supersede its requests still waiting: after a burst of label clicks only
the last labels are predicted. Failures are said on the page, with their message.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import streamlit as st

from sslviz.fewshot.predict import PredictResult
from sslviz.maps.embed import cached_embeddings, source_version
from sslviz.store import Dataset, Store
from sslviz.store.rows import Session
from sslviz.ui.background_work import Lane, WorkState
from sslviz.ui.work_process import WorkProcess

POLL_SECONDS = 0.5  # how often a waiting page looks whether its work ended
KEEP = 8  # ended requests remembered (their predictions held) besides each session's last


@st.cache_resource(show_spinner=False)
def _process() -> WorkProcess:
    return WorkProcess()


@st.cache_resource(show_spinner=False)
def _lane() -> Lane:
    return Lane("sslviz-labeling", keep=KEEP)


def _key(*parts: Any) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _stamp(file: Any) -> int:
    """The embedding file's modification time: a file written again is another embedding."""
    try:
        return os.stat(file).st_mtime_ns
    except (OSError, TypeError):
        return 0


def _in_child(task: str, args: dict[str, Any]) -> Any:
    def work(state: WorkState) -> Any:
        def stage(text: str) -> None:
            state.stage = text

        return _process().call(task, args, on_stage=stage)

    return work


# --- predictions ----------------------------------------------------------------------------------
def request_prediction(
    store: Store,
    session: Session,
    emb: Any,
    *,
    method: str,
    labels: dict[str, str],
    suggested: tuple[str, ...],
    umap: bool,
    retry: bool = False,
) -> tuple[str, WorkState]:
    """Ask for the session's predictions from these labels (what ``sslviz predict`` gives);
    its key and state at once. Its session's requests still queued are dropped."""
    args = {
        "root": str(store.workspace.root),
        "dataset_id": session.dataset_id,
        "source": emb.source,
        "layer": emb.layer,
        "grid": emb.grid,
        "method": method,
        "labels": sorted(labels.items()),
        "suggested": sorted(suggested),
        "umap": umap,
    }
    key = _key("predict", args, str(emb.file), _stamp(emb.file))
    slot = f"{store.workspace.root}|session {session.id}"
    return key, _lane().submit(key, _in_child("predict", args), retry=retry, slot=slot)


def session_predictions(
    store: Store,
    session: Session,
    emb: Any,
    method: str,
    labels: dict[str, str],
    suggested: tuple[str, ...],
    *,
    umap: bool,
) -> PredictResult | None:
    """The predictions to draw: these labels' once computed; meanwhile the session's last ones
    (on the same embedding) under a poll that says "updating…" and draws the page again when
    the new ones are there; None before the first. A failure is said with a retry button."""
    asked = {"method": method, "labels": labels, "suggested": suggested, "umap": umap}
    key, state = request_prediction(store, session, emb, **asked)
    ended = state.done and not state.superseded  # superseded meanwhile: the poll asks anew
    if ended and state.error is None:
        return state.result
    if ended:
        st.error(f"The predictions could not be computed: {state.error}", icon=":material/error:")
        if st.button("Try again", key=f"lb_predict_retry_{session.id}", icon=":material/replay:"):
            request_prediction(store, session, emb, **asked, retry=True)
            st.rerun()
        return None
    last = _lane().last(f"{store.workspace.root}|session {session.id}")
    shown = None if last is None else last.result
    if shown is not None and (shown.source, shown.layer, shown.grid) != (
        emb.source,
        emb.layer,
        emb.grid,
    ):
        shown = None  # another embedding's: its rows and classes may not fit this one
    st.fragment(_wait_for_prediction, run_every=POLL_SECONDS)(key, shown is not None)
    return shown


def _wait_for_prediction(key: str, showing_older: bool) -> None:
    state = _lane().peek(key)
    if state is None or state.done:  # ended (or superseded by newer labels): the page again
        st.rerun()
        return
    seconds = time.monotonic() - state.started
    below = " The predictions below are from before your last label." if showing_older else ""
    with st.status(f"Updating the predictions… ({state.stage}, {seconds:.0f} s)", state="running"):
        st.caption(
            "Computed in the background: keep labeling, the page shows the new predictions "
            f"by itself when they are there.{below}"
        )


# --- the embedding ----------------------------------------------------------------------------------
def request_embedding(
    store: Store,
    dataset: Dataset,
    source: str,
    layer: str | None,
    grid: int | None,
    *,
    retry: bool = False,
) -> WorkState:
    """Ask for ``source``'s embedding of a small dataset to be computed in the work process and
    cached in the workspace; its state at once."""
    args = {
        "root": str(store.workspace.root),
        "dataset_id": dataset.id,
        "source": source,
        "layer": layer,
        "grid": grid,
    }
    key = _key("embed", args, source_version(store, source))  # a new checkpoint: again
    return _lane().submit(key, _in_child("embed", args), retry=retry)


def embedding_or_progress(
    store: Store, dataset: Dataset, source: str, layer: str | None, grid: int | None, *, key: str
) -> Any | None:
    """``source``'s embedding if it is cached; else (a small dataset) asked of the work process,
    its progress shown, and None until it is there (then the page draws again). ``key``: the
    widgets' key prefix."""
    found = cached_embeddings(store, dataset, source, layer=layer, grid=grid)
    if found is not None:
        return found
    ask = (store, dataset, source, layer, grid)
    state = request_embedding(*ask)
    if state.done and state.error is None:  # embedded here once, its file gone since
        state = request_embedding(*ask, retry=True)
    if state.done:
        st.error(f"Embedding the images failed: {state.error}", icon=":material/error:")
        if st.button("Try again", key=f"{key}_embed_retry", icon=":material/replay:"):
            request_embedding(*ask, retry=True)
            st.rerun()
        return None
    st.fragment(_wait_for_embedding, run_every=POLL_SECONDS)(ask)
    return None


def _wait_for_embedding(ask: tuple[Any, ...]) -> None:
    state = request_embedding(*ask)  # the one request, shared
    if state.done:
        st.rerun()
        return
    seconds = time.monotonic() - state.started
    with st.status(
        f"Embedding {ask[1].n_images:,} images… ({state.stage}, {seconds:.0f} s)",
        state="running",
    ):
        st.caption(
            "In the background, once per source and layer: the page goes on when it is done."
        )
