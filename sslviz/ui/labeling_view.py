"""The labeling page's pieces: pick or start a session, the label bar (active label, counts,
undo, import, names), label selectors on thumbnails, the map selection and the "label these next"
queue. Every change goes straight to the store (``sslviz.fewshot.sessions``); widgets are keyed by
the image's current label, so after an undo or a change from another browser they show the
store's state, not a stale one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st

from sslviz.core.errors import UserError
from sslviz.fewshot import sessions as fs
from sslviz.store import Dataset, Store
from sslviz.store.rows import Session
from sslviz.ui.deep_links import say_missing
from sslviz.ui.map import image_lookup
from sslviz.ui.widgets import user_errors

GALLERY_PAGE = 24
GALLERY_COLUMNS = 6
QUEUE = 12  # suggestions in "label these next"
NONE = "—"  # the selector's "no label" entry


# --- sessions ---------------------------------------------------------------------------------------
def session_picker(store: Store, dataset: Dataset, choices: dict[str, str]) -> Session | None:
    """The session to work on (``?session=ID`` picks it on load and follows it), or None after
    offering to start one."""
    sessions = store.sessions.list(dataset.id)
    wanted = st.query_params.get("session", "")
    ids = [s.id for s in sessions]
    new = -1
    options = [*reversed(ids), new]
    index = options.index(int(wanted)) if wanted.isdigit() and int(wanted) in ids else 0
    names = {s.id: f"{s.name} · {fs.source_name(store, s.source)}" for s in sessions}
    names[new] = "+ New session…"
    key = f"lb_session_{dataset.id}"
    if f"{key}_next" in st.session_state:  # a session just created is the one shown
        st.session_state[key] = st.session_state.pop(f"{key}_next")
    resend_if_renamed(key, [names[o] for o in options])
    chosen = st.selectbox(
        "Labeling session",
        options,
        # the state, once there, decides (a default as well would log Streamlit's warning)
        index=None if key in st.session_state else index,
        format_func=names.get,
        key=key,
        help="A session keeps its labels in the workspace: reload, come back tomorrow or open it "
        "in a second browser, the labels are there.",
    )
    if chosen == new:
        created = new_session_form(store, dataset, choices)
        if created is not None:
            st.query_params["session"] = str(created.id)
            st.session_state[f"{key}_next"] = created.id
            st.rerun()
        return None
    if wanted != str(chosen):
        st.query_params["session"] = str(chosen)
    return store.sessions.get(chosen)


def resend_if_renamed(key: str, shown: list[str]) -> None:
    """Send a selectbox's value to the browser again when the text of its options changed (a
    session switched to another source): the browser otherwise keeps showing the old text."""
    memo = f"{key}_shown"
    if key in st.session_state and st.session_state.get(memo, shown) != shown:
        st.session_state[key] = st.session_state[key]
    st.session_state[memo] = shown


def new_session_form(store: Store, dataset: Dataset, choices: dict[str, str]) -> Session | None:
    with st.form(f"lb_new_{dataset.id}", border=True):
        st.markdown("**Start a labeling session**")
        left, right = st.columns([2, 3])
        name = left.text_input("Name", placeholder="e.g. first pass", key="lb_new_name")
        source = right.selectbox(
            "Predict from",
            list(choices),
            format_func=choices.get,
            key="lb_new_source",
            help="The embedding the predictions use: a trained run's encoder, or a baseline. "
            "You can switch later; the labels stay.",
        )
        if st.form_submit_button("Start labeling", type="primary", icon=":material/label:"):
            with user_errors():
                return fs.create_session(store, dataset, source, name=name.strip() or None)
    return None


def session_from_url(store: Store) -> Session | None:
    """The session named by ``?session=ID`` if it exists (so its dataset can be preselected)."""
    wanted = st.query_params.get("session", "")
    if not wanted:
        return None
    try:
        return store.sessions.get(int(wanted))
    except (UserError, ValueError):
        say_missing(f"labeling session {wanted!r}")
        return None


# --- the label bar ----------------------------------------------------------------------------------
def label_bar(store: Store, session: Session) -> str | None:
    """Active label, counts per label, undo; returns the active label name (None if none yet)."""
    names = store.sessions.label_names(session.id)
    left, middle, right = st.columns([2, 2, 1], vertical_alignment="bottom")
    with left:
        options = [n.name for n in names]
        key = f"lb_active_{session.id}"
        if f"{key}_next" in st.session_state:  # a name just added becomes the active one
            st.session_state[key] = st.session_state.pop(f"{key}_next")
        if st.session_state.get(key) not in options:
            st.session_state.pop(key, None)
        active = st.selectbox(
            "Active label",
            options,
            index=None if key in st.session_state or not options else len(options) - 1,
            key=key,
            placeholder="add a label name →",
            help="What the buttons on thumbnails and the map selection give.",
        )
    with middle, st.form(f"lb_add_{session.id}", clear_on_submit=True, border=False):
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        new = a.text_input(
            "New label name", key=f"lb_new_label_{session.id}", placeholder="e.g. cat"
        )
        if b.form_submit_button("Add", icon=":material/add:") and new.strip():
            with user_errors():
                added = store.sessions.add_label_name(session.id, new)
                st.session_state[f"{key}_next"] = added.name
                st.rerun()
    with right:
        last = store.sessions.actions(session.id, limit=1)
        if st.button(
            "Undo",
            key=f"lb_undo_{session.id}",
            icon=":material/undo:",
            disabled=not last,
            help=f"Take back: {last[0].description}" if last else "Nothing to undo yet.",
            width="stretch",
        ):
            done = fs.undo(store, session.id)
            if done:
                st.toast(f"Undone: {done.description}", icon=":material/undo:")
            st.rerun()
    counts(names)
    return active


def counts(names: Sequence[Any]) -> None:
    if not names:
        st.caption("No labels yet: add a label name, then give it to images below.")
        return
    total = sum(n.count for n in names)
    chips = " · ".join(f"**{n.name}** {n.count}" for n in names)
    st.markdown(f"{total} labeled — {chips}")


def manage_names(store: Store, session: Session) -> None:
    """Rename, merge or delete label names; import a labels CSV. Each is one undoable action."""
    names = [n.name for n in store.sessions.label_names(session.id)]
    with st.expander("Label names and import", icon=":material/edit:"):
        rename, merge, delete = st.columns(3)
        with rename, st.form(f"lb_rename_{session.id}", border=False):
            old = st.selectbox("Rename", names, key=f"lb_rn_old_{session.id}")
            new = st.text_input("to", key=f"lb_rn_new_{session.id}")
            if st.form_submit_button("Rename") and old and new.strip():
                with user_errors():
                    store.sessions.rename_label(session.id, old, new)
                    st.rerun()
        with merge, st.form(f"lb_merge_{session.id}", border=False):
            source = st.selectbox("Merge", names, key=f"lb_mg_a_{session.id}")
            target = st.selectbox(
                "into",
                names,
                index=min(1, len(names) - 1) if names else None,
                key=f"lb_mg_b_{session.id}",
            )
            if st.form_submit_button("Merge") and source and target and source != target:
                with user_errors():
                    store.sessions.merge_labels(session.id, source, target)
                    st.rerun()
        with delete, st.form(f"lb_delete_{session.id}", border=False):
            gone = st.selectbox("Delete", names, key=f"lb_del_{session.id}")
            st.caption("Its images lose the label (undo brings it back).")
            if st.form_submit_button("Delete") and gone:
                with user_errors():
                    store.sessions.delete_label(session.id, gone)
                    st.rerun()
        upload = st.file_uploader(
            "Import labels from a CSV (header path,label)",
            type=["csv"],
            key=f"lb_import_{session.id}",
        )
        if upload is not None and st.button("Import", key=f"lb_import_go_{session.id}"):
            with user_errors():
                changed = fs.import_labels(store, session.id, upload.getvalue())
                st.toast(f"Imported: {changed} images labeled", icon=":material/upload:")
                st.rerun()


# --- labeling images ----------------------------------------------------------------------------------
def _selector_changed(
    store: Store, session_id: int, image_id: int, key: str, shown: str | None
) -> None:
    # A selector drawn before the store changed (an import, another tab, a fragment that did not
    # rerun) must not write its stale value over the newer label: act only on the label it showed.
    if store.sessions.label_of(session_id).get(image_id) != shown:
        return
    value = st.session_state.get(key)
    if value == NONE or value is None:
        fs.unlabel_images(store, session_id, [image_id])
    else:
        fs.label_images(store, session_id, [image_id], value)


def label_selector(
    store: Store,
    session: Session,
    image_id: int,
    current: str | None,
    names: list[str],
    *,
    key: str,
    placeholder: str | None = None,
) -> None:
    """A compact select under a thumbnail: choosing a name labels the image at once, "—" takes
    the label off. Keyed by the current label, so it always shows what the store holds."""
    options = [NONE, *names]
    widget = f"{key}_{image_id}_{hashlib.blake2b(str(current).encode(), digest_size=4).hexdigest()}"
    st.selectbox(
        "label",
        options,
        index=options.index(current) if current in options else (None if placeholder else 0),
        key=widget,
        label_visibility="collapsed",
        placeholder=placeholder or NONE,
        on_change=_selector_changed,
        args=(store, session.id, int(image_id), widget, current),
    )


def thumbnails_with_selectors(
    store: Store,
    session: Session,
    image_ids: Sequence[int],
    *,
    key: str,
    captions: Sequence[str] | None = None,
    placeholder: str | None = None,
    columns: int = GALLERY_COLUMNS,
) -> None:
    """Thumbnails in rows, each with its path (and caption) and a label selector."""
    lookup = image_lookup(store, session.dataset_id)
    labels = store.sessions.label_of(session.id)
    names = [n.name for n in store.sessions.label_names(session.id)]
    ids = np.asarray(image_ids, dtype=np.int64)
    rows = lookup.rows(ids)
    for start in range(0, len(rows), columns):
        for i, column in enumerate(st.columns(columns)):
            if start + i >= len(rows):
                break
            row, image_id = rows[start + i], int(lookup.ids[rows[start + i]])
            text = str(lookup.paths[row])
            if captions is not None:
                text += f" · {captions[start + i]}"
            with column:
                st.image(lookup.thumbs[row], caption=text, width="stretch")
                label_selector(
                    store,
                    session,
                    image_id,
                    labels.get(image_id),
                    names,
                    key=key,
                    placeholder=placeholder,
                )


def gallery(store: Store, session: Session) -> None:
    """All images, paged, filterable by label; a selector under each thumbnail."""
    lookup = image_lookup(store, session.dataset_id)
    labels = store.sessions.label_of(session.id)
    names = [n.name for n in store.sessions.label_names(session.id)]
    show = (
        st.segmented_control(
            "Show",
            ["all", "unlabeled", "labeled", *names],
            default="all",
            key=f"lb_filter_{session.id}",
        )
        or "all"
    )
    ids = lookup.ids[np.argsort(lookup.paths)]  # path order, like the Datasets page
    if show == "unlabeled":
        ids = np.array([i for i in ids if i not in labels], dtype=np.int64)
    elif show == "labeled":
        ids = np.array([i for i in ids if i in labels], dtype=np.int64)
    elif show != "all":
        ids = np.array([i for i in ids if labels.get(int(i)) == show], dtype=np.int64)
    if not len(ids):
        st.caption("No images here.")
        return
    pages = math.ceil(len(ids) / GALLERY_PAGE)
    page = (
        st.pagination(pages, key=f"lb_page_{session.id}_{show}", max_visible_pages=9)
        if pages > 1
        else 1
    )
    first = (min(page, pages) - 1) * GALLERY_PAGE
    st.caption(
        f"Images {first + 1:,}–{first + min(GALLERY_PAGE, len(ids) - first):,} of "
        f"{len(ids):,}. Pick a label under an image: it is saved at once."
    )
    thumbnails_with_selectors(store, session, ids[first : first + GALLERY_PAGE], key="lb_g")


def selection_actions(
    store: Store, session: Session, selected: np.ndarray, active: str | None
) -> None:
    """Label (or unlabel) every image selected on the map, as one undoable action."""
    if not len(selected):
        st.caption(
            "Select points on the map (box or lasso in its toolbar, or click one) to "
            "label them all at once."
        )
        return
    left, right = st.columns(2)
    if left.button(
        f"Label {len(selected):,} selected as “{active}”" if active else "Add a label name first",
        key=f"lb_sel_label_{session.id}",
        type="primary",
        disabled=active is None,
        icon=":material/label:",
        width="stretch",
    ):
        changed = fs.label_images(store, session.id, [int(i) for i in selected], active)
        st.toast(f"{changed} images labeled “{active}”", icon=":material/label:")
        st.rerun()
    if right.button(
        f"Unlabel {len(selected):,} selected",
        key=f"lb_sel_unlabel_{session.id}",
        icon=":material/label_off:",
        width="stretch",
    ):
        fs.unlabel_images(store, session.id, [int(i) for i in selected])
        st.rerun()
