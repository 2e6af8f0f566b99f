"""Rotation page pieces: the confusion matrix and per-angle accuracy (plotly), and paged grids of
misclassified turned copies and of rotation-ambiguous images."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from sslviz.pretext.rotation import ANGLES
from sslviz.results import stored
from sslviz.results.apply import LoadedModel, checkpoint_version
from sslviz.results.rotation_answers import (
    ABSOLUTE_BELOW,
    AMBIGUOUS_BELOW,
    Ambiguity,
    RotationResults,
    TurnedCopy,
    angle,
    turned,
)
from sslviz.store import Run, Store
from sslviz.ui.results_view import held_out_images, loaded_model, pager, picture
from sslviz.ui.saliency_view import rotation_pictures

LABELS = [f"{a}°" for a in ANGLES]
COLUMNS = 6


@st.cache_resource(show_spinner="Turning every held-out image four ways…", max_entries=8)
def _results(home: str, run_id: int, version: int) -> RotationResults:
    from sslviz.ui.resources import get_store

    store = get_store()
    run = store.runs.get(run_id)
    held = held_out_images(store, run)
    # stored by the run's worker when it ended (computed and stored here for a newer checkpoint)
    probabilities = stored.rotation_of(
        store, run, lambda: loaded_model(store, run, "rotation"), held
    )
    return RotationResults(held.paths, held.images, probabilities)


def results_of(store: Store, run: Run) -> RotationResults:
    """Per-image results of the run's latest checkpoint, computed once per checkpoint."""
    return _results(str(store.workspace.root), run.id, checkpoint_version(store, run.id))


