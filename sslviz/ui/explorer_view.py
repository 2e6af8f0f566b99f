"""Pieces of the Explorer page that choose and get a map: source, layer and pooling, UMAP
settings; the map: its PCA preview at once, the UMAP map fitted in the app's background thread
for small datasets or by a background job (with progress) for large ones. Colours, quality figures, neighbours and the selection: :mod:`explorer_panels`; the
map widget itself: :mod:`sslviz.ui.map`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import streamlit as st

from sslviz.core.errors import UserError
from sslviz.maps import embed, embedding_job, project, settings
from sslviz.maps.embedding_job import runs_inline
from sslviz.runner import jobs
from sslviz.runner.progress import eta_seconds, fraction_done
from sslviz.store import Dataset, Run, Store
from sslviz.store.kinds import run_kind
from sslviz.store.rows import ACTIVE_STATUSES
from sslviz.ui import background_maps, background_requests
from sslviz.ui.map import MapPoints
from sslviz.ui.runs_view import human_duration
from sslviz.ui.widgets import user_errors

METRICS = settings.METRICS
DEFAULT_UMAP = {"neighbors": 15, "min_dist": 0.1, "metric": "cosine"}
POLL_SECONDS = 2.0
BACKGROUND_POLL_SECONDS = 1.0  # a small map's UMAP fit: seconds once UMAP is compiled


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
        return {
            **self.embed_args(),
            "neighbors": self.neighbors,
            "min_dist": self.min_dist,
            "metric": self.metric,
        }


# --- choosing a map -------------------------------------------------------------------------------
def source_choices(store: Store, dataset: Dataset) -> dict[str, str]:
    """Sources to embed with -> their label: runs with an encoder and a checkpoint (this dataset's
    first, newest first), then the baselines."""
    runs = [
        r
        for r in store.runs.list()
        if run_kind(r.kind).has_encoder and (r.status == "finished" or r.step > 0)
    ]
    names = {d.id: d.name for d in store.datasets.list()}
    runs.sort(key=lambda r: (r.dataset_id != dataset.id, -r.id))
    choices = {
        str(r.id): f"#{r.id} {run_kind(r.kind).label} on {names.get(r.dataset_id, '?')}"
        + ("" if r.status == "finished" else f" ({r.status})")
        for r in runs
    }
    choices["random"] = "random — the same network, untrained"
    choices["pixels"] = "pixels — downscaled raw pixels"
    return choices


def default_source(store: Store, dataset: Dataset, choices: dict[str, str]) -> str:
    """The source the page opens on: the first (this dataset's newest run first) whose map with
    the default settings is already stored, so a visit reuses it instead of fitting a new UMAP;
    else the first choice."""
    for source in choices:
        if source.isdigit() and store.runs.get(int(source)).dataset_id != dataset.id:
            continue
        with contextlib.suppress(UserError):
            layer, grid = embed.default_layer(store, source)
            request = project.map_request(
                store, dataset, source, layer=layer, grid=grid, **DEFAULT_UMAP
            )
            if request.file.is_file():
                return source
    return next(iter(choices))


def map_picker(
    store: Store,
    choices: dict[str, str],
    umap: dict[str, Any],
    *,
    key: str,
    label: str,
    default: str,
    beside: MapSpec | None = None,
) -> MapSpec:
    """One row: source, layer, pooling grid (defaults: the layer and grid that measured best;
    ``random`` beside a run's map: that map's layer and pooling, so the two differ by training
    only)."""
    options = list(choices)
    source_column, layer_column, grid_column = st.columns([3, 1, 1])
    source = source_column.selectbox(
        label, options, index=options.index(default), format_func=choices.get, key=f"{key}_source"
    )
    with user_errors():
        layers = embed.available_layers(store, source)
        default_layer, default_grid = embed.default_layer(store, source)
        matched = ""
        if source == "random" and beside is not None and beside.source.isdigit():
            default_layer, default_grid, note = _matching(
                beside, layers, default_layer, default_grid
            )
            matched = f"_{beside.layer}_{beside.grid}"  # the run's layer changes: follow it
            st.caption(note)
        layer = layer_column.selectbox(
            "Layer",
            layers,
            index=layers.index(default_layer),
            key=f"{key}_layer_{source}{matched}",  # per source: layer names differ between sources
            help="Where the image is read out of the network; the default measured best.",
        )
        grid = 1
        if source != "pixels":
            grids = sorted({1, 2, 4, default_grid})
            grid = grid_column.selectbox(
                "Pooling",
                grids,
                index=grids.index(default_grid),
                key=f"{key}_grid_{source}{matched}",
                format_func=lambda g: "global" if g == 1 else f"{g}×{g} grid",
                help="Global: each channel's average and maximum over the whole feature map "
                "(where a pattern is doesn't matter). A grid averages each of its cells and "
                "concatenates them: finer grids keep where things are in the image.",
            )
        return MapSpec(source, layer, grid, **umap)
    return MapSpec(source, **umap)


def _matching(
    beside: MapSpec, layers: list[str], own_layer: str, own_grid: int
) -> tuple[str, int, str]:
    """``random``'s layer and pooling beside a run's map, and the sentence that says so."""
    where = f"{beside.layer}, " + ("global" if beside.grid == 1 else f"{beside.grid}×{beside.grid}")
    if beside.layer in layers and beside.grid:
        return (
            beside.layer,
            beside.grid,
            f"`random` is read out as run #{beside.source} is ({where}), so the two maps "
            "differ by training only.",
        )
    return (
        own_layer,
        own_grid,
        f"`random` has no layer {beside.layer}: it is read at its own default instead.",
    )


def umap_settings(*, key: str) -> dict[str, Any]:
    with st.expander("UMAP settings", icon=":material/tune:"):
        left, middle, right = st.columns(3)
        neighbors = left.slider(
            "Neighbours",
            2,
            100,
            DEFAULT_UMAP["neighbors"],
            key=f"{key}_neighbors",
            help="Larger values keep more of the global layout, smaller ones more local detail.",
        )
        min_dist = middle.slider(
            "Minimum distance",
            0.0,
            0.99,
            DEFAULT_UMAP["min_dist"],
            0.01,
            key=f"{key}_min_dist",
            help="How tightly points may pack: small values give dense clusters.",
        )
        metric = right.selectbox("Metric", METRICS, key=f"{key}_metric")
    return {"neighbors": neighbors, "min_dist": min_dist, "metric": metric}


# --- getting the map ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LoadedMap:
    spec: MapSpec
    points: MapPoints
    embeddings: Any  # sslviz.maps.embed.Embeddings (vectors (N, D), rows in the points' order)
    preview: bool = False  # True: the PCA map drawn while the UMAP map is being fitted

    @property
    def key(self) -> str:
        """What figures computed on this map are cached under: its embedding and its kind."""
        return f"{self.embeddings.file}|{'pca' if self.preview else 'umap'}"


@st.cache_resource(show_spinner=False, max_entries=8)
def _loaded(
    _store: Store, home: str, dataset_id: int, n_images: int, spec: MapSpec, version: str
) -> LoadedMap:
    # Keyed by the source's version too: a new checkpoint of a run is a new map.
    projection = project.cached_projection(_store, dataset_id, spec.source, **spec.project_args())
    if projection is None:
        raise _NotComputed  # not cached: an exception is not remembered, None would be
    embeddings = embed.cached_embeddings(_store, dataset_id, spec.source, **spec.embed_args())
    return LoadedMap(spec, MapPoints.from_projection(projection), embeddings)


@st.cache_resource(show_spinner=False, max_entries=8)
def _preview(
    _store: Store, home: str, dataset_id: int, n_images: int, spec: MapSpec, version: str
) -> LoadedMap:
    """The PCA map of the embedding (cached: the callers wait for it in the background)."""
    projection = project.preview_projection(_store, dataset_id, spec.source, **spec.project_args())
    embeddings = embed.cached_embeddings(_store, dataset_id, spec.source, **spec.embed_args())
    return LoadedMap(spec, MapPoints.from_projection(projection), embeddings, preview=True)


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


def preview_map(store: Store, dataset: Dataset, spec: MapSpec) -> LoadedMap:
    """The PCA map of the map's embedding, which is cached (milliseconds): what the page draws
    until the UMAP map is ready."""
    version = embed.source_version(store, spec.source)
    return _preview(store, str(store.workspace.root), dataset.id, dataset.n_images, spec, version)


def _map_job(store: Store, dataset: Dataset, spec: MapSpec) -> Run | None:
    """The newest embedding job of exactly this map (its settings and the source's current
    checkpoint), any status, if there is one."""
    request = project.map_request(store, dataset, spec.source, **spec.project_args())
    return embedding_job.job_for(store, request)


def get_map(store: Store, dataset: Dataset, spec: MapSpec, *, key: str) -> LoadedMap | None:
    """The UMAP map if it is computed. Otherwise never waits for UMAP: a small dataset gets its
    PCA map now (the embedding takes a second or two) while the UMAP map is fitted in the
    background (``background_maps``), and the page redraws by itself when it is ready; a large
    one is offered as a background job whose progress is shown, with the PCA map of its
    embedding meanwhile once the job has stored it (None before)."""
    with user_errors():
        found = cached_map(store, dataset, spec)
        if found is not None:
            return found
        if runs_inline(dataset.n_images):  # small: PCA now, UMAP in the app's background thread
            return _small_map(store, dataset, spec, key=key)
        _job_panel(store, dataset, spec, key=key)
        if embed.cached_embeddings(store, dataset.id, spec.source, **spec.embed_args()):
            st.caption("PCA map of the embedding, shown until the map job has the UMAP map.")
            return preview_map(store, dataset, spec)
    return None


def _small_map(store: Store, dataset: Dataset, spec: MapSpec, *, key: str) -> LoadedMap | None:
    """The PCA map once the embedding is there (computed in the app's work process, never in
    the script: None meanwhile, its progress shown), and the UMAP map fitted in the background:
    polled until the fit ends. A fit that failed is said once, with a button to try again (no
    poll, no automatic retry)."""
    embedded = background_requests.embedding_or_progress(
        store, dataset, spec.source, spec.layer, spec.grid, key=key
    )
    if embedded is None:
        return None
    args = spec.project_args()
    state = background_maps.peek(store, dataset.id, spec.source, **args)
    if state is not None and state.done:  # ended without a map we can read
        preview = preview_map(store, dataset, spec)
        st.caption(
            f"The UMAP map failed ({state.error or 'no map was stored'}); this is the PCA map."
        )
        if st.button("Fit the UMAP map again", key=f"{key}_umap_retry"):
            background_maps.request(store, dataset.id, spec.source, retry=True, **args)
            st.rerun()
        return preview
    background_maps.request(store, dataset.id, spec.source, **args)
    preview = preview_map(store, dataset, spec)
    st.fragment(_background_progress, run_every=BACKGROUND_POLL_SECONDS)(store, dataset, spec)
    return preview


def _background_progress(store: Store, dataset: Dataset, spec: MapSpec) -> None:
    """Polls the background UMAP fit: says where it is, draws the whole page again once the
    fit ended (with the map, or saying it failed: the poll ends with the fit)."""
    state = background_maps.peek(store, dataset.id, spec.source, **spec.project_args())
    if state is None or state.done or cached_map(store, dataset, spec) is not None:
        st.rerun()
        return
    st.caption(
        f":material/hourglass_top: PCA map of the embedding, shown while the UMAP map is "
        f"computed ({state.stage}); it replaces this one by itself."
    )


def _job_panel(store: Store, dataset: Dataset, spec: MapSpec, *, key: str) -> None:
    run = _map_job(store, dataset, spec)
    if run is None or run.status not in ACTIVE_STATUSES:  # none, or ended without this map
        st.info(
            f"**{dataset.name}** has {dataset.n_images:,} images: its map is computed in the "
            "background (embedding, then UMAP), so this page stays usable. Follow it here or on "
            "the Runs page.",
            icon=":material/schedule:",
        )
        if run is not None and run.error:
            st.caption(f"The last attempt ({run.status}): {run.error}")
        if st.button(
            "Compute this map", key=f"{key}_submit", type="primary", icon=":material/play_arrow:"
        ):
            with user_errors():
                request = embedding_job.job_request(
                    store, dataset.id, spec.source, **spec.project_args()
                )
                jobs.submit(store, request, reuse_active=True)
                st.rerun()
        return
    polling = run.status in ACTIVE_STATUSES
    st.fragment(_job_progress, run_every=POLL_SECONDS if polling else None)(
        store, dataset, spec, run.id
    )


def _job_progress(store: Store, dataset: Dataset, spec: MapSpec, run_id: int) -> None:
    """Polls a map job while it is queued or running. Once it ended, the whole page is drawn
    again (with the map, or with the panel that offers it again and the last error), which
    registers no poll: a panel never outlives its job, nor offers to cancel an ended one."""
    try:
        run: Run | None = store.runs.get(run_id)
    except LookupError:  # deleted meanwhile
        run = None
    if run is None or run.status not in ACTIVE_STATUSES:
        st.rerun()
        return
    done = fraction_done(run)
    eta = eta_seconds(run)
    st.progress(
        done,
        text=f"Map job #{run.id}: {run.status} · {done:.0%}"
        + (f" · ETA {human_duration(eta)}" if eta else ""),
    )
    if run.cancel_requested:
        st.caption("Cancelling: the job stops within seconds.")
    elif st.button("Cancel", key=f"ex_cancel_{run.id}", icon=":material/stop_circle:"):
        with user_errors():  # it may have ended since this panel was drawn
            jobs.cancel(store, run.id)
        st.rerun()


def spec_label(choices: dict[str, str], spec: MapSpec) -> str:
    name = choices.get(spec.source, spec.source).split(" — ")[0]
    parts = [name] + ([spec.layer] if spec.layer else [])
    if spec.grid and spec.grid > 1:
        parts.append(f"{spec.grid}×{spec.grid}")
    return " · ".join(parts)
