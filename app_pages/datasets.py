"""Datasets page: bring images in (upload or server folder), look at them, finish an
interrupted ingest, delete them.

An ingest is a job of the one runner (kind ``ingest``): this page stages an upload to disk,
submits, shows the job's progress and reads the result from the store, so leaving the page,
closing the tab or restarting the app loses nothing."""

import streamlit as st

from sslviz.api import submit_ingest
from sslviz.core.workspace import SERVER_ROOTS_ENV, server_roots
from sslviz.data import (
    app_retry_problem,
    delete_dataset,
    is_live_ingest,
    reap_ingests,
    stage_uploads,
)
from sslviz.runner import jobs
from sslviz.ui.datasets_view import (
    dataset_details,
    datasets_table,
    default_upload_name,
    ingest_progress,
    ingest_report,
    retry_ingest,
    unfinished_notice,
)
from sslviz.ui.resources import get_store
from sslviz.ui.widgets import user_errors

SOURCES = ("Folder", "Zip", "Files", "Server folder")

store = get_store()
st.title("Datasets")
with user_errors():
    jobs.schedule(store)  # reap dead workers (an ingest job's too), start queued jobs
reap_ingests(store)  # an ingest killed midway shows as interrupted
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
def _submitted(run) -> None:
    """Follow the new ingest job: clear the uploader, select its dataset, report it when done."""
    name = store.datasets.get(run.dataset_id).name
    st.session_state["ds_report_for"] = name  # its report is shown once it is ready
    st.session_state["ds_upload_gen"] = st.session_state.get("ds_upload_gen", 0) + 1
    # Selected on the rerun, before the picker exists (a retry is clicked below the picker).
    st.session_state["ds_pick_next"] = name
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
                    _submitted(submit_ingest(store, [path.strip()], name or None, roots=roots))
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
                # copied to the workspace in blocks, then ingested by a job
                staged = stage_uploads(store.workspace.root, [(f.name, f) for f in files])
                _submitted(submit_ingest(store, name=name, staged=staged))
    st.caption(
        "Every file is checked by decoding it; files that are not usable images are "
        "listed with the reason, identical images are kept once."
    )

reported = st.session_state.get("ds_report_for")
if reported in {d.name for d in datasets if d.status == "ready"}:
    ingest_report(store, store.datasets.get_by_name(reported))

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

if dataset.status == "ready":
    dataset_details(store, dataset)
else:
    unfinished_notice(store, dataset)
    if live:
        ingest_progress(store, dataset)  # polls; reruns the page once the ingest has ended
    elif problem := app_retry_problem(store, dataset, server_roots()):
        st.caption(problem)  # an upload, a source gone or outside the app's folders: what to do
    elif st.button("Finish the ingest", key="ds_retry", type="primary", icon=":material/replay:"):
        with user_errors():
            _submitted(retry_ingest(store, dataset))

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
            st.session_state.pop("ds_report_for", None)
            st.rerun()
    if confirm.button("Keep it", key="ds_delete_no"):
        st.session_state.pop("ds_confirm_delete", None)
        st.rerun()
