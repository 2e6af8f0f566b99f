"""Pieces of the Explorer page around a computed map: colours (clusters, folders, a labeling
session's labels), quality figures (RankMe, kNN agreement), nearest neighbours, search, and the
selection's thumbnails and export.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import streamlit as st

from sslviz.store import Dataset, Store
from sslviz.ui.explorer_view import LoadedMap
from sslviz.ui.label_colours import session_colours
from sslviz.ui.map import (
    EMPTY,
    Colouring,
    categorical_colours,
    clear_selection_button,
    export_selection_button,
    image_lookup,
    paths_of,
    thumbnail_grid,
)
from sslviz.ui.widgets import user_errors

NEIGHBOURS = 16  # thumbnails shown for "nearest neighbours"
QUERY_CAPTION = "the image itself (query)"
KNN_K = 10
QUALITY_ROWS = 5_000  # images the quality figures are measured on, at most


# --- colours ---------------------------------------------------------------------------------------
def folder_of(paths: Any) -> np.ndarray:
    """The first path component of each path ("" for files at the top level)."""
    return np.array([p.split("/", 1)[0] if "/" in p else "" for p in paths], dtype=object)  # (N,)


def has_folders(paths: Any) -> bool:
    """At least two top-level folders: then folders are a stand-in for labels."""
    return len({p.split("/", 1)[0] for p in paths if "/" in p}) >= 2


def has_folders_of(store: Store, dataset: Dataset) -> bool:
    return (
        _folders(f"dataset-{dataset.id}-{dataset.n_images}", image_lookup(store, dataset.id).paths)
        is not None
    )


@st.cache_resource(show_spinner=False, max_entries=16)
def _folders(key: str, _paths: Any) -> np.ndarray | None:
    """Each path's folder if there are at least two folders, else None (computed once a key)."""
    del key
    return folder_of(_paths) if has_folders(_paths) else None


def search_hits(loaded: list[LoadedMap | None], query: str) -> np.ndarray:
    """Image ids whose path contains ``query`` (case-insensitive); empty without a query."""
    points = next((m.points for m in loaded if m is not None), None)
    if not query or points is None:
        return EMPTY
    needle = query.lower()
    hit = np.fromiter((needle in p.lower() for p in points.paths), bool, len(points.paths))
    return np.sort(points.image_ids[hit])


def quality_labels(
    store: Store, loaded: LoadedMap, session_id: int | None
) -> tuple[np.ndarray | None, str]:
    """Labels for the kNN agreement: a session's labels if one is chosen, else the folders (a
    proxy for classes) when the dataset has several, else none."""
    if session_id is not None:
        return session_labels(store, session_id, loaded.points.image_ids), "label"
    folders = _folders(str(loaded.embeddings.file), loaded.points.paths)
    return (folders, "folder") if folders is not None else (None, "")


@st.cache_resource(show_spinner="Clustering…", max_entries=8)
def _clusters(file: str, _vectors: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans

    del file  # the cache key: the embedding's file
    data = np.asarray(_vectors, dtype=np.float32)
    # Cosine geometry, as the map's default metric: cluster the unit vectors.
    data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=0)
    return model.fit_predict(data).astype(np.int32)  # (N,)


def cluster_labels(loaded: LoadedMap, k: int) -> np.ndarray:
    """k-means clusters of the embedding (not of the 2-D map), named "cluster 1".."cluster k"."""
    vectors = loaded.embeddings.vectors
    k = max(2, min(k, len(vectors)))
    codes = _clusters(str(loaded.embeddings.file), vectors, k)
    return np.array([f"cluster {c + 1}" for c in codes], dtype=object)


def session_labels(store: Store, session_id: int, image_ids: np.ndarray) -> np.ndarray:
    """A labeling session's labels per point ("" for unlabeled images)."""
    given = store.sessions.label_of(session_id)  # image id -> label
    return np.array([given.get(int(i), "") for i in image_ids], dtype=object)


