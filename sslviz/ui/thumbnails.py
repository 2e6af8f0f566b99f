"""Thumbnails of a dataset's images by id (paged, with paths) and the export of a selection.

Part of the map widget (:mod:`sslviz.ui.map` re-exports these): thumbnails come from the
workspace's stored gallery thumbnails (``sslviz.data.thumbnail_path``), looked up by image id in
a per-dataset table cached for the server's life.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from sslviz.data import thumbnail_path
from sslviz.store import Store

EMPTY = np.zeros(0, dtype=np.int64)


def selection_csv(paths: Sequence[str]) -> str:
    """A CSV with one ``path`` column: the export format of a selection."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path"])
    writer.writerows([p] for p in paths)
    return out.getvalue()


@dataclass(frozen=True, eq=False)
class ImageLookup:
    """A dataset's images by id: path and thumbnail file (sorted ids, for ``np.searchsorted``)."""

    ids: np.ndarray  # (N,) int64, sorted
    paths: np.ndarray  # (N,) object
    thumbs: np.ndarray  # (N,) object: thumbnail file paths

    def rows(self, image_ids: Any) -> np.ndarray:
        """Row positions of ``image_ids`` (ids not in the dataset are dropped)."""
        wanted = np.asarray(image_ids, dtype=np.int64)
        at = np.searchsorted(self.ids, wanted)
        at = np.clip(at, 0, max(0, len(self.ids) - 1))
        return at[(len(self.ids) > 0) & (self.ids[at] == wanted)] if len(self.ids) else EMPTY


@st.cache_resource(show_spinner=False, max_entries=4)
def _lookup(_store: Store, home: str, dataset_id: int, n_images: int) -> ImageLookup:
    # Keyed by workspace, dataset and image count (a re-ingested dataset gets new ids anyway).
    store = _store
    images = sorted(store.datasets.images(dataset_id), key=lambda image: image.id)
    return ImageLookup(
        ids=np.fromiter((i.id for i in images), dtype=np.int64, count=len(images)),
        paths=np.array([i.path for i in images], dtype=object),
        thumbs=np.array([str(thumbnail_path(store, i)) for i in images], dtype=object),
    )


def image_lookup(store: Store, dataset_id: int) -> ImageLookup:
    """The (cached) id -> path / thumbnail table of a dataset."""
    dataset = store.datasets.get(dataset_id)
    return _lookup(store, str(store.workspace.root), dataset_id, dataset.n_images)


def paths_of(store: Store, dataset_id: int, image_ids: Any) -> list[str]:
    lookup = image_lookup(store, dataset_id)
    return list(lookup.paths[lookup.rows(image_ids)])


def thumbnail_grid(
    store: Store,
    dataset_id: int,
    image_ids: Any,
    *,
    key: str,
    columns: int = 8,
    page_size: int = 48,
    captions: Sequence[str] | None = None,
) -> None:
    """Thumbnails of ``image_ids`` (in the given order) with their paths, ``page_size`` a page.

    captions: optional text per image (same order), shown under the path (e.g. a similarity).
    """
    lookup = image_lookup(store, dataset_id)
    ids = np.asarray(image_ids, dtype=np.int64)
    total = len(ids)
    if not total:
        st.caption("No images.")
        return
    pages = math.ceil(total / page_size)
    page = st.pagination(pages, key=f"{key}_page", max_visible_pages=7) if pages > 1 else 1
    first = (min(page, pages) - 1) * page_size
    shown = ids[first : first + page_size]
    rows = lookup.rows(shown)
    extra = list(captions[first : first + page_size]) if captions is not None else None
    if pages > 1:
        st.caption(f"Images {first + 1:,}–{first + len(shown):,} of {total:,}.")
    for start in range(0, len(rows), columns):
        for i, column in enumerate(st.columns(columns)):
            if start + i >= len(rows):
                break
            row = rows[start + i]
            caption = str(lookup.paths[row])
            if extra is not None:
                caption += f" · {extra[start + i]}"
            column.image(lookup.thumbs[row], caption=caption, width="stretch")


def export_selection_button(
    paths: Sequence[str], *, key: str, file_name: str = "selection.csv", label: str | None = None
) -> None:
    """ "Export selection": a download of the paths as a one-column CSV (built on click)."""
    paths = list(paths)
    st.download_button(
        label or "Export CSV",
        data=lambda: selection_csv(paths),
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        disabled=not paths,
        on_click="ignore",
        help=f"Download the paths of the {len(paths):,} selected image(s): a CSV with one "
        "`path` column.",
    )
