"""Live demo: any run's pretext model on an image you give it (upload, camera or a dataset)."""

import streamlit as st

from sslviz.ui.demo_view import demo_panel
from sslviz.ui.resources import get_store
from sslviz.ui.results_view import loaded_model, run_caption, run_picker
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
    demo_panel(loaded, run)
