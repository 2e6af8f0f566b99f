"""Process-wide resources of the app: one store per workspace, and the start-up done once."""

from __future__ import annotations

import streamlit as st

from sslviz.errors import UserError
from sslviz.store import Store
from sslviz.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _store_for(home: str) -> Store:
    # One connection shared by every session and thread: the store's connection is opened with
    # check_same_thread=False and serialises calls with a lock.
    return Store.open(home)


def get_store() -> Store:
    """The store of the workspace named by ``$SSLVIZ_HOME``.

    Keyed by the workspace path rather than cached bare, so a process that changes
    ``SSLVIZ_HOME`` (tests do) never gets another workspace's store.
    """
    return _store_for(str(Workspace.from_env().root))


@st.cache_resource(show_spinner="Preparing the demo dataset…")
def _start(home: str) -> str | None:
    """Ingest the bundled demo dataset into an empty workspace; the problem, if any."""
    from sslviz.data import ensure_demo

    try:
        ensure_demo(_store_for(home))
    except UserError as error:
        return str(error)
    return None


def startup() -> None:
    """Run the one-time start-up for this workspace (cached: later calls are free)."""
    problem = _start(str(Workspace.from_env().root))
    if problem:
        st.warning(f"The demo dataset could not be prepared: {problem}")
