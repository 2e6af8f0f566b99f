"""Features: what each channel of a run's network responds to (its dataset examples), the
first-layer filters, and one image through the network, with the untrained network beside it."""

import streamlit as st

from sslviz.ui.colour_scale import colour_bar
from sslviz.ui.demo_view import image_source
from sslviz.ui.features_view import (
    SCALE_NOTE,
    SELECTIVITY_HELP,
    channels_panel,
    filters_picture,
    one_image_panel,
    random_layer,
    source_of,
)
from sslviz.ui.resources import get_store
from sslviz.ui.results_view import run_picker
from sslviz.ui.widgets import dataset_picker, user_errors

store = get_store()
st.title("Features")
st.caption(
    "What each channel responds to: the images whose strongest spot excites it most, cropped to "
    "that spot's receptive field (OpenAI Microscope's dataset examples). The untrained network "
    "beside it shows what training changed."
)
run = run_picker(store, None, key="feat_run")
if run is None:
    st.stop()
with user_errors():
    source = source_of(store, str(run.id))
    layers = list(source.encoder.layer_names)
    linked = st.query_params.get("layer")
    if "feat_channel" not in st.session_state and st.query_params.get("channel", "").isdigit():
        st.session_state["feat_channel"] = int(st.query_params["channel"])
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    with left:
        names = {d.id: d.name for d in store.datasets.list()}
        dataset = dataset_picker(store, key="feat_dataset", preferred=names.get(run.dataset_id))
    layer = middle.selectbox(
        "Layer",
        layers,
        index=layers.index(linked) if linked in layers else len(layers) - 1,
        key="feat_layer",
    )
    compare = right.toggle("Untrained beside it", value=True, key="feat_compare")
    if dataset is None:
        st.stop()
    st.query_params["layer"] = layer
    channels, filters, one = st.tabs(["Channels", "First-layer filters", "One image"])
    with channels:
        st.caption(SELECTIVITY_HELP)
        columns = st.columns(2) if compare else [st.container()]
        with columns[0]:
            channels_panel(store, dataset, str(run.id), layer, key="feat", title=f"Run #{run.id}")
        if compare:
            with columns[1]:
                channels_panel(
                    store,
                    dataset,
                    "random",
                    random_layer(store, layer),
                    key="feat_rand",
                    title="Untrained (random)",
                )
        chosen = st.session_state.get("feat_channel")
        if chosen is None:
            st.query_params.pop("channel", None)
        else:
            st.query_params["channel"] = str(chosen)
    with filters:
        st.caption(
            "The first convolution's filters, each scaled on its own: grey = 0, the darkest and "
            "brightest = its largest negative and positive weights. "
            + (
                "Colorization sees lightness only: its filters are grey."
                if run.kind == "colorization"
                else ""
            )
        )
        colour_bar("most negative weight", "most positive weight", grey=True)
        st.markdown(f"**Run #{run.id}**")
        st.image(filters_picture(source), width="stretch")
        if compare:
            st.markdown("**Untrained (random)**")
            st.image(filters_picture(source_of(store, "random")), width="stretch")
    with one:
        given = image_source(store, run, key="feat_image")
        if given is None:
            st.info("Give the network an image above.", icon=":material/image:")
        else:
            from sslviz.results.apply import read_image

            image = read_image(given.data, given.name)
            st.caption(
                f"Each channel's activation map at {layer} over the image; under each, its "
                "peak on this image (1 = the channel's highest on any dataset image)."
            )
            colour_bar("0", "1 = the channel's dataset maximum", note=SCALE_NOTE)
            one_image_panel(store, dataset, str(run.id), layer, image, title=f"Run #{run.id}")
            if compare:
                one_image_panel(
                    store,
                    dataset,
                    "random",
                    random_layer(store, layer),
                    image,
                    title="Untrained (random)",
                )
