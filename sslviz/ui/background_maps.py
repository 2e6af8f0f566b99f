"""UMAP maps of small datasets, fitted in one background thread of the app, never in a page.

    state = background_maps.request(store, dataset.id, source, **project_args)
    state.done, state.stage, state.error      # a page polls this (a fragment) and redraws once done
    background_maps.peek(store, dataset.id, source, **project_args)   # the state, never a new fit
    background_maps.request_coords(store, emb)   # the few-shot 10-D UMAP of an embedding, alike
    umap = background_maps.coords_ready(store, emb, method, labels)   # False: being fitted

A page shows the PCA map of the embedding at once (``sslviz.maps.project.preview_projection``)
and asks for the UMAP map here; the fit waits for the start-up warm-up to finish compiling UMAP's
numba code (on a new machine a minute; it would be paid twice if a second process compiled too),
then runs in a child process (``project.project`` with ``should_stop``), which loads the compiled
code from the workspace's numba cache: the server's GIL is never held by a fit. Large datasets go through the
job runner instead (``explorer_view``): their fit takes minutes and must survive a restart.

One worker thread per server process (a ``background_work.Lane``): maps are fitted one at a time
(2 cores: two fits at once only make both later), each once (requests for a map already queued
share it).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from sslviz.fewshot import geometry
from sslviz.fewshot.predict import umap_needed
from sslviz.maps import project
from sslviz.store import Store
from sslviz.ui.background_work import Lane, WorkState
from sslviz.ui.resources import wait_for_compile, warm_up_stage

POLL_SECONDS = 1.0  # how often a page looks whether the fit it waits for is there
MapState = WorkState  # where a requested map is (``background_work.WorkState``)


def _never() -> bool:
    return False


def _after_warm_up(fit: Any) -> Any:
    """``fit`` as a lane's work: it waits for the start-up warm-up to finish compiling UMAP
    (else a second process would compile it too), then runs with its stage said."""

    def work(state: WorkState) -> None:
        if warm_up_stage() != "ready":
            state.stage = f"waiting for the start-up warm-up: {warm_up_stage()}"
            wait_for_compile()
        state.stage = "fitting UMAP"
        fit()

    return work


@st.cache_resource(show_spinner=False)
def _builder() -> Lane:
    return Lane("sslviz-maps")


def request(
    store: Store, dataset_id: int, source: str, *, retry: bool = False, **options: Any
) -> MapState:
    """Ask for the UMAP map of ``source`` on a dataset (``options``: ``MapSettings`` fields) to
    be fitted in the background and cached in the workspace; returns its state at once. A fit
    that ended is fitted again only with ``retry`` (a person asked: polling never retries)."""
    file = project.map_request(store, dataset_id, source, **options).file

    def work() -> None:
        # should_stop makes the UMAP fit run in a child process (never holding the server's GIL)
        project.project(store, dataset_id, source, should_stop=_never, **options)

    return _builder().submit(str(file), _after_warm_up(work), retry=retry)


def peek(store: Store, dataset_id: int, source: str, **options: Any) -> MapState | None:
    """The state of that map's fit if one was asked for in this server, else None (never
    starts one: what a poll reads)."""
    file = project.map_request(store, dataset_id, source, **options).file
    return _builder().peek(str(file))


def request_coords(store: Store, emb: Any, *, retry: bool = False) -> MapState:
    """Ask for the 10-D UMAP the few-shot predictors use (``fewshot.geometry``) of ``emb`` to be
    fitted the same way (a child process, one fit at a time) and cached beside the embedding;
    its state at once. The labeling page's first prediction waits for it instead of fitting it
    in its script. A fit that ended is fitted again only with ``retry``."""
    file = geometry.cache_file(store, emb)

    def work() -> None:
        geometry.coords_for(store, emb, should_stop=_never)

    return _builder().submit(str(file), _after_warm_up(work), retry=retry)


def coords_ready(store: Store, emb: Any, method: str, labels: dict[str, str]) -> bool:
    """Whether the prediction may use the UMAP methods in the script: it fits no UMAP
    (``predict.umap_needed``), or the embedding's UMAP is cached. Else that fit is asked of the
    background (a child process: numba would hold the server's GIL), its progress shown until it
    is there (then the page reruns), and False: predict without the UMAP methods meanwhile."""
    if not umap_needed(method, labels, len(emb.paths)) or geometry.cache_file(store, emb) is None:
        return True
    if geometry.cached_coords(store, emb) is not None:
        return True
    state = request_coords(store, emb)
    if state.done and not state.error:  # fitted here once, its file gone since: fit it again
        state = request_coords(store, emb, retry=True)
    if state.done and state.error:
        st.error(f"Fitting the UMAP the predictions need failed: {state.error}")
        if st.button("Try again", key="lb_umap_retry", icon=":material/replay:"):
            request_coords(store, emb, retry=True)
            st.rerun()
        return False
    st.fragment(_wait_for_umap, run_every=POLL_SECONDS)(store, emb)
    return False


def _wait_for_umap(store: Store, emb: Any) -> None:
    state = request_coords(store, emb)  # the one fit, shared
    if state.done:
        st.rerun()  # the page predicts with it now (or says why it failed)
    seconds = time.monotonic() - state.started
    st.info(
        f"Fitting a UMAP of this embedding for the predictions ({state.stage}, {seconds:.0f} s): "
        "once per embedding, in the background. Until it is there, auto chooses among the "
        "methods that need none; the predictions are updated when it is.",
        icon=":material/hourglass_top:",
    )
