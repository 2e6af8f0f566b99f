"""Jigsaw results: held-out puzzles with the model's reassembly, accuracy, top-5, the Hamming
distribution, and the permutation set."""

import streamlit as st

from sslviz.results.jigsaw_answers import permutation_set_stats
from sslviz.training.figures import Figure
from sslviz.ui.heldout_view import heldout_summary
from sslviz.ui.jigsaw_view import hamming_figure, puzzles, results_of
from sslviz.ui.resources import get_store
from sslviz.ui.results_view import result_page
from sslviz.ui.saliency_view import saliency_toggle
from sslviz.ui.widgets import user_errors

store = get_store()
run, loaded, metrics = result_page(
    store,
    "jigsaw",
    title="Jigsaw results",
    blurb="Each held-out image is cut into 3×3 tiles, shuffled by one permutation of a fixed "
    "set, and the model names the permutation (Noroozi & Favaro 2016). Some tiles are grey, as in "
    "training.",
    key="jig_run",
)
with user_errors():
    results = results_of(store, run)
    size, min_distance = permutation_set_stats(loaded.task.permutations)

    heldout_summary(
        metrics,
        step=loaded.step,
        extra=[
            Figure("size", "permutation set", f"{size:,}", "puzzles the model chooses among"),
            Figure(
                "min_distance",
                "min Hamming in the set",
                f"{min_distance}",
                "tile positions the closest two permutations differ in",
            ),
        ],
    )
    st.caption(
        f"Held-out figures as `sslviz eval {run.id}` reports them, over {len(results.paths):,} "
        "puzzles."
    )
    st.plotly_chart(hamming_figure(results.hamming_histogram()), key="jig_hamming")

    st.subheader("Puzzles")
    show = st.segmented_control("Show", ["all", "wrong", "solved"], default="all", key="jig_filter")
    hamming = results.hamming.tolist()
    keep = {
        "wrong": lambda d: d > 0,
        "solved": lambda d: d == 0,
    }.get(show or "all", lambda d: True)
    indices = [i for i, d in enumerate(hamming) if keep(d)]
    if indices:
        looked = loaded if saliency_toggle(key="jig_saliency") else None
        puzzles(results, indices, key="jig_page", saliency=looked)
    else:
        st.caption(f"No {show} puzzles.")
