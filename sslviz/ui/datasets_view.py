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

from sslviz.data import is_live_ingest, thumbnail_path
from sslviz.store import Dataset, Store
from sslviz.ui.runs_view import human_duration

GALLERY_PAGE = 48  # thumbnails per page
GALLERY_COLUMNS = 8


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


def ingest_report(report: dict) -> None:
    """The outcome of the last ingest (kept in session state as ``IngestReport.to_json()``)."""
    rejected = report["rejected"]
    st.success(
        f"Dataset **{report['dataset']}**: {report['accepted']:,} images accepted, "
        f"{len(rejected):,} rejected, {report['duplicates']:,} duplicates "
        f"({report.get('seconds', 0):.1f} s).",
        icon=":material/check_circle:",
    )
    if rejected:
        st.dataframe(pd.DataFrame(rejected), hide_index=True, key="ds_report_rejected")


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
    """Why ``dataset`` has no images to show: its ingest was interrupted, or is still running in
    another process (the command line, another browser tab)."""
    if dataset.status in ("interrupted", "failed"):
        st.warning(
            f"**{dataset.name}** was not ingested completely: {dataset.error or 'it stopped'}. "
            "Nothing of it is used; retry the ingest or delete it.",
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
            f"**{dataset.name}** is being ingested by process {dataset.pid} (for {since}{beat}). "
            "This page updates when it is done.",
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
