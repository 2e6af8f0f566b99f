"""Live demo pieces: where the image comes from (upload, camera, a dataset) and the big,
readable-from-the-back-of-the-room display of what ``apply`` computed."""

from __future__ import annotations

import random
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from sslviz.data import image_path
from sslviz.pretext.rotation import ANGLES
from sslviz.results.apply import Applied, LoadedModel, apply_image, read_image
from sslviz.results.colorization import is_classification
from sslviz.store import Run, Store
from sslviz.ui.results_view import picture
from sslviz.ui.saliency_view import demo_saliency
from sslviz.ui.widgets import user_errors

SOURCES = ("Upload", "Camera", "From a dataset")


@st.fragment
def demo_panel(loaded: LoadedModel, run: Run) -> None:
    """The options, the image and the model's answer: a fragment, so an upload (or a new
    temperature, puzzle or dataset image) reruns this part only, with the model kept loaded."""
    from sslviz.ui.resources import get_store

    options: dict[str, Any] = {}
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
    given = image_source(get_store(), run, key="demo")
    if given is None:
        st.info("Give the model an image above.", icon=":material/image:")
        return
    data, name = given
    with user_errors():
        image = read_image(data, name)
        show_applied(apply_image(loaded, image, **options))
        demo_saliency(loaded, image, seed=int(options.get("seed", 0)))


def image_source(store: Store, run: Run, *, key: str) -> tuple[bytes, str] | None:
    """(bytes, name) of the image the user gave, or None while there is none."""
    source = st.segmented_control("Image", SOURCES, default=SOURCES[0], key=f"{key}_source")
    if source == "Camera":
        shot = st.camera_input("Take a picture", key=f"{key}_camera")
        return (shot.getvalue(), "the camera picture") if shot else None
    if source == "From a dataset":
        return _dataset_image(store, run, key=key)
    upload = st.file_uploader(
        "An image file (any size; PNG, JPEG, WebP, GIF, BMP, TIFF)", key=f"{key}_upload"
    )
    return (upload.getvalue(), upload.name) if upload else None


def _dataset_image(store: Store, run: Run, *, key: str) -> tuple[bytes, str] | None:
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
    return image_path(store, image).read_bytes(), image.path


def show_applied(result: Applied) -> None:
    """Headline, the panels side by side with large verdicts, and the task's numbers."""
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
        yaxis_title="turned by",
        yaxis_autorange="reversed",
        xaxis_tickfont={"size": 18},
        yaxis_tickfont={"size": 18},
        height=380,
        font={"size": 16},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure
