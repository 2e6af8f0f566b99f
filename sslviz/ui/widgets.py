"""Small widgets several pages share: error boundary, status badge, dataset picker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from sslviz.core.errors import UserError
from sslviz.store import Dataset, Store
from sslviz.ui.deep_links import say_missing

# status -> (badge colour, material icon). Icons, not emoji: servers and some desktops lack an
# emoji font and would draw empty boxes.
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "queued": ("gray", ":material/schedule:"),
    "running": ("blue", ":material/autorenew:"),
    "finished": ("green", ":material/check_circle:"),
    "failed": ("red", ":material/error:"),
    "cancelled": ("orange", ":material/stop_circle:"),
    "interrupted": ("orange", ":material/warning:"),
}


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a library ``UserError`` as one red line instead of a traceback; the page goes on."""
    try:
        yield
    except UserError as error:
        st.error(str(error), icon=":material/error:")


def status_badge(status: str) -> None:
    color, icon = STATUS_STYLE.get(status, ("gray", None))
    st.badge(status, icon=icon, color=color)


def dataset_picker(
    store: Store,
    *,
    key: str,
    label: str = "Dataset",
    preferred: str | None = None,
    param: str | None = None,
) -> Dataset | None:
    """A selectbox over the workspace's ready datasets (``preferred`` by name first, if present).
    With ``param``, the URL's ``?param=NAME`` is the preferred one, and the URL follows the
    choice (a name that doesn't exist is said once and dropped from the URL).

    Returns None (after saying what to do) when there is no ready dataset.
    """
    if param is not None:
        preferred = st.query_params.get(param)
    datasets = [d for d in store.datasets.list() if d.status == "ready"]
    if not datasets:
        st.info("No dataset yet: add one on the Datasets page first.", icon=":material/info:")
        st.page_link(
            "app_pages/datasets.py", label="Go to Datasets", icon=":material/photo_library:"
        )
        return None
    names = [d.name for d in datasets]
    if key in st.session_state and st.session_state[key] not in names:
        del st.session_state[key]  # the remembered dataset was deleted meanwhile
    index = names.index(preferred) if preferred in names else 0
    if preferred and preferred not in names and key not in st.session_state:
        say_missing(f"dataset {preferred!r}", instead=names[0])
    by_name = {d.name: d for d in datasets}
    name = st.selectbox(
        label,
        names,
        index=index,
        key=key,
        format_func=lambda n: f"{n}  ({by_name[n].n_images:,} images)",
    )
    if param is not None and param in st.query_params and st.query_params[param] != name:
        if st.query_params[param] in names:
            st.query_params[param] = name  # the URL follows the choice
        else:
            del st.query_params[param]  # a link to a dataset that doesn't exist
    return by_name[name]