def colouring(
    store: Store, loaded: LoadedMap, how: str, *, k: int = 8, session_id: int | None = None
) -> Colouring | None:
    """The colours of a map: "cluster", "folder", "labels" (of a session), or None (plain).
    (Predictions and their confidence are drawn on the labeling page's own map:
    ``sslviz.ui.labeling_predictions.prediction_map``.)"""
    if how in ("cluster", "folder"):
        return _fixed_colouring(str(loaded.embeddings.file), how, k, loaded)
    if how == "labels" and session_id is not None:
        labels = session_labels(store, session_id, loaded.points.image_ids)
        return categorical_colours(
            labels, title="label", colour_of=session_colours(store, session_id)
        )
    return None


@st.cache_resource(show_spinner=False, max_entries=16)
def _fixed_colouring(file: str, how: str, k: int, _loaded: LoadedMap) -> Colouring:
    """Clusters or folders of a map's images: they change with the embedding only (cached)."""
    del file  # the cache key
    if how == "cluster":
        return categorical_colours(cluster_labels(_loaded, k), title=f"k-means ({k} clusters)")
    return categorical_colours(
        folder_of(_loaded.points.paths), title="folder", missing="(top level)"
    )


# --- quality -------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Measuring…", max_entries=32)
def _quality(
    file: str, map_key: str, labels_key: str, _loaded: LoadedMap, _labels: Any
) -> dict[str, float]:
    """RankMe and kNN agreements on at most QUALITY_ROWS images (a seeded random subset):
    a brute-force cosine kNN over 100k x D vectors would take minutes on a small machine.
    Keyed by the embedding's file (its checkpoint version too) and the map's settings: the
    "in the map" figure changes with the UMAP settings while the embedding stays."""
    from sslviz.maps import quality

    del file, map_key, labels_key  # cache keys
    n = len(_loaded.points)
    rows = np.arange(n)
    if n > QUALITY_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(n, QUALITY_ROWS, replace=False))
    vectors = np.asarray(_loaded.embeddings.vectors[rows], dtype=np.float32)  # (n, D)
    out = {"rank": float(quality.effective_rank(vectors)), "rows": float(len(rows))}
    if _labels is not None:
        labels = np.asarray(_labels, dtype=object)[rows]
        keep = labels != ""  # unlabeled images don't vote
        if keep.sum() >= 2 * KNN_K and len(set(labels[keep])) >= 2:
            coords = np.column_stack([_loaded.points.x, _loaded.points.y])[rows]  # (n, 2)
            out["knn_embedding"] = quality.knn_agreement(vectors[keep], labels[keep], k=KNN_K)
            out["knn_map"] = quality.knn_agreement(coords[keep], labels[keep], k=KNN_K)
    return out


def quality_figures(loaded: LoadedMap, labels: np.ndarray | None, labels_name: str) -> None:
    """RankMe of the embedding always; kNN label agreement when there are labels."""
    labels_key = (
        hashlib.blake2b("\n".join(map(str, labels)).encode(), digest_size=8).hexdigest()
        if labels is not None
        else "-"
    )
    with user_errors():
        figures = _quality(loaded.key, repr(loaded.spec), labels_key, loaded, labels)
        if figures["rows"] < len(loaded.points):
            st.caption(f"Measured on a random {int(figures['rows']):,} of the images.")
        columns = st.columns(3)
        columns[0].metric(
            "Effective rank",
            f"{figures['rank']:.1f}",
            help=f"RankMe: how many of the embedding's {loaded.embeddings.dim} dimensions carry "
            "information (exp of the entropy of its singular values). Higher is usually better; "
            "needs no labels.",
        )
        if "knn_embedding" in figures:
            columns[1].metric(
                f"{KNN_K}-NN agreement",
                f"{figures['knn_embedding']:.2f}",
                help=f"Share of each image's {KNN_K} nearest neighbours in the embedding that "
                f"have its {labels_name}.",
            )
            columns[2].metric(
                f"{KNN_K}-NN in the map",
                f"{figures['knn_map']:.2f}",
                help="The same in the 2-D map: how much of it survives the projection.",
            )


# --- neighbours ----------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _unit_vectors(file: str, _vectors: np.ndarray) -> np.ndarray:
    del file
    data = np.asarray(_vectors, dtype=np.float32)
    return data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)  # (N, D)


