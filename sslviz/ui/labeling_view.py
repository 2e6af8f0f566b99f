"""The labeling page's pieces: pick or start a session, the label bar (active label, counts,
undo, import, names), label selectors on thumbnails, the map selection and the "label these next"
queue. Every change goes straight to the store (``sslviz.fewshot.labeling``); widgets are keyed by
the image's current label, so after an undo or a change from another browser they show the
store's state, not a stale one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st

from sslviz.core.errors import UserError
from sslviz.fewshot import labeling as fs
from sslviz.store import Dataset, Store
from sslviz.store.rows import Session
from sslviz.ui.deep_links import say_missing
from sslviz.ui.map import image_lookup
from sslviz.ui.widgets import user_errors

GALLERY_PAGE = 24
GALLERY_COLUMNS = 6
QUEUE = 12  # suggestions in "label these next"
QUEUE_KEY = "lb_next"  # the queue's buttons: their labels are recorded as suggested


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
ERASE = "✕ remove label"  # the brush that takes a label off


def brush_key(session_id: int) -> str:
    return f"lb_active_{session_id}"


def brush(session_id: int) -> str | None:
    """The label a click on an image gives (``ERASE``: takes it off; None: no names yet)."""
    return st.session_state.get(brush_key(session_id))


def label_bar(store: Store, session: Session) -> str | None:
    """Counts per label, the brush (pick a label once, then click images), a new name, undo;
    returns the brush."""
    names = store.sessions.label_names(session.id)
    counts(names)
    left, middle, right = st.columns([4, 2, 1], vertical_alignment="bottom")
    with left:
        options = [n.name for n in names]
        key = brush_key(session.id)
        if f"{key}_next" in st.session_state:  # a name just added becomes the brush
            st.session_state[key] = st.session_state.pop(f"{key}_next")
        if st.session_state.get(key) not in [*options, ERASE]:
            st.session_state.pop(key, None)
        if options:
            chosen = st.segmented_control(
                "Click an image to label it",
                [*options, ERASE],
                default=None if key in st.session_state else options[-1],
                required=True,  # a click on the picked label keeps it (the buttons need one)
                key=key,
                help="Pick a label once, then click the button under each image that has it "
                "(in the gallery, the queue or the predictions); a second click takes it off. "
                "The map selection gets it too.",
            )
        else:
            chosen = None
            st.caption("Add a label name to start: then pick it here and click images.")
    with middle, st.form(f"lb_add_{session.id}", clear_on_submit=True, border=False):
        a, b = st.columns([2, 1], vertical_alignment="bottom")  # room for "+ Add"
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
    return chosen


def counts(names: Sequence[Any]) -> None:
    if not names:
        st.caption("No labels yet: add a label name, then give it to images below.")
        return
    total = sum(n.count for n in names)
    chips = " · ".join(f"**{n.name}** {n.count}" for n in names)
    st.markdown(f"{total} labeled — {chips}")


def manage_names(store: Store, session: Session) -> None:
    """Rename, merge or delete label names; import a labels CSV. Each is one undoable action.
    Drawn only while open: closed, a label's rerun sends none of its ~20 elements."""
    box = st.expander(
        "Label names and import",
        icon=":material/edit:",
        key=f"lb_names_{session.id}",
        on_change="rerun",
    )
    if not box.open:
        return
    names = [n.name for n in store.sessions.label_names(session.id)]
    with box:
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
def _clicked(
    store: Store, session_id: int, image_id: int, shown: str | None, suggested: bool
) -> None:
    # A button drawn before the store changed (an import, another tab) must not act on a label
    # it did not show: act only while the image still has the label the button showed.
    if store.sessions.label_of(session_id).get(image_id) != shown:
        return
    given = brush(session_id)
    if given is None:
        return
    if given in (ERASE, shown):  # the eraser, or a second click: take it off
        fs.unlabel_images(store, session_id, [image_id])
    else:
        fs.label_images(store, session_id, [image_id], given, suggested=suggested)


def button_text(current: str | None, given: str | None) -> tuple[str, bool]:
    """What the button under an image says, and whether it is disabled."""
    if given is None:
        return (current or "unlabeled"), True
    if given == ERASE:
        return (f"✕ {current}", False) if current else ("unlabeled", True)
    if current == given:
        return f"✓ {current}", False
    return (f"{current} → {given}" if current else f"+ {given}"), False


def label_button(
    store: Store, session: Session, image_id: int, current: str | None, *, key: str
) -> None:
    """The click-to-label control under a thumbnail: gives the brush's label (a second click,
    or the eraser, takes it off). A label given in the "label these next" queue (``key``
    ``lb_next``) is recorded as suggested: CV on mostly such labels is optimistic."""
    given = brush(session.id)
    text, disabled = button_text(current, given)
    st.button(
        text,
        key=f"{key}_{image_id}",
        on_click=_clicked,
        args=(store, session.id, int(image_id), current, key == QUEUE_KEY),
        disabled=disabled,
        type="primary" if current is not None and current == given else "secondary",
        width="stretch",
        help=None if given is not None else "Add a label name first.",
    )


def thumbnails_with_buttons(
    store: Store,
    session: Session,
    image_ids: Sequence[int],
    *,
    key: str,
    captions: Sequence[str] | None = None,
    columns: int = GALLERY_COLUMNS,
) -> None:
    """Thumbnails in rows, each with its path (and caption) and a click-to-label button."""
    lookup = image_lookup(store, session.dataset_id)
    labels = store.sessions.label_of(session.id)
    ids, first = np.unique(np.asarray(image_ids, dtype=np.int64), return_index=True)
    keep = np.sort(first)  # each image once (one key each), in the order given
    ids = np.asarray(image_ids, dtype=np.int64)[keep]
    texts = [captions[k] for k in keep] if captions is not None else None
    rows = lookup.rows(ids)
    for start in range(0, len(rows), columns):
        for i, column in enumerate(st.columns(columns)):
            if start + i >= len(rows):
                break
            row, image_id = rows[start + i], int(ids[start + i])
            text = str(lookup.paths[row])
            if texts is not None:
                text += f" · {texts[start + i]}"
            with column:
                st.image(lookup.thumbs[row], caption=text, width="stretch")
                label_button(store, session, image_id, labels.get(image_id), key=key)


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
        f"{len(ids):,}. Click the button under an image to give it the label picked above: it "
        "is saved at once."
    )
    thumbnails_with_buttons(store, session, ids[first : first + GALLERY_PAGE], key="lb_g")


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
