"""Jigsaw results: held-out puzzles with the model's reassembly, accuracy, top-5, the Hamming
distribution, and the permutation set."""

import streamlit as st

from sslviz.results.jigsaw import permutation_set_stats
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

    tiles = st.columns(5)
    tiles[0].metric("held-out accuracy", f"{100 * metrics['accuracy']:.1f}%")
    tiles[1].metric("top-5 accuracy", f"{100 * metrics['top5']:.1f}%")
    tiles[2].metric("mean tiles misplaced", f"{metrics['mean_hamming']:.2f} of 9")
    tiles[3].metric("permutation set", f"{size:,}", help="puzzles the model chooses among")
    tiles[4].metric(
        "min Hamming in the set",
        f"{min_distance}",
        help="the closest two permutations of the set differ in this many tile positions",
    )
    st.caption(
        f"Held-out figures as `sslviz eval {run.id}` reports them, over {len(results.paths):,} "
        f"puzzles; chance is {100 / size:.1f}% (top-5 {min(100.0, 500 / size):.1f}%)."
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
