"""Rotation results: held-out accuracy, confusion matrix, per-angle accuracy, the mistakes, and
the images that have no clear "up"."""

import streamlit as st

from sslviz.results.rotation_answers import AMBIGUOUS_BELOW
from sslviz.training.figures import Figure
from sslviz.ui.heldout_view import heldout_summary
from sslviz.ui.resources import get_store
from sslviz.ui.results_view import result_page
from sslviz.ui.rotation_view import (
    ambiguous_section,
    confusion_figure,
    misclassified_grid,
    mistakes_caption,
    per_angle_figure,
    results_of,
)
from sslviz.ui.saliency_view import saliency_toggle
from sslviz.ui.upright_view import upright_section
from sslviz.ui.widgets import user_errors

store = get_store()
run, loaded, metrics = result_page(
    store,
    "rotation",
    title="Rotation results",
    blurb="Every held-out image, turned by 0°, 90°, 180° and 270°: which turn does the model "
    "name? (Gidaris et al. 2018.) Held-out images were never trained on.",
    key="rot_run",
)
with user_errors():
    results = results_of(store, run)

    confusion = metrics["confusion"]
    copies = sum(map(sum, confusion))
    heldout_summary(
        metrics,
        step=loaded.step,
        extra=[Figure("copies", "turned copies", f"{copies:,}", "4 turns of each image")],
    )

    left, right = st.columns([3, 2])
    left.plotly_chart(confusion_figure(confusion), key="rot_confusion")
    right.plotly_chart(per_angle_figure(confusion), key="rot_per_angle")

    looked = loaded if saliency_toggle(key="rot_saliency") else None
    below = st.session_state.get("rot_ambiguous_below", AMBIGUOUS_BELOW)
    ambiguity = results.ambiguity(below)
    wrong = results.misclassified()
    st.subheader(f"Misclassified turned copies ({len(wrong):,})")
    if wrong:
        st.caption(mistakes_caption(wrong, ambiguity))
        misclassified_grid(results, wrong, key="rot_wrong_page", saliency=looked)
    else:
        st.success("Every turned copy of every held-out image is named right.")
    ambiguous_section(results, key="rot_ambiguous", saliency=looked)

with user_errors():
    upright_section(store, run)
