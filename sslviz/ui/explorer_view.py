"""Pieces of the Explorer page: which map (source, layer, UMAP settings), getting it (inline or as
a background job), colours, quality figures, nearest neighbours.

The map widget itself (selection, thumbnails, export) is :mod:`sslviz.ui.map`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import streamlit as st

from sslviz import embed, jobs, project
from sslviz.embedding_job import runs_inline
from sslviz.kinds import run_kind
from sslviz.store import Dataset, Run, Store
from sslviz.store.rows import ACTIVE_STATUSES
from sslviz.ui.map import (
    EMPTY,
    Colouring,
    MapPoints,
    categorical_colours,
    clear_selection_button,
    export_selection_button,
    image_lookup,
    paths_of,
    thumbnail_grid,
)
from sslviz.ui.runs_view import human_duration
from sslviz.ui.widgets import user_errors

METRICS = ("cosine", "euclidean", "correlation", "manhattan")
DEFAULT_UMAP = {"neighbors": 15, "min_dist": 0.1, "metric": "cosine"}
POLL_SECONDS = 2.0
NEIGHBOURS = 16  # thumbnails shown for "nearest neighbours"
KNN_K = 10


@dataclass(frozen=True)
class MapSpec:
    """Which map: a source (run id, "random", "pixels"), its layer/pooling, UMAP settings."""

    source: str
    layer: str | None = None
    grid: int | None = None
    neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"

    def embed_args(self) -> dict[str, Any]:
        return {"layer": self.layer, "grid": self.grid}

    def project_args(self) -> dict[str, Any]:
        return {**self.embed_args(), "neighbors": self.neighbors, "min_dist": self.min_dist,
                "metric": self.metric}  # fmt: skip


# --- choosing a map -------------------------------------------------------------------------------
def source_choices(store: Store, dataset: Dataset) -> dict[str, str]:
    """Sources to embed with -> their label: runs with an encoder and a checkpoint (this dataset's
    first, newest first), then the baselines."""
    runs = [
        r
        for r in store.runs.list()
        if run_kind(r.task).has_encoder and (r.status == "finished" or r.step > 0)
    ]
    names = {d.id: d.name for d in store.datasets.list()}
    runs.sort(key=lambda r: (r.dataset_id != dataset.id, -r.id))
    choices = {
        str(r.id): f"#{r.id} {run_kind(r.task).label} on {names.get(r.dataset_id, '?')}"
        + ("" if r.status == "finished" else f" ({r.status})")
        for r in runs
    }
    choices["random"] = "random — the same network, untrained"
    choices["pixels"] = "pixels — downscaled raw pixels"
    return choices


def map_picker(
    store: Store, choices: dict[str, str], umap: dict[str, Any], *, key: str, label: str,
    default: str,
) -> MapSpec:  # fmt: skip
    """One row: source, layer, pooling grid (defaults: the layer and grid that measured best)."""
    options = list(choices)
    source_column, layer_column, grid_column = st.columns([3, 1, 1])
    source = source_column.selectbox(
        label, options, index=options.index(default), format_func=choices.get, key=f"{key}_source"
    )
    with user_errors():
        layers = embed.available_layers(store, source)
        default_layer, default_grid = embed.default_layer(store, source)
        layer = layer_column.selectbox(
            "Layer",
            layers,
            index=layers.index(default_layer),
            key=f"{key}_layer_{source}",  # per source: layer names differ between sources
            help="Where the image is read out of the network; the default measured best.",
        )
        grid = 1
        if source != "pixels":
            grids = sorted({1, 2, 4, default_grid})
            grid = grid_column.selectbox(
                "Pooling",
                grids,
                index=grids.index(default_grid),
                key=f"{key}_grid_{source}",
                format_func=lambda g: "global" if g == 1 else f"{g}×{g} grid",
                help="Average the layer's feature map over a grid of cells and concatenate "
                "them: finer grids keep where things are in the image.",
            )
        return MapSpec(source, layer, grid, **umap)
    return MapSpec(source, **umap)


def umap_settings(*, key: str) -> dict[str, Any]:
    with st.expander("UMAP settings", icon=":material/tune:"):
        left, middle, right = st.columns(3)
        neighbors = left.slider(
            "Neighbours", 2, 100, DEFAULT_UMAP["neighbors"], key=f"{key}_neighbors",
            help="Larger values keep more of the global layout, smaller ones more local detail.",
        )  # fmt: skip
        min_dist = middle.slider(
            "Minimum distance", 0.0, 0.99, DEFAULT_UMAP["min_dist"], 0.01, key=f"{key}_min_dist",
            help="How tightly points may pack: small values give dense clusters.",
        )  # fmt: skip
        metric = right.selectbox("Metric", METRICS, key=f"{key}_metric")
    return {"neighbors": neighbors, "min_dist": min_dist, "metric": metric}


# --- getting the map ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LoadedMap:
    spec: MapSpec
    points: MapPoints
    embeddings: Any  # sslviz.embed.Embeddings (vectors (N, D), rows in the points' order)


@st.cache_resource(show_spinner=False, max_entries=8)
def _loaded(_store: Store, home: str, dataset_id: int, n_images: int, spec: MapSpec,
            version: str) -> LoadedMap:  # fmt: skip
    # Keyed by the source's version too: a new checkpoint of a run is a new map.
    projection = project.cached_projection(_store, dataset_id, spec.source, **spec.project_args())
    if projection is None:
        raise _NotComputed  # not cached: an exception is not remembered, None would be
    embeddings = embed.cached_embeddings(_store, dataset_id, spec.source, **spec.embed_args())
    return LoadedMap(spec, MapPoints.from_projection(projection), embeddings)


class _NotComputed(Exception):
    pass


def cached_map(store: Store, dataset: Dataset, spec: MapSpec) -> LoadedMap | None:
    """The map and its embedding if both are stored (never computes), else None."""
    version = embed.source_version(store, spec.source)
    home = str(store.workspace.root)
    try:
        return _loaded(store, home, dataset.id, dataset.n_images, spec, version)
    except _NotComputed:
        return None


def _map_job(store: Store, dataset: Dataset, spec: MapSpec) -> Run | None:
    """The newest embedding job of this map (any status), if there is one."""
    wanted = {"source": spec.source, **spec.project_args()}
    for run in sorted(store.runs.list(), key=lambda r: -r.id):
        if run.task != "embedding" or run.dataset_id != dataset.id:
            continue
        config = run.config
        if all(config.get(k) == v for k, v in wanted.items() if v is not None):
            return run
    return None


def get_map(store: Store, dataset: Dataset, spec: MapSpec, *, key: str) -> LoadedMap | None:
    """The map if it is computed; small datasets are computed here (a spinner), large ones are
    offered as a background job whose progress is shown (None until it is done)."""
    with user_errors():
        found = cached_map(store, dataset, spec)
        if found is not None:
            return found
        if runs_inline(dataset.n_images):  # small: here, with a spinner
            with st.spinner(f"Embedding {dataset.n_images:,} images and running UMAP…"):
                project.project(store, dataset.id, spec.source, **spec.project_args())
            return cached_map(store, dataset, spec)
        _job_panel(store, dataset, spec, key=key)
    return None


def _job_panel(store: Store, dataset: Dataset, spec: MapSpec, *, key: str) -> None:
    run = _map_job(store, dataset, spec)
    if run is None or run.status not in ACTIVE_STATUSES + ("finished",):
        st.info(
            f"**{dataset.name}** has {dataset.n_images:,} images: its map is computed in the "
            "background (embedding, then UMAP), so this page stays usable. Follow it here or on "
            "the Runs page.",
            icon=":material/schedule:",
        )
        if run is not None and run.error:
            st.caption(f"The last attempt ({run.status}): {run.error}")
        if st.button("Compute this map", key=f"{key}_submit", type="primary",
                     icon=":material/play_arrow:"):  # fmt: skip
            with user_errors():
                project.submit_map_job(store, dataset.id, spec.source, **spec.project_args())
                st.rerun()
        return
    polling = run.status in ACTIVE_STATUSES
    st.fragment(_job_progress, run_every=POLL_SECONDS if polling else None)(store, run.id)


def _job_progress(store: Store, run_id: int) -> None:
    run = store.runs.get(run_id)
    if run.status == "finished":
        st.rerun()  # the map is ready: draw the whole page again
    done = run.progress
    eta = jobs.eta_seconds(run)
    st.progress(
        done,
        text=f"Map job #{run.id}: {run.status} · {done:.0%}"
        + (f" · ETA {human_duration(eta)}" if eta else ""),
    )
    if st.button("Cancel", key=f"ex_cancel_{run.id}", icon=":material/stop_circle:"):
        jobs.cancel(store, run.id)
        st.rerun()


# --- colours ---------------------------------------------------------------------------------------
def folder_of(paths: Any) -> np.ndarray:
    """The first path component of each path ("" for files at the top level)."""
    return np.array([p.split("/", 1)[0] if "/" in p else "" for p in paths], dtype=object)  # (N,)


def has_folders(paths: Any) -> bool:
    """At least two top-level folders: then folders are a stand-in for labels."""
    return len({p.split("/", 1)[0] for p in paths if "/" in p}) >= 2


def has_folders_of(store: Store, dataset: Dataset) -> bool:
    return has_folders(image_lookup(store, dataset.id).paths)


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
    if has_folders(loaded.points.paths):
        return folder_of(loaded.points.paths), "folder"
    return None, ""


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

    Hook for a session's predictions and confidence (the labeling code's predictor): add
    "predictions" / "confidence" to ``colour_controls``'s options and return
    ``categorical_colours(predicted, title="prediction")`` /
    ``sslviz.ui.map.numeric_colours(confidence, title="confidence")`` here.
    """
    paths = loaded.points.paths
    if how == "cluster":
        return categorical_colours(cluster_labels(loaded, k), title=f"k-means ({k} clusters)")
    if how == "folder":
        return categorical_colours(folder_of(paths), title="folder", missing="(top level)")
    if how == "labels" and session_id is not None:
        labels = session_labels(store, session_id, loaded.points.image_ids)
        return categorical_colours(labels, title="label")
    return None


