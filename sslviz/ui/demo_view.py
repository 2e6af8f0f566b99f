"""Live demo pieces: where the image comes from (upload, camera, a dataset) and the big,
readable-from-the-back-of-the-room display of what ``apply`` computed.

Honest by default: an image of unknown orientation is *read* ("the model thinks this was turned
90° counter-clockwise"), graded only when the person says it is upright; a dataset image says
whether the run trained on it or held it out; the run's held-out figures sit beside any answer."""

from __future__ import annotations

import random
from typing import Any, NamedTuple

import plotly.graph_objects as go
import streamlit as st
import torch

from sslviz.data import image_path
from sslviz.pretext.rotation import ANGLES
from sslviz.results.apply import Applied, LoadedModel, apply_image, read_image
from sslviz.results.colorization_answers import is_classification
from sslviz.results.rotation_answers import angle, turned
from sslviz.results.upright import aligned_turns
from sslviz.store import Run, Store
from sslviz.ui.heldout_view import heldout_summary
from sslviz.ui.results_view import evaluation, held_out_images, picture
from sslviz.ui.saliency_view import demo_saliency
from sslviz.ui.widgets import user_errors

SOURCES = ("Upload", "Camera", "From a dataset")


class GivenImage(NamedTuple):
    """The image the person gave: its bytes and name; a dataset image also its dataset and row
    (its place in the dataset's order, the decoded cache's row)."""

    data: bytes
    name: str
    dataset_id: int | None = None
    row: int | None = None


@st.fragment
def demo_panel(loaded: LoadedModel, run: Run) -> None:
    """The options, the image and the model's answer: a fragment, so an upload (or a new
    temperature, puzzle or dataset image) reruns this part only, with the model kept loaded."""
    from sslviz.ui.resources import get_store

    options: dict[str, Any] = {}
    if run.kind == "colorization" and is_classification(loaded.task):
        options["temperature"] = st.slider(
            "Temperature (lower is more vivid)",
            0.05,
            1.0,
            float(loaded.task.options.get("temperature", 0.38)),
            0.01,
            key="demo_temperature",
        )
    if run.kind == "jigsaw":
        options["seed"] = st.number_input("Puzzle number", 0, 10_000, 0, key="demo_seed")
    store = get_store()
    given = image_source(store, run, key="demo")
    if given is None:
        st.info("Give the model an image above.", icon=":material/image:")
        return
    upright = False
    if run.kind == "rotation":
        from_dataset = given.row is not None
        upright = st.checkbox(
            "This image is upright: grade the model's answers",
            value=from_dataset,
            key=f"demo_upright_{'dataset' if from_dataset else 'own'}",
            help="Unticked, the model *reads* the image: which way it thinks it was turned. "
            "Ticked, each of its four turned copies is marked right or wrong, assuming the "
            "image as given is upright.",
        )
    with user_errors():
        if given.row is not None:
            provenance(store, run, given)
        image = read_image(given.data, given.name)
        show_applied(
            apply_image(loaded, image, **options), graded=upright or run.kind != "rotation"
        )
        demo_saliency(loaded, image, seed=int(options.get("seed", 0)))
        with st.container(border=True):
            st.markdown(f"**Run #{run.id} on its held-out images** — the fair measure of the model")
            heldout_summary(evaluation(store, run), step=loaded.step)


def provenance(store: Store, run: Run, given: GivenImage) -> None:
    """Whether the run trained on this dataset image or held it out, with its path: an answer on
    an image the model trained on flatters it."""
    if given.dataset_id != run.dataset_id:
        st.info(
            f"`{given.name}` is from another dataset than run #{run.id}'s: the model never saw it.",
            icon=":material/visibility_off:",
        )
    elif given.row in set(held_out_images(store, run).rows):
        st.success(
            f"**Held out:** `{given.name}` was never trained on — a fair test of the model.",
            icon=":material/verified:",
        )
    else:
        st.warning(
            f"**Trained on:** run #{run.id} learned from `{given.name}`, so its answer here "
            "flatters it; the held-out figures below are the fair measure.",
            icon=":material/school:",
        )


def image_source(store: Store, run: Run, *, key: str) -> GivenImage | None:
    """The image the user gave, or None while there is none."""
    source = st.segmented_control("Image", SOURCES, default=SOURCES[0], key=f"{key}_source")
    if source == "Camera":
        shot = st.camera_input("Take a picture", key=f"{key}_camera")
        return GivenImage(shot.getvalue(), "the camera picture") if shot else None
    if source == "From a dataset":
        return _dataset_image(store, run, key=key)
    upload = st.file_uploader(
        "An image file (any size; PNG, JPEG, WebP, GIF, BMP, TIFF)", key=f"{key}_upload"
    )
    return GivenImage(upload.getvalue(), upload.name) if upload else None


