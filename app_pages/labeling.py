"""Label and predict: label a few images of a dataset, get a label with confidence for every other
one, see how good that is, and export it. Labels are saved the moment they are given."""

import streamlit as st

from sslviz.fewshot.labeling import deleted_source, source_name
from sslviz.ui import labeling_predictions as lp
from sslviz.ui import labeling_queue as lq
from sslviz.ui import labeling_view as lv
from sslviz.ui.explorer_view import source_choices
from sslviz.ui.hover_thumbnails import hover_limit_caption, hover_thumbnails
from sslviz.ui.label_colours import session_colours
from sslviz.ui.leaderboard_view import leaderboard_section
from sslviz.ui.map import SVG_MAX, get_selection, render_map, sync_selection
from sslviz.ui.resources import get_store
from sslviz.ui.widgets import dataset_picker

store = get_store()
st.title("Label and predict")
st.caption(
    "Label a handful of images; every other image gets a predicted label with a confidence, and "
    "an honest estimate of how often that is right. Labels are saved at once."
)
linked = lv.session_from_url(store)
names = {d.id: d.name for d in store.datasets.list()}
dataset = dataset_picker(
    store, key="lb_dataset", preferred=names.get(linked.dataset_id) if linked else None
)
if dataset is None:
    st.stop()
session = lv.session_picker(store, dataset, source_choices(store, dataset))
if session is None:
    st.stop()
st.caption(
    f"Session **{session.name}** predicts from **{source_name(store, session.source)}**"
    + (f" (layer {session.layer})" if session.layer else "")
    + "."
)
active = lv.label_bar(store, session)
lv.manage_names(store, session)
gone = deleted_source(store, session)  # its run was deleted: nothing to predict from
if gone:
    st.warning(gone, icon=":material/link_off:")
emb = None if gone else lp.session_embeddings(store, dataset, session)  # None: on its way

# A label reruns the whole page (no fragment): the counts above, the map's colours, the queue
# and the predictions all follow it. Only the open tab runs, so a label costs what that tab costs.
label_tab, predict_tab = st.tabs(
    ["Label", "Predictions"], key=f"lb_tab_{session.id}", on_change="rerun"
)
loaded = None
if label_tab.open:
    with label_tab:
        left, right = st.columns([3, 2])
        with left:
            st.markdown("**Map** — select points to label them together")
            loaded = None if gone else lp.session_map(store, dataset, session, emb)
            if loaded is not None:
                keys = (f"lb_map_{session.id}", f"lb_sel_{session.id}")
                sync_selection(*keys)
                colour = lp.categorical_colours(
                    lp.session_label_array(store, session, loaded),
                    title="label",
                    colour_of=session_colours(store, session.id),
                )
                render_map(  # SVG while small: every label recolours it, a new figure each time
                    loaded.points,
                    key=keys[0],
                    selection_key=keys[1],
                    colour=colour,
                    height=460,
                    svg_max=SVG_MAX,
                )
                hover_limit_caption(len(loaded.points))
                lv.selection_actions(store, session, get_selection(keys[1]), active)
        with right:
            st.markdown("**Label these next**")
            if emb is not None:
                lq.next_queue(store, session, emb)
        st.divider()
        lv.gallery(store, session)

if predict_tab.open:
    with predict_tab:
        method = (
            st.segmented_control(
                "Method",
                ["auto", "logreg", "knn", "label-spreading", "poisson"],
                default="auto",
                key="lb_method",
            )
            or "auto"
        )
        result = lp.predictions(store, session, emb, method) if emb is not None else None
        loaded = None if gone or result is None else lp.session_map(store, dataset, session, emb)
        if result is not None:
            lp.estimate_panel(result, lp.chosen_note(store, session, result))
            a, b = st.columns([1, 2])
            if (figure := lp.confusion_figure(result)) is not None:
                a.plotly_chart(figure, key="lb_confusion")
            if loaded is not None:
                with b:
                    lp.prediction_map(loaded, result, session_colours(store, session.id))
            lp.downloads(store, dataset, result, emb, loaded)
            st.markdown("**Predictions by label** — least sure first")
            lp.per_label_gallery(store, session, result)
            lp.check_labels(store, session, result)
        leaderboard_section(store, session)  # which source predicts these labels best; fine-tune
if loaded is not None:  # last: the images behind the cursor, on every map of the page
    hover_thumbnails(store, dataset.id, loaded.points.image_ids)