def confusion_figure(confusion: list[list[int]]) -> go.Figure:
    """Heatmap coloured by row percentage, each cell labelled with its count and percentage."""
    totals = [max(1, sum(row)) for row in confusion]
    pct = [[100 * c / t for c in row] for row, t in zip(confusion, totals, strict=True)]
    text = [
        [f"<b>{c:,}</b><br>{p:.0f}%" for c, p in zip(row, prow, strict=True)]
        for row, prow in zip(confusion, pct, strict=True)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=pct,
            x=LABELS,
            y=LABELS,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 16},
            colorscale="Blues",
            zmin=0,
            zmax=100,
            colorbar={"title": "% of row"},
            hovertemplate="turned %{y}, model says %{x}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Confusion matrix (held-out)",
        xaxis_title="model says",
        yaxis_title="image turned by",
        yaxis_autorange="reversed",
        height=420,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def per_angle_figure(confusion: list[list[int]]) -> go.Figure:
    """Accuracy for each applied turn (the diagonal over the row sums)."""
    acc = [100 * row[k] / max(1, sum(row)) for k, row in enumerate(confusion)]
    figure = go.Figure(
        go.Bar(
            x=LABELS,
            y=acc,
            text=[f"{a:.1f}%" for a in acc],
            textposition="outside",
            marker_color="#2b6cb0",
            hovertemplate="turned %{x}: %{y:.1f}% right<extra></extra>",
        )
    )
    figure.add_hline(y=25, line_dash="dot", annotation_text="chance (25%)")
    figure.update_layout(
        title="Accuracy per angle",
        xaxis_title="image turned by",
        yaxis_title="% right",
        yaxis_range=[0, 110],
        height=420,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def misclassified_grid(
    results: RotationResults,
    wrong: list[TurnedCopy],
    *,
    key: str,
    saliency: LoadedModel | None = None,
) -> None:
    """Paged grid of wrong turned copies, most confident first; ambiguous images are marked.
    With ``saliency`` (the run's model), each copy shows where the model looked."""
    below = st.session_state.get("rot_ambiguous_below", AMBIGUOUS_BELOW)
    ambiguous = set(results.ambiguous(below))
    shown = [wrong[i] for i in pager(len(wrong), 4 * COLUMNS, key=key, label="mistakes")]
    looked = _looked(results, saliency, [c.image for c in shown], [c.turn for c in shown])
    for start in range(0, len(shown), COLUMNS):
        for column, copy in zip(st.columns(COLUMNS), shown[start : start + COLUMNS], strict=False):
            image = turned(results.images[copy.image : copy.image + 1], copy.turn)[0]
            column.image(looked.get((copy.image, copy.turn), picture(image)), width="stretch")
            column.markdown(
                f"turned **{angle(copy.turn)}** · says :red[**{angle(copy.predicted)}**] "
                f"({100 * copy.confidence:.0f}%)"
                + ("  \n:orange[ambiguous image]" if copy.image in ambiguous else "")
            )
            column.caption(results.paths[copy.image])


def ambiguous_grid(
    results: RotationResults,
    indices: list[int],
    *,
    key: str,
    saliency: LoadedModel | None = None,
) -> None:
    """Paged grid of ambiguous images (upright), with how the model splits the upright copy.
    With ``saliency`` (the run's model), each shows where the model looked."""
    top = results.top_probability()
    typical = results.typical_sureness()
    shown = [indices[i] for i in pager(len(indices), 2 * COLUMNS, key=key, label="images")]
    looked = _looked(results, saliency, shown, [0] * len(shown))
    for start in range(0, len(shown), COLUMNS):
        for column, i in zip(st.columns(COLUMNS), shown[start : start + COLUMNS], strict=False):
            column.image(looked.get((i, 0), picture(results.images[i])), width="stretch")
            upright = results.probabilities[i, 0]  # (4,) the untouched image
            spread = " · ".join(
                f"{LABELS[j]} {100 * float(upright[j]):.0f}%"
                for j in upright.argsort(descending=True)[:2].tolist()
            )
            sure = float(top[i])
            column.markdown(
                f"upright copy: {spread}  \nsureness {100 * sure:.0f}% "
                f"· {sure / max(typical, 1e-9):.2f}× typical"
            )
            column.caption(results.paths[i])


def mistakes_caption(wrong: list[TurnedCopy], ambiguity: Ambiguity) -> str:
    """What the mistakes grid shows; the *ambiguous* mark is named only if a shown copy has it."""
    marked = len({c.image for c in wrong} & set(ambiguity.images))
    if not marked:
        return "Most confident mistakes first."
    return (
        f"Most confident mistakes first. {marked:,} of the images behind them are marked "
        "*ambiguous image*: the model has no clear up for them (see below)."
    )


def ambiguous_section(
    results: RotationResults, *, key: str, saliency: LoadedModel | None = None
) -> None:
    """The rotation-ambiguous images, judged by absolute sureness and by sureness relative to
    the model's typical image, with both said."""
    st.subheader("Rotation-ambiguous images")
    below = st.slider(
        "Also ambiguous when an image's sureness is below this share of the model's typical "
        "sureness",
        0.3,
        1.0,
        AMBIGUOUS_BELOW,
        0.05,
        key=f"{key}_below",
        help="Sureness: the model's top probability, averaged over the four turned copies "
        f"(chance 25%). An image below {100 * ABSOLUTE_BELOW:.0f}% is ambiguous whatever the "
        "model's typical sureness.",
    )
    ambiguity = results.ambiguity(below)
    st.caption(ambiguity_caption(ambiguity, below))
    if ambiguity.model_unsure:
        st.warning(
            f"The model is unsure about {ambiguity.absolute:,} of {ambiguity.total:,} held-out "
            f"images (typical sureness {100 * ambiguity.typical:.0f}%, chance 25%): this says more "
            "about the model — not trained enough — or about images with no up (textures, "
            "micrographs) than about any single image.",
            icon=":material/help:",
        )
    if ambiguity.images:
        ambiguous_grid(results, ambiguity.images, key=f"{key}_page", saliency=saliency)


def ambiguity_caption(ambiguity: Ambiguity, below: float) -> str:
    """Both cuts, in numbers."""
    return (
        f"{len(ambiguity.images):,} of {ambiguity.total:,} images: {ambiguity.absolute:,} below "
        f"{100 * ambiguity.absolute_cut:.0f}% sure in absolute terms, {ambiguity.relative:,} below "
        f"{100 * ambiguity.relative_cut:.0f}% ({below:.2f}× the model's typical sureness of "
        f"{100 * ambiguity.typical:.0f}%). The model spreads its probability over several angles "
        "for these (symmetric shapes, textures), so a mistake on one says more about the image "
        "than about the model."
    )


def _looked(
    results: RotationResults, loaded: LoadedModel | None, images: list[int], turns: list[int]
) -> dict[tuple[int, int], Any]:
    """{(image, turn): Grad-CAM picture} of the shown copies, when saliency is on."""
    if loaded is None or not images:
        return {}
    pictures = rotation_pictures(results, loaded, images, turns)
    return dict(zip(zip(images, turns, strict=True), pictures, strict=True))