def nearest(loaded: LoadedMap, image_id: int, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` images closest to ``image_id`` by cosine similarity in the embedding (itself
    excluded): (image ids (k,), similarities (k,)), most similar first."""
    unit = _unit_vectors(str(loaded.embeddings.file), loaded.embeddings.vectors)
    ids = loaded.embeddings.image_ids
    row = int(np.flatnonzero(ids == image_id)[0])
    similarity = unit @ unit[row]  # (N,)
    similarity[row] = -np.inf
    k = min(k, len(ids) - 1)
    top = np.argpartition(-similarity, k)[:k] if k < len(ids) - 1 else np.arange(len(ids))
    top = top[np.argsort(-similarity[top])][:k]
    return ids[top], similarity[top]


# --- page sections -------------------------------------------------------------------------------
def colour_controls(store: Store, dataset: Dataset) -> tuple[str, int, int | None]:
    """ "Colour by" (cluster, folder, a labeling session's labels, nothing), the number of
    clusters, the session: (how, k, session id or None)."""
    options = {"cluster": "k-means cluster", "folder": "folder", "none": "nothing"}
    sessions = store.sessions.list(dataset.id)
    if sessions:
        options["labels"] = "labels"
    options["check"] = "data check"  # sslviz.ui.data_checks_view: scores, outliers, copies, ...
    how_column, k_column, session_column = st.columns([3, 1, 2])
    how = (
        how_column.segmented_control(
            "Colour by",
            list(options),
            format_func=options.get,
            key="ex_colour",
            default="folder" if has_folders_of(store, dataset) else "cluster",
            help="k-means clusters of the embedding (not of the map); the first folder of each "
            "path; or the labels of a labeling session.",
        )
        or "none"
    )
    k = k_column.number_input("Clusters", 2, 40, 8, key="ex_k", disabled=how != "cluster")
    session_id = None
    if how == "labels" and sessions:
        names = {s.id: s.name for s in sessions}
        session_id = session_column.selectbox(
            "Labeling session", list(names), format_func=names.get, key="ex_session"
        )
    return how, int(k), session_id


def selection_panel(
    store: Store, dataset: Dataset, selected: np.ndarray, *, selection_key: str, where: str
) -> None:
    """The selected images: count, clear, export as CSV, thumbnails with paths."""
    head, clear, export = st.columns([3, 1, 1], vertical_alignment="bottom")
    head.subheader(f"Selection{where}: {len(selected):,} image(s)")
    with clear:
        clear_selection_button(selection_key, key="ex_clear")
    with export:
        export_selection_button(
            paths_of(store, dataset.id, selected),
            key="ex_export",
            file_name=f"{dataset.name}-selection.csv",
        )
    if not len(selected):
        st.caption(
            "Click a point, or pick **Box Select** or **Lasso Select** in the map's toolbar "
            "(top right of the map) and drag over points. Double-click the map to clear."
        )
        return
    thumbnail_grid(store, dataset.id, selected, key="ex_grid")


def neighbours_panel(
    store: Store, dataset: Dataset, selected: np.ndarray, maps: list[tuple[str, LoadedMap]]
) -> None:
    """The nearest neighbours of one selected image in each shown map's embedding."""
    if not len(selected):
        return
    st.subheader("Nearest neighbours")
    candidates = selected[:1000]  # a selectbox of more would be no help
    paths = paths_of(store, dataset.id, candidates)
    by_path = dict(zip(paths, candidates, strict=False))
    anchor = st.selectbox(
        "Of the image",
        paths,
        key="ex_anchor",
        help="A click on the map selects one image. Similarity is the cosine in the "
        "embedding, not the distance on the map.",
    )
    image_id = int(by_path.get(anchor, candidates[0]))
    for label, loaded in maps:
        ids, similarity = nearest(loaded, image_id)
        if len(maps) > 1:
            st.markdown(f"In **{label}**")
        thumbnail_grid(  # the query first, so its neighbours are judged against it
            store,
            dataset.id,
            np.concatenate([[image_id], ids]),
            key=f"ex_nn_{label}",
            captions=[QUERY_CAPTION, *(f"cos {s:.2f}" for s in similarity)],
        )