def _dataset_image(store: Store, run: Run, *, key: str) -> GivenImage | None:
    datasets = [d for d in store.datasets.list() if d.status == "ready" and d.n_images]
    if not datasets:
        st.info("No dataset with images yet: add one on the Datasets page.")
        return None
    by_id = {d.id: d for d in datasets}
    ids = list(by_id)
    left, middle, right = st.columns([2, 1, 1], vertical_alignment="bottom")
    chosen = left.selectbox(
        "Dataset",
        ids,
        index=ids.index(run.dataset_id) if run.dataset_id in ids else 0,
        key=f"{key}_dataset",
        format_func=lambda i: f"{by_id[i].name} ({by_id[i].n_images:,} images)",
    )
    n = store.datasets.count_images(chosen)
    index_key = f"{key}_index"
    if right.button("Random image", key=f"{key}_random", icon=":material/casino:"):
        st.session_state[index_key] = random.randint(1, n)
    if st.session_state.get(index_key, 1) > n:
        st.session_state[index_key] = 1
    number = middle.number_input("Image number", 1, n, key=index_key)
    image = store.datasets.images(chosen, offset=int(number) - 1, limit=1)[0]
    return GivenImage(image_path(store, image).read_bytes(), image.path, chosen, int(number) - 1)


def show_applied(result: Applied, *, graded: bool = True) -> None:
    """Headline, the panels side by side with large verdicts, and the task's numbers. A rotation
    answer not ``graded`` is read instead: which turn the model sees in the image as given."""
    if result.task == "rotation" and not graded:
        _show_reading(result)
    else:
        st.markdown(f"## {result.headline}")
        columns = st.columns(len(result.panels))
        for column, panel in zip(columns, result.panels, strict=True):
            column.markdown(f"### {panel.title}")
            column.image(picture(panel.image, 256), width="stretch")
            colour = "gray" if panel.ok is None else ("green" if panel.ok else "red")
            column.markdown(f"### :{colour}[{panel.caption}]")
    if result.task == "rotation":
        st.plotly_chart(
            probabilities_figure(result.values["rotation_probabilities"]), key="demo_probs"
        )
    st.caption(
        f"Run #{result.run}, checkpoint at step {result.step:,}: answered in "
        f"{1000 * result.seconds:.1f} ms on the CPU (model loaded)."
    )


def reading(probabilities: list[list[float]]) -> tuple[int, list[float]]:
    """(the turn class the image as given most likely sits at, q over the 4 turns): the four
    turned copies' answers pooled, as the upright check pools them (``aligned_turns``)."""
    q = aligned_turns(torch.tensor(probabilities)[None])[0]  # (4,)
    return int(q.argmax()), [float(v) for v in q]


def reading_headline(turn: int, sureness: float) -> str:
    """What the model reads in an image of unknown orientation, in words."""
    if turn == 0:
        return f"The model reads this image as upright ({100 * sureness:.0f}%)"
    return (
        f"The model thinks this image was turned {angle(turn)} counter-clockwise "
        f"({100 * sureness:.0f}%)"
    )


def _show_reading(result: Applied) -> None:
    turn, q = reading(result.values["rotation_probabilities"])
    st.markdown(f"## {reading_headline(turn, q[turn])}")
    shown = result.panels[0].image[None]  # (1, 3, H, W): the image as given
    left, right, notes = st.columns([2, 2, 3])
    left.markdown("### as given")
    left.image(picture(shown[0], 256), width="stretch")
    right.markdown("### upright, as the model reads it")
    right.image(picture(turned(shown, (4 - turn) % 4)[0], 256), width="stretch")
    notes.markdown(
        "**How sure, for each way the image could sit**  \n"
        + "  \n".join(f"turned {angle(t)}: {100 * v:.0f}%" for t, v in enumerate(q))
    )
    notes.caption(
        "Pooled over four copies of the image turned by 0°, 90°, 180° and 270° (a copy turned "
        "by a further 90° should be named 90° more). Tick *This image is upright* to grade the "
        "model instead."
    )


def probabilities_figure(probabilities: list[list[float]]) -> go.Figure:
    """4x4 heatmap: for each turned copy (row), the model's probability of each angle."""
    labels = [f"{a}°" for a in ANGLES]
    pct = [[100 * p for p in row] for row in probabilities]
    figure = go.Figure(
        go.Heatmap(
            z=pct,
            x=labels,
            y=labels,
            text=[[f"{p:.0f}%" for p in row] for row in pct],
            texttemplate="%{text}",
            textfont={"size": 20},
            colorscale="Blues",
            zmin=0,
            zmax=100,
            showscale=False,
        )
    )
    figure.update_layout(
        title="Probability of each angle, for each turned copy",
        xaxis_title="model says",
        yaxis_title="copy turned by",
        yaxis_autorange="reversed",
        xaxis_tickfont={"size": 18},
        yaxis_tickfont={"size": 18},
        height=380,
        font={"size": 16},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure
