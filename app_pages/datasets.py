"""Datasets page: bring images in (upload or server folder), look at them, delete them."""

import streamlit as st

from sslviz.data import delete_dataset, ingest_server_folder, ingest_uploads
from sslviz.ui.datasets_view import datasets_table, default_upload_name, gallery, ingest_report
from sslviz.ui.resources import get_store
from sslviz.ui.widgets import user_errors
from sslviz.workspace import SERVER_ROOTS_ENV, server_roots

SOURCES = ("Folder", "Zip", "Files", "Server folder")

store = get_store()
st.title("Datasets")
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
    st.session_state["ds_pick"] = report.dataset.name
    st.rerun()


with st.expander(
    "Add a dataset", expanded=len(datasets) <= 1, icon=":material/add_photo_alternate:"
):
    source = st.radio("From", SOURCES, key="ds_source", horizontal=True)
    gen = st.session_state.get("ds_upload_gen", 0)  # a new key empties the uploader
    names_taken = {d.name for d in datasets}
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
if st.session_state.get("ds_pick") not in by_name:
    st.session_state["ds_pick"] = datasets[-1].name  # the newest
dataset = by_name[st.selectbox("Show dataset", list(by_name), key="ds_pick")]
if dataset.error:
    st.error(dataset.error)
gallery_tab, rejected_tab, duplicates_tab = st.tabs(
    [
        f"Gallery ({dataset.n_images:,})",
        f"Rejected files ({dataset.n_rejected:,})",
        f"Duplicates ({dataset.n_duplicates:,})",
    ]
)
with gallery_tab:
    gallery(store, dataset)
with rejected_tab:
    rejected = store.datasets.rejections(dataset.id)
    if rejected:
        st.dataframe(
            [{"path": r.path, "reason": r.reason} for r in rejected],
            hide_index=True,
            key="ds_rejected",
        )
    else:
        st.caption("Every file was a usable image.")
with duplicates_tab:
    duplicates = store.datasets.duplicates(dataset.id)
    if duplicates:
        st.dataframe(
            [{"path": d.path, "same content as": d.duplicate_of} for d in duplicates],
            hide_index=True,
            key="ds_duplicates",
        )
    else:
        st.caption("No duplicate content.")

# --- delete, with a confirmation ------------------------------------------------------------
if st.button(f"Delete {dataset.name}…", key="ds_delete", icon=":material/delete:"):
    st.session_state["ds_confirm_delete"] = dataset.id
if st.session_state.get("ds_confirm_delete") == dataset.id:
    n_runs = sum(1 for r in store.runs.list() if r.dataset_id == dataset.id)
    st.warning(
        f"Delete **{dataset.name}**: its {dataset.n_images:,} stored images"
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