# --- quality -------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=32)
def _quality(file: str, _vectors: np.ndarray, _coords: np.ndarray, labels_key: str,
             _labels: np.ndarray | None) -> dict[str, float]:  # fmt: skip
    from sslviz import quality

    del file, labels_key  # cache keys
    out = {"rank": float(quality.effective_rank(np.asarray(_vectors, dtype=np.float32)))}
    if _labels is not None:
        out["knn_embedding"] = float(quality.knn_agreement(_vectors, _labels, k=KNN_K))
        out["knn_map"] = float(quality.knn_agreement(_coords, _labels, k=KNN_K))
    return out


def quality_figures(loaded: LoadedMap, labels: np.ndarray | None, labels_name: str) -> None:
    """RankMe of the embedding always; kNN label agreement when there are labels."""
    import hashlib

    if labels is not None:
        keep = np.array([bool(v) for v in labels])  # unlabeled images don't vote
        if keep.sum() < 2 * KNN_K or len(set(labels[keep])) < 2:
            labels = None
    labels_key = (
        hashlib.blake2b("\n".join(map(str, labels)).encode(), digest_size=8).hexdigest()
        if labels is not None
        else "-"
    )
    with user_errors():
        coords = np.column_stack([loaded.points.x, loaded.points.y])
        if labels is not None:
            vectors, coords, labels = loaded.embeddings.vectors[keep], coords[keep], labels[keep]
        else:
            vectors = loaded.embeddings.vectors
        with st.spinner("Measuring…"):
            figures = _quality(str(loaded.embeddings.file), vectors, coords, labels_key, labels)
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


