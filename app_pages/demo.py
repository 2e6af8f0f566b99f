"""Live demo: any run's pretext model on an image you give it (upload, camera or a dataset)."""

import streamlit as st

from sslviz.results.apply import apply_image, read_image
from sslviz.results.colorization import is_classification
from sslviz.ui.demo_view import image_source, show_applied
from sslviz.ui.resources import get_store
from sslviz.ui.results_view import loaded_model, run_caption, run_picker
from sslviz.ui.saliency_view import demo_saliency
from sslviz.ui.widgets import user_errors

store = get_store()
st.title("Live demo")
st.caption(
    "Give a trained model any image and watch it answer: which way is up (rotation), what "
    "colours belong here (colorization), where the tiles go (jigsaw)."
)
run = run_picker(store, None, key="demo_run")
if run is None:
    st.stop()
with user_errors():
    loaded = loaded_model(store, run)
    run_caption(loaded, run)
    options = {}
    if run.task == "colorization" and is_classification(loaded.task):
        options["temperature"] = st.slider(
            "Temperature (lower is more vivid)",
            0.05,
            1.0,
            float(loaded.task.options.get("temperature", 0.38)),
            0.01,
            key="demo_temperature",
        )
    if run.task == "jigsaw":
        options["seed"] = st.number_input("Puzzle number", 0, 10_000, 0, key="demo_seed")
    given = image_source(store, run, key="demo")
    if given is None:
        st.info("Give the model an image above.", icon=":material/image:")
        st.stop()
    data, name = given
    image = read_image(data, name)
    result = apply_image(loaded, image, **options)
    show_applied(result)
    demo_saliency(loaded, image, seed=int(options.get("seed", 0)))
