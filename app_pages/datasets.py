"""Datasets page: bring images in (upload or server folder), look at them, retry an
interrupted ingest, delete them."""

import streamlit as st

from sslviz.core.workspace import SERVER_ROOTS_ENV, server_roots
from sslviz.data import (
    app_retry_problem,
    delete_dataset,
    ingest_server_folder,
    ingest_uploads,
    is_live_ingest,
    reap_ingests,
    reingest,
)
from sslviz.ui.datasets_view import (
    dataset_details,
    datasets_table,
    default_upload_name,
    ingest_report,
    unfinished_notice,
)
from sslviz.ui.resources import get_store
from sslviz.ui.widgets import user_errors

SOURCES = ("Folder", "Zip", "Files", "Server folder")
REFRESH_SECONDS = 2.0  # while another process ingests a dataset

store = get_store()
st.title("Datasets")
reap_ingests(store)  # an ingest killed midway (or lost in an app restart) shows as interrupted
datasets = store.datasets.list()

# --- the next step, while nothing has been trained ------------------------------------------
ready = [d for d in datasets if d.status == "ready"]
if ready and not store.runs.list():
    first = ready[-1]  # the newest: the demo in a fresh workspace, else the user's latest upload
    with st.container(border=True):
        st.markdown(
            f"**{first.name}** is ready: {first.n_images:,} images. Next, train an encoder on it "
            "with a self-supervised pretext task — no labels needed."
        )
        st.page_link(
            "app_pages/train.py",
            label="Train an encoder on it →",
            query_params={"dataset": first.name},
            icon=":material/model_training:",
        )


