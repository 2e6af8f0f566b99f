"""Jigsaw page pieces: the held-out puzzles solved (once per checkpoint), the Hamming histogram,
and the paged puzzle gallery (shuffled | model's reassembly | original)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from sslviz.results import stored
from sslviz.results.apply import LoadedModel, checkpoint_version
from sslviz.results.jigsaw_answers import JigsawResults
from sslviz.store import Run, Store
from sslviz.ui.results_view import held_out_images, loaded_model, pager, picture
from sslviz.ui.saliency_view import jigsaw_picture

PER_PAGE = 6


@st.cache_resource(show_spinner="Solving the held-out puzzles…", max_entries=8)
def _results(home: str, run_id: int, version: int) -> JigsawResults:
    from sslviz.ui.resources import get_store

    store = get_store()
    run = store.runs.get(run_id)
    held, loaded = held_out_images(store, run), loaded_model(store, run, "jigsaw")
    # the answers were stored by the run's worker when it ended (or here, once per checkpoint)
    logits = stored.jigsaw_of(store, run, lambda: loaded, held)
    layout = loaded.task.eval_layout(held.images, loaded.config.seed)
    return JigsawResults(held.paths, held.images, layout, loaded.task.permutations.cpu(), logits)


def results_of(store: Store, run: Run) -> JigsawResults:
    """One puzzle per held-out image, as ``sslviz eval`` cuts them, with the model's answers."""
    return _results(str(store.workspace.root), run.id, checkpoint_version(store, run.id))


def hamming_figure(histogram: list[int]) -> go.Figure:
    """Bars: how many puzzles the model's answer leaves with 0..9 tiles out of place."""
    total = max(1, sum(histogram))
    figure = go.Figure(
        go.Bar(
            x=list(range(10)),
            y=histogram,
            text=[f"{c:,}" if c else "" for c in histogram],
            textposition="outside",
            marker_color=["#2f855a"] + ["#c05621"] * 9,
            customdata=[100 * c / total for c in histogram],
            hovertemplate="%{x} tiles misplaced: %{y} puzzles (%{customdata:.0f}%)<extra></extra>",
        )
    )
    figure.update_layout(
        title="Tiles out of place in the model's answer (Hamming distance; 0 = solved)",
        xaxis={"title": "Hamming distance", "dtick": 1},
        yaxis_title="puzzles",
        height=360,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def order_text(permutation: list[int]) -> str:
    """A permutation as the 3x3 grid of tile numbers, e.g. ``4 0 8 / 1 2 6 / 3 5 7``."""
    return " / ".join(" ".join(str(t) for t in permutation[r : r + 3]) for r in (0, 3, 6))


def puzzles(
    results: JigsawResults,
    indices: list[int],
    *,
    key: str,
    saliency: LoadedModel | None = None,
) -> None:
    """Paged rows: shuffled tiles | the model's reassembly | original, and the verdict. With
    ``saliency`` (the run's model), the shuffled tiles show where the model looked."""
    hamming = results.hamming
    for i in [indices[j] for j in pager(len(indices), PER_PAGE, key=key, label="puzzles")]:
        shuffled, reassembled, original = results.boards(i)
        row = st.columns([2, 2, 2, 3], vertical_alignment="center")
        if saliency is not None:
            shown, caption = jigsaw_picture(results, saliency, i), "where it looked (Grad-CAM)"
        else:
            shown, caption = picture(shuffled, 180), "shuffled tiles"
        row[0].image(shown, caption=caption, width="stretch")
        row[1].image(picture(reassembled, 180), caption="model's reassembly", width="stretch")
        row[2].image(picture(original, 180), caption="original", width="stretch")
        d = int(hamming[i])
        truth = results.permutations[results.labels[i]].tolist()
        guess = results.permutations[results.predicted[i]].tolist()
        verdict = ":green[**solved**]" if d == 0 else f":red[**wrong**: {d} of 9 tiles misplaced]"
        row[3].markdown(
            f"{verdict}  \ntrue order `{order_text(truth)}` (#{int(results.labels[i])})  \n"
            f"model says `{order_text(guess)}` (#{int(results.predicted[i])})"
            + ("  \n:orange[right answer in its top 5]" if d and bool(results.top5[i]) else "")
        )
        row[3].caption(results.paths[i])
