"""Explorer page: a dataset's images as a UMAP map of an embedding; select to see thumbnails,
click one for its nearest neighbours, compare two sources side by side."""

import numpy as np
import streamlit as st

from sslviz.ui import data_checks_view
from sslviz.ui import explorer_panels as panels
from sslviz.ui import explorer_view as ev
from sslviz.ui.deep_links import say_missing
from sslviz.ui.hover_thumbnails import hover_limit_caption, hover_thumbnails
from sslviz.ui.map import get_selection, render_map, sync_selection
from sslviz.ui.resources import get_store
from sslviz.ui.widgets import dataset_picker

store = get_store()
st.title("Explorer")
st.caption(
    "Every image of a dataset as a point: images the encoder sees as similar land close together. "
    "Compare a trained run with the untrained `random` baseline to see what training learned."
)

top = st.columns([2, 3])
with top[0]:
    dataset = dataset_picker(store, key="ex_dataset", param="dataset")
if dataset is None:
    st.stop()
choices = ev.source_choices(store, dataset)
has_runs = any(c.isdigit() for c in choices)
with top[1]:
    query = st.text_input(
        "Find images by file name", key="ex_search", placeholder="part of a path, e.g. cat_01"
    ).strip()

umap = ev.umap_settings(key="ex_umap")
wanted = st.query_params.get("source", "")  # ?source=3 / random / pixels: a link to a run's map
first = wanted if wanted in choices else ev.default_source(store, dataset, choices)
if wanted and wanted not in choices:  # said once: the link's source is then dropped
    say_missing(f"map source {wanted!r} for {dataset.name}", instead=choices[first])
    del st.query_params["source"]
specs = [ev.map_picker(store, choices, umap, key="ex_a", label="Source", default=first)]
compare = st.toggle("Compare with a second map, side by side", key="ex_compare")
if compare:
    specs.append(
        ev.map_picker(
            store,
            choices,
            umap,
            key="ex_b",
            label="Compare with",
            default="random" if has_runs else "pixels",
            beside=specs[0],
        )
    )
if not has_runs:
    st.caption("No trained run yet: the baselines work now; train an encoder to compare with them.")
how, k, session_id = panels.colour_controls(store, dataset)
check = data_checks_view.check_controls(store, dataset, specs[0].source) if how == "check" else None

# --- the maps --------------------------------------------------------------------------------
sides = ("a", "b")[: len(specs)]
keys = {side: (f"ex_map_{side}", f"ex_sel_{side}") for side in sides}
loaded = {
    side: ev.get_map(store, dataset, spec, key=f"ex_{side}")
    for side, spec in zip(sides, specs, strict=True)
}


@st.fragment
def maps_and_selection() -> None:
    """The maps, the selection, the neighbours and the data checks: a fragment, so a click or a
    box selection reruns this part only (the pickers, the embeddings and the maps are not touched)."""
    for side in sides:  # before drawing: the selection in one map is highlighted in the other
        if sync_selection(*keys[side]):
            st.session_state["ex_active"] = side
    active = st.session_state.get("ex_active", "a") if compare else "a"
    if loaded.get(active) is None:
        active = "a"
    hits = panels.search_hits(list(loaded.values()), query)
    if query:
        st.caption(f"{len(hits):,} image(s) match “{query}”: drawn large and outlined.")

    labels = {side: ev.spec_label(choices, spec) for side, spec in zip(sides, specs, strict=True)}
    for side, column in zip(sides, st.columns(len(sides)), strict=True):
        with column:
            if loaded[side] is None:
                continue
            if compare:
                st.markdown(f"**{labels[side]}**")
            other = get_selection(keys["b" if side == "a" else "a"][1]) if compare else panels.EMPTY
            highlight = np.union1d(hits, other) if len(hits) or len(other) else None
            render_map(
                loaded[side].points,
                key=keys[side][0],
                selection_key=keys[side][1],
                colour=data_checks_view.colouring(store, dataset, loaded[side], check)
                if check
                else panels.colouring(store, loaded[side], how, k=k, session_id=session_id),
                highlight=highlight,
                height=480 if compare else 600,
            )
            hover_limit_caption(len(loaded[side].points))
            panels.quality_figures(
                loaded[side], *panels.quality_labels(store, loaded[side], session_id)
            )

    # --- the selection and its neighbours ---------------------------------------------------------
    if all(m is None for m in loaded.values()):
        return
    st.divider()
    selected = get_selection(keys[active][1])
    where = f" on the {'left' if active == 'a' else 'right'} map" if compare else ""
    panels.selection_panel(store, dataset, selected, selection_key=keys[active][1], where=where)
    shown = [(labels[side], m) for side, m in loaded.items() if m is not None]
    panels.neighbours_panel(store, dataset, selected, shown)
    data_checks_view.checks_section(store, dataset, shown, selection_key=keys["a"][1], choice=check)
    # last: the images behind the cursor are built (once) after everything else is drawn
    ids = [m.points.image_ids for m in loaded.values() if m is not None]
    hover_thumbnails(store, dataset.id, np.unique(np.concatenate(ids)))


maps_and_selection()