def spec_label(choices: dict[str, str], spec: MapSpec) -> str:
    name = choices.get(spec.source, spec.source).split(" — ")[0]
    parts = [name] + ([spec.layer] if spec.layer else [])
    if spec.grid and spec.grid > 1:
        parts.append(f"{spec.grid}×{spec.grid}")
    return " · ".join(parts)


def path_name(path: str) -> str:
    return PurePosixPath(path).name


# --- page sections -------------------------------------------------------------------------------
def colour_controls(store: Store, dataset: Dataset) -> tuple[str, int, int | None]:
    """ "Colour by" (cluster, folder, a labeling session's labels, nothing), the number of
    clusters, the session: (how, k, session id or None)."""
    options = {"cluster": "k-means cluster", "folder": "folder", "none": "nothing"}
    sessions = store.sessions.list(dataset.id)
    if sessions:
        options["labels"] = "labels"
    how_column, k_column, session_column = st.columns([3, 1, 2])
    how = how_column.segmented_control(
        "Colour by",
        list(options),
        format_func=options.get,
        key="ex_colour",
        default="folder" if has_folders_of(store, dataset) else "cluster",
        help="k-means clusters of the embedding (not of the map); the first folder of each "
        "path; or the labels of a labeling session.",
    ) or "none"  # fmt: skip
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
        thumbnail_grid(
            store,
            dataset.id,
            ids,
            key=f"ex_nn_{label}",
            captions=[f"cos {s:.2f}" for s in similarity],
        )
