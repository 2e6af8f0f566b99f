"""Pieces of the Datasets page: default names for uploads, the datasets table, the gallery, the
ingest report, and what an unfinished (interrupted or still running) ingest shows."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from sslviz.data import IngestReport, ingest_run, ingester, is_live_ingest, thumbnail_path
from sslviz.data.ingest_job import reopen, resume_request
from sslviz.runner import jobs
from sslviz.runner.progress import eta_seconds, fraction_done
from sslviz.store import Dataset, Run, Store
from sslviz.store.rows import ACTIVE_STATUSES, RESUMABLE_STATUSES
from sslviz.ui.runs_view import human_duration
from sslviz.ui.widgets import user_errors

GALLERY_PAGE = 48  # thumbnails per page
GALLERY_COLUMNS = 8
POLL_SECONDS = 1.0  # while an ingest job runs


def default_upload_name(names: Sequence[str]) -> str | None:
    """A dataset name for uploaded files: the uploaded folder's name (browser folder uploads send
    ``folder/sub/file.png``), else a single zip's stem, else None (the user must name it)."""
    paths = [PurePosixPath(n.replace("\\", "/")) for n in names]
    tops = {p.parts[0] for p in paths if len(p.parts) > 1}
    if paths and len(tops) == 1 and all(len(p.parts) > 1 for p in paths):
        return tops.pop()
    if len(paths) == 1 and paths[0].suffix.lower() == ".zip":
        return paths[0].stem
    return None


def human_bytes(n: int) -> str:
    """``"3.2 MB"`` (decimal units, as file browsers show)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # unreachable; keeps type checkers calm


def datasets_table(datasets: list[Dataset], *, key: str) -> None:
    frame = pd.DataFrame(
        [
            {
                "name": d.name,
                "status": d.status,
                "images": d.n_images,
                "rejected": d.n_rejected,
                "duplicates": d.n_duplicates,
                "size on disk": human_bytes(d.bytes),
                "source": d.source,
                "added": datetime.fromtimestamp(d.created_at),
            }
            for d in datasets
        ]
    )
    st.dataframe(
        frame,
        key=key,
        hide_index=True,
        column_config={
            "added": st.column_config.DatetimeColumn("added", format="YYYY-MM-DD HH:mm"),
            "size on disk": st.column_config.TextColumn(
                "size on disk",
                help="Bytes of the stored image files (thumbnails and caches not counted).",
            ),
        },
    )


def ingest_report(store: Store, dataset: Dataset) -> None:
    """The outcome of the ingest this session started, read from the store."""
    report = IngestReport.of(store, dataset).to_json()
    job = ingest_run(store, dataset.id)
    report["seconds"] = job.work_seconds if job is not None else 0.0
    rejected = report["rejected"]
    st.success(
        f"Dataset **{report['dataset']}**: {report['accepted']:,} images accepted, "
        f"{len(rejected):,} rejected, {report['duplicates']:,} duplicates "
        f"({report.get('seconds', 0):.1f} s).",
        icon=":material/check_circle:",
    )
    if rejected:
        st.dataframe(
            pd.DataFrame(rejected, columns=["path", "reason"]),
            hide_index=True,
            key="ds_report_rejected",
        )


def gallery(store: Store, dataset: Dataset) -> None:
    """Thumbnails of the dataset's images (paths as captions), ``GALLERY_PAGE`` per page."""
    total = store.datasets.count_images(dataset.id)
    if not total:
        st.caption("No images.")
        return
    pages = math.ceil(total / GALLERY_PAGE)
    page = 1
    if pages > 1:
        page = st.pagination(pages, key=f"ds_gallery_page_{dataset.id}", max_visible_pages=9)
    first = (page - 1) * GALLERY_PAGE
    images = store.datasets.images(dataset.id, offset=first, limit=GALLERY_PAGE)
    st.caption(f"Images {first + 1:,}–{first + len(images):,} of {total:,}, in path order.")
    for row in range(0, len(images), GALLERY_COLUMNS):  # row by row, so rows line up
        for column, image in zip(
            st.columns(GALLERY_COLUMNS), images[row : row + GALLERY_COLUMNS], strict=False
        ):
            column.image(str(thumbnail_path(store, image)), caption=image.path, width="stretch")


def unfinished_notice(store: Store, dataset: Dataset) -> None:
    """Why ``dataset`` has no images to show: its ingest was interrupted, or is still running
    (its job, or ``sslviz ingest`` on the command line)."""
    if dataset.status in ("interrupted", "failed"):
        st.warning(
            f"**{dataset.name}** was not ingested completely: {dataset.error or 'it stopped'}. "
            "Nothing of it is used until it is complete: finish the ingest (the files it "
            "recorded are kept) or delete it.",
            icon=":material/warning:",
        )
    elif is_live_ingest(store, dataset):
        since = human_duration(time.time() - dataset.created_at)
        beat = (
            f", last progress {human_duration(time.time() - dataset.heartbeat_at)} ago"
            if dataset.heartbeat_at
            else ""
        )
        st.info(
            f"**{dataset.name}** is being ingested by {ingester(store, dataset)} (for "
            f"{since}{beat}). It goes on if you leave this page or close the tab; this page "
            "updates when it is done.",
            icon=":material/hourglass_top:",
        )


def dataset_details(store: Store, dataset: Dataset) -> None:
    """A ready dataset's tabs: gallery, rejected files, duplicates."""
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


# --- an ingest job -------------------------------------------------------------------------------
def ingest_progress(store: Store, dataset: Dataset) -> None:
    """The running ingest's progress and a Cancel button, polled; the page reruns once it ends."""
    st.fragment(_poll_ingest, run_every=POLL_SECONDS)(store, dataset.id)


def _poll_ingest(store: Store, dataset_id: int) -> None:
    jobs.reap(store)  # a worker that was killed: its run (and so the dataset) ends interrupted
    if not is_live_ingest(store, store.datasets.get(dataset_id)):
        st.rerun()  # ended: the whole page again, with the dataset's new status
    job = ingest_run(store, dataset_id)
    if job is None:  # ``sslviz ingest`` in the foreground: nothing to show but its heartbeat
        return
    st.progress(fraction_done(job), text=_progress_text(job))
    if job.status in ACTIVE_STATUSES and st.button(
        "Cancel", key=f"ds_cancel_{job.id}", icon=":material/stop_circle:"
    ):
        with user_errors():
            jobs.cancel(store, job.id)
            st.rerun()


def _progress_text(job: Run) -> str:
    if job.status == "queued":
        return f"Ingest job #{job.id} is queued: it starts when the one before it ends."
    if not job.total_steps:
        return f"Ingest job #{job.id}: listing the files…"
    eta = eta_seconds(job)
    return f"Ingest job #{job.id}: checked {job.step:,} of {job.total_steps:,} files" + (
        f" · about {human_duration(eta)} left" if eta else ""
    )


def retry_ingest(store: Store, dataset: Dataset) -> Run:
    """Finish an interrupted ingest as a job: resume its own job, or start one for it."""
    job = ingest_run(store, dataset.id)
    if job is not None and job.status in RESUMABLE_STATUSES:
        reopen(store, dataset)
        return jobs.resume(store, job.id)
    return jobs.submit(store, resume_request(store, dataset))
