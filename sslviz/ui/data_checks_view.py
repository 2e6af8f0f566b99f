"""The Explorer's data checks: colour a map by a per-image check, and a sortable, filterable table
of every check with the images behind it.

Checks (the numbers ``sslviz scores / duplicates / outliers / changed`` print):
- a pretext run's per-image scores (:mod:`sslviz.results.image_scores`): rotation ``upright``,
  colorization ``gain`` over grey, jigsaw tiles ``misplaced``, ...;
- from the map's own embedding (:mod:`sslviz.maps.neighbour_checks`): the outlier score (mean centred
  cosine distance to the 10 nearest), near-duplicate groups (centred cosine above a threshold),
  and, for a run's map, the share of each image's 10 nearest neighbours kept from ``random``.

The page calls ``check_controls`` when "Colour by" is "data check", ``colouring`` for each map,
and ``checks_section`` under the maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from sslviz.maps import neighbour_checks
from sslviz.results import checks_job
from sslviz.results import image_scores as scoring
from sslviz.store import Dataset, Store
from sslviz.store.kinds import run_kind
from sslviz.ui import check_jobs
from sslviz.ui.explorer_view import LoadedMap
from sslviz.ui.map import Colouring, categorical_colours, numeric_colours, set_selection
from sslviz.ui.thumbnails import thumbnail_grid
from sslviz.ui.widgets import user_errors

CHECKS = {
    "score": "pretext score of a run",
    "outlier": "outlier score",
    "duplicates": "near-duplicates",
    "changed": "neighbours kept from random",
}
TABLE_ROWS = 5_000  # rows drawn in the table at most (after filtering and sorting)
SHOW = {
    "all": "all images",
    "duplicates": "near-duplicates only",
    "outliers": "top 50 outliers",
    "changed": "50 most changed by training",
}


@dataclass(frozen=True)
class CheckChoice:
    """What "Colour by: data check" colours by."""

    check: str  # a key of CHECKS
    threshold: float = neighbour_checks.DEFAULT_THRESHOLD
    run: int | None = None  # the pretext run, for "score"
    column: str | None = None  # its score column


# --- the pieces of data ----------------------------------------------------------------------------
def pretext_runs(store: Store, dataset: Dataset) -> dict[int, str]:
    """Pretext runs with a checkpoint (this dataset's first, newest first) -> their label."""
    runs = [
        r
        for r in store.runs.list()
        if run_kind(r.kind).pretext and (r.status == "finished" or r.step > 0)
    ]
    runs.sort(key=lambda r: (r.dataset_id != dataset.id, -r.id))
    return {r.id: f"#{r.id} {r.kind}" for r in runs}


def _settings(loaded: LoadedMap, **what: Any) -> checks_job.ChecksSettings:
    emb = loaded.embeddings
    return checks_job.ChecksSettings(
        source=loaded.spec.source, layer=emb.layer, grid=emb.grid, **what
    )


def graph_of(
    store: Store, loaded: LoadedMap, *, key: str, dataset: Dataset
) -> neighbour_checks.NeighbourGraph | None:
    """The kNN graph of a map's embedding: stored in the workspace by a data-check job (every
    pair of images is compared: minutes at 100k); None until that job has finished (the page
    follows it and reruns then)."""
    emb = loaded.embeddings
    found = neighbour_checks.cached_graph(store, emb)
    if found is None and check_jobs.ready(store, dataset, _settings(loaded), key=f"{key}_graph"):
        found = neighbour_checks.cached_graph(store, emb)
    return found


def overlap_of(store: Store, dataset: Dataset, loaded: LoadedMap) -> np.ndarray | None:
    """(N,) share of each image's 10 nearest kept from ``random`` (same layer and pooling), for a
    run's map; None for a baseline's map, or until the job comparing with random has finished."""
    spec = loaded.spec
    if not spec.source.isdigit():
        return None
    settings = _settings(loaded, graph=False, changed=True)
    if not check_jobs.ready(store, dataset, settings, key=f"ex_changed_{spec.source}"):
        return None
    emb = loaded.embeddings  # the job stored both graphs: read, not computed
    _, graph, _, base_graph = neighbour_checks.changed_graphs(
        store, dataset.id, spec.source, layer=emb.layer, grid=emb.grid
    )
    return neighbour_checks.neighbourhood_overlap(graph, base_graph)


def scores_of(store: Store, dataset: Dataset, run_id: int, *, key: str) -> Any:
    """The run's per-image scores of the dataset: stored ones at once, else scored by a job
    (one pass of the model over every image); None until it has finished."""
    found = scoring.cached_image_scores(store, run_id, dataset.id)
    if found is not None:
        return found
    settings = checks_job.ChecksSettings(source=str(run_id), graph=False, score_run=run_id)
    if check_jobs.ready(store, dataset, settings, key=f"{key}_score"):
        return scoring.cached_image_scores(store, run_id, dataset.id)
    return None


def rows_of(scores: Any, image_ids: np.ndarray) -> np.ndarray:
    """Rows of ``scores`` for ``image_ids`` (-1 where an image is not scored)."""
    order = np.argsort(scores.image_ids)
    ranked = scores.image_ids[order]
    where = np.clip(np.searchsorted(ranked, image_ids), 0, max(len(ranked) - 1, 0))
    return (
        np.where(ranked[where] == image_ids, order[where], -1)
        if len(ranked)
        else -np.ones_like(image_ids)
    )


# --- colour by a check ----------------------------------------------------------------------------
def check_controls(store: Store, dataset: Dataset, source: str) -> CheckChoice:
    """The check to colour by, and its settings (threshold; run and score column)."""
    left, middle, right = st.columns([2, 2, 2])
    check = left.selectbox(
        "Data check",
        list(CHECKS),
        format_func=CHECKS.get,
        key="ex_check",
        help="Colour each image by a check: see the table under the maps.",
    )
    if check == "duplicates":
        threshold = middle.slider(
            "Centred cosine at least",
            0.80,
            1.0,
            neighbour_checks.DEFAULT_THRESHOLD,
            0.005,
            key="ex_check_threshold",
            help="Images this similar count as near-duplicates when they also stand apart from "
            "their other neighbours (a jump in distance): re-encodes, resizes, small crops of one "
            "image — not overlapping crops of one photo, which a learned embedding also puts "
            "close. `pixels` is the strictest judge of copies.",
        )
        return CheckChoice(check, threshold=float(threshold))
    if check != "score":
        return CheckChoice(check)
    runs = pretext_runs(store, dataset)
    if not runs:
        middle.caption("No pretext run yet: train one to score images.")
        return CheckChoice(check)
    options = list(runs)
    default = int(source) if source.isdigit() and int(source) in runs else options[0]
    run_id = middle.selectbox(
        "Run",
        options,
        index=options.index(default),
        format_func=runs.get,
        key=f"ex_check_run_{source}",  # per map source: follows a change of the map's source
    )
    columns, headline = scoring.COLUMNS[store.runs.get(run_id).kind]
    column = right.selectbox(
        "Score",
        columns,
        index=columns.index(headline),
        key=f"ex_check_col_{run_id}",
        help=" · ".join(f"{c}: {scoring.DESCRIPTIONS[c]}" for c in columns),
    )
    return CheckChoice(check, run=run_id, column=column)


def colouring(
    store: Store, dataset: Dataset, loaded: LoadedMap, choice: CheckChoice
) -> Colouring | None:
    """The map's colours for a check (None: nothing to colour by, said in a caption)."""
    with user_errors():
        if choice.check in ("outlier", "duplicates"):
            graph = graph_of(store, loaded, key=f"ex_colour_{loaded.spec.source}", dataset=dataset)
            if graph is None:
                return None
        if choice.check == "outlier":
            scores = neighbour_checks.outlier_scores(graph)
            return numeric_colours(scores, title="outlier score", colorscale="Inferno")
        if choice.check == "duplicates":
            groups = neighbour_checks.duplicate_groups(
                len(graph), neighbour_checks.duplicate_pairs(graph, choice.threshold)
            )
            number = neighbour_checks.duplicate_of(len(graph), groups)
            names = np.array([f"group {g}" if g else "" for g in number], dtype=object)
            st.caption(
                f"{len(groups):,} group(s) of near-duplicates ({int((number > 0).sum()):,} images)."
            )
            return categorical_colours(names, title="near-duplicates", missing="no near-duplicate")
        if choice.check == "changed":
            overlap = overlap_of(store, dataset, loaded)
            if overlap is None:
                st.caption("Neighbours kept from random: choose a run's map (not a baseline).")
                return None
            return numeric_colours(overlap, title="kept from random", colorscale="RdYlBu")
        if choice.check == "score" and choice.run is not None:
            scores = scores_of(store, dataset, choice.run, key=f"ex_colour_{loaded.spec.source}")
            if scores is None:
                return None
            rows = rows_of(scores, loaded.points.image_ids)
            values = np.where(rows >= 0, scores.columns[choice.column][rows], np.nan)
            return numeric_colours(values, title=f"#{choice.run} {choice.column}")
    return None


# --- the table -------------------------------------------------------------------------------------
def check_table(
    store: Store, dataset: Dataset, loaded: LoadedMap, run_id: int | None, threshold: float
) -> pd.DataFrame | None:
    """One row per image of the map: path, outlier score, near-duplicate group, neighbours kept
    from random (a run's map), and the pretext scores of ``run_id``; indexed by image id."""
    graph = graph_of(store, loaded, key="ex_table", dataset=dataset)
    if graph is None:
        return None
    groups = neighbour_checks.duplicate_groups(
        len(graph), neighbour_checks.duplicate_pairs(graph, threshold)
    )
    table = pd.DataFrame(
        {
            "path": graph.paths,
            "outlier": neighbour_checks.outlier_scores(graph),
            "dup_group": neighbour_checks.duplicate_of(len(graph), groups),
            "nearest": [graph.paths[i] for i in graph.indices[:, 0]] if graph.k else "",
            "cosine": graph.similarity[:, 0] if graph.k else np.nan,  # the closest other image
        },
        index=pd.Index(graph.image_ids, name="image"),
    )
    overlap = overlap_of(store, dataset, loaded)
    if overlap is not None:
        table["kept"] = overlap
    if run_id is not None:
        scores = scores_of(store, dataset, run_id, key="ex_table")
        if scores is not None:
            rows = rows_of(scores, graph.image_ids)
            for name, values in scores.columns.items():
                table[name] = np.where(rows >= 0, values[rows], np.nan)
    return table


def _shown(table: pd.DataFrame, show: str, query: str) -> pd.DataFrame:
    if query:
        table = table[table["path"].str.contains(query, case=False, regex=False)]
    if show == "duplicates":
        return table[table["dup_group"] > 0].sort_values(["dup_group", "path"])
    if show == "outliers":
        return table.sort_values("outlier", ascending=False).head(50)
    if show == "changed" and "kept" in table:
        return table.sort_values(["kept", "path"]).head(50)
    return table


def checks_section(
    store: Store,
    dataset: Dataset,
    maps: list[tuple[str, LoadedMap]],
    *,
    selection_key: str,
    choice: CheckChoice | None,
) -> None:
    """ "Data checks": the table of the first map's checks with filters, a button that selects
    the rows shown on the map, and the images behind the most telling rows."""
    if not maps:
        return
    st.divider()
    st.subheader("Data checks")
    label, loaded = maps[0]
    runs = pretext_runs(store, dataset)
    source = loaded.spec.source
    options: list[int | None] = [None, *runs]
    default = int(source) if source.isdigit() and int(source) in runs else None
    top = st.columns([2, 2, 2, 1.4], vertical_alignment="bottom")
    run_id = top[0].selectbox(
        "Pretext scores of",
        options,
        index=options.index(default),
        key=f"ex_table_run_{source}",  # per map source: follows a change of the map's source
        format_func=lambda r: "no run" if r is None else runs[r],
        help="Add a pretext run's per-image scores (computed once per checkpoint).",
    )
    show = top[1].selectbox("Show", list(SHOW), format_func=SHOW.get, key="ex_table_show")
    query = top[2].text_input("Path contains", key="ex_table_query").strip()
    threshold = (
        choice.threshold
        if choice is not None and choice.check == "duplicates"
        else neighbour_checks.DEFAULT_THRESHOLD
    )
    with user_errors():
        table = check_table(store, dataset, loaded, run_id, threshold)
        if table is None:
            return
        shown = _shown(table, show, query)
        if show == "changed" and "kept" not in table:
            st.caption("“Most changed by training” needs a run's map: choose one as the source.")
        with top[3]:
            st.button(
                "Select these",
                key="ex_table_select",
                icon=":material/select:",
                on_click=set_selection,
                args=(selection_key, shown.index.to_numpy()),
                disabled=shown.empty,
                help="Select the rows shown here on the map.",
            )
        st.caption(
            f"{label}: {len(shown):,} of {len(table):,} images. Click a column to sort. "
            f"outlier = mean centred cosine distance to the {neighbour_checks.K} nearest; dup_group = "
            f"which group of near-duplicates (an id, not a count; 0: none; centred cosine ≥ {threshold:g}); nearest/cosine = "
            f"the closest other image; kept = share of the {neighbour_checks.K} nearest also nearest in "
            "random."
            + (
                f" Scores of run #{run_id}: "
                + "; ".join(
                    f"{c} = {scoring.DESCRIPTIONS[c]}"
                    for c in table.columns
                    if c in scoring.DESCRIPTIONS
                )
                + "."
                if run_id is not None
                else ""
            ),
        )
        st.dataframe(
            shown.head(TABLE_ROWS),
            key="ex_table",
            height=320,
            hide_index=True,
            column_config=_column_config(shown),
        )
        _images_behind(store, dataset, shown, show)


def _column_config(table: pd.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {"path": st.column_config.TextColumn("path", width="medium")}
    for name in table.columns:
        if name in ("dup_group", "seen_turn", "misplaced"):
            config[name] = st.column_config.NumberColumn(name, format="%d")
        elif name == "kept" or name in ("upright", "sureness", "confidence"):
            config[name] = st.column_config.ProgressColumn(
                name, min_value=0.0, max_value=1.0, format="%.2f"
            )
        elif name not in ("path", "nearest"):
            config[name] = st.column_config.NumberColumn(name, format="%.3f")
    return config


def _images_behind(store: Store, dataset: Dataset, shown: pd.DataFrame, show: str) -> None:
    """Thumbnails of the shown rows for the focused views (duplicates, outliers, most changed)."""
    if show == "all" or shown.empty:
        return
    captions = {
        "duplicates": [f"group {g}" for g in shown["dup_group"]],
        "outliers": [f"outlier {v:.3f}" for v in shown["outlier"]],
        "changed": [f"kept {v:.0%}" for v in shown["kept"]] if "kept" in shown else None,
    }[show]
    if captions is not None:
        thumbnail_grid(
            store,
            dataset.id,
            shown.index.to_numpy(),
            key=f"ex_checks_{show}",
            captions=captions,
            page_size=24,
        )