# --- add a dataset ----------------------------------------------------------------------------
def _progress_bar():
    bar = st.progress(0.0, text="Reading files…")

    def update(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Checked {done:,} of {total:,} files")

    return update


def _finish(report) -> None:
    """Keep the report to show after the rerun, clear the uploader, select the new dataset."""
    st.session_state["ds_report"] = report.to_json()
    st.session_state["ds_upload_gen"] = st.session_state.get("ds_upload_gen", 0) + 1
    # Selected on the rerun, before the picker exists (a retry is clicked below the picker).
    st.session_state["ds_pick_next"] = report.dataset.name
    st.session_state["ds_clear_names"] = True  # the name is taken now: start the next one empty
    st.rerun()


with st.expander(
    "Add a dataset", expanded=len(datasets) <= 1, icon=":material/add_photo_alternate:"
):
    source = st.radio("From", SOURCES, key="ds_source", horizontal=True)
    if st.session_state.pop(
        "ds_clear_names", False
    ):  # set before the fields exist, so they show it
        st.session_state.update(ds_name="", ds_server_name="", ds_server_path="")
    gen = st.session_state.get("ds_upload_gen", 0)  # a new key empties the uploader
    # An interrupted dataset's name is free: ingesting under it replaces the dataset.
    names_taken = {d.name for d in datasets if d.status not in ("interrupted", "failed")}
    names_interrupted = {d.name for d in datasets} - names_taken
    if source == "Server folder":
        roots = server_roots()
        if not roots:
            st.info(
                "Reading folders on the server is off. To allow it, start the app with "
                f"`{SERVER_ROOTS_ENV}` set to the folders it may read, e.g. "
                f"`{SERVER_ROOTS_ENV}=/data/images sslviz app` (several separated by `:`).",
                icon=":material/folder_off:",
            )
        else:
            st.caption("Allowed folders: " + ", ".join(f"`{r}`" for r in roots))
            path = st.text_input(
                "Folder (or .zip) on the server",
                key="ds_server_path",
                placeholder=str(roots[0] / "my-images"),
            )
            name = st.text_input(
                "Dataset name", key="ds_server_name", placeholder="default: the folder's name"
            ).strip()
            if st.button(
                "Ingest folder", key="ds_server_ingest", type="primary", disabled=not path.strip()
            ):
                with user_errors():
                    _finish(
                        ingest_server_folder(
                            store, path.strip(), name or None, progress=_progress_bar()
                        )
                    )
    else:
        if source == "Folder":
            files = st.file_uploader(
                "Folder of images (sub-folders included)",
                accept_multiple_files="directory",
                key=f"ds_upload_folder_{gen}",
            )
        elif source == "Zip":
            one = st.file_uploader("A .zip of images", type=["zip"], key=f"ds_upload_zip_{gen}")
            files = [one] if one else []
        else:
            files = st.file_uploader(
                "Image files", accept_multiple_files=True, key=f"ds_upload_files_{gen}"
            )
        files = files or []
        default = default_upload_name([f.name for f in files])
        name = st.text_input(
            "Dataset name",
            key="ds_name",
            placeholder=f"default: {default}" if default else "name your dataset",
        ).strip() or (default or "")
        if name in names_taken:
            st.warning(f"A dataset named **{name}** exists already: choose another name.")
        elif name in names_interrupted:
            st.info(f"This replaces the interrupted dataset **{name}**.", icon=":material/info:")
        can_ingest = bool(files) and bool(name) and name not in names_taken
        if st.button(
            f"Ingest {len(files):,} file(s)" if files else "Ingest",
            key="ds_ingest",
            type="primary",
            disabled=not can_ingest,
        ):
            with user_errors():
                _finish(
                    ingest_uploads(
                        store, [(f.name, f) for f in files], name, progress=_progress_bar()
                    )
                )
    st.caption(
        "Every file is checked by decoding it; files that are not usable images are "
        "listed with the reason, identical images are kept once."
    )

if "ds_report" in st.session_state:
    ingest_report(st.session_state["ds_report"])

# --- the datasets ---------------------------------------------------------------------------
if not datasets:
    st.info("No datasets yet: add a folder of images above.", icon=":material/info:")
    st.stop()
st.subheader("Your datasets")
datasets_table(datasets, key="ds_table")

by_name = {d.name: d for d in datasets}
if "ds_pick_next" in st.session_state:
    st.session_state["ds_pick"] = st.session_state.pop("ds_pick_next")
if st.session_state.get("ds_pick") not in by_name:
    st.session_state["ds_pick"] = datasets[-1].name  # the newest
dataset = by_name[st.selectbox("Show dataset", list(by_name), key="ds_pick")]
live = is_live_ingest(store, dataset)


@st.fragment(run_every=REFRESH_SECONDS)
def _wait_for_ingest() -> None:
    """Rerun the page once the other process's ingest ends (finished, failed or killed)."""
    reap_ingests(store)
    if store.datasets.get(dataset.id).status != "ingesting":
        st.rerun()


if dataset.status == "ready":
    dataset_details(store, dataset)
else:
    unfinished_notice(store, dataset)
    if live:
        _wait_for_ingest()
    elif problem := app_retry_problem(store, dataset, server_roots()):
        st.caption(problem)  # an upload, a source gone or outside the app's folders: what to do
    elif st.button("Retry the ingest", key="ds_retry", type="primary", icon=":material/replay:"):
        with user_errors():
            _finish(reingest(store, dataset, roots=server_roots(), progress=_progress_bar()))

# --- delete, with a confirmation ------------------------------------------------------------
if st.button(
    f"Delete {dataset.name}…",
    key="ds_delete",
    icon=":material/delete:",
    disabled=live,
    help="Wait for its ingest to finish first." if live else None,
):
    st.session_state["ds_confirm_delete"] = dataset.id
if st.session_state.get("ds_confirm_delete") == dataset.id:
    n_runs = sum(1 for r in store.runs.list() if r.dataset_id == dataset.id)
    what = (
        f"its {dataset.n_images:,} stored images"
        if dataset.status == "ready"
        else "what its unfinished ingest stored"
    )
    st.warning(
        f"Delete **{dataset.name}**: {what}"
        + (f" and its {n_runs} run(s)" if n_runs else "")
        + "? The original files you uploaded or registered are not touched."
    )
    confirm = st.container(horizontal=True)
    if confirm.button("Yes, delete it", key="ds_delete_yes", type="primary"):
        st.session_state.pop("ds_confirm_delete", None)
        with user_errors():
            delete_dataset(store, dataset.id)
            st.session_state.pop("ds_pick", None)
            st.session_state.pop("ds_report", None)
            st.rerun()
    if confirm.button("Keep it", key="ds_delete_no"):
        st.session_state.pop("ds_confirm_delete", None)
        st.rerun()
