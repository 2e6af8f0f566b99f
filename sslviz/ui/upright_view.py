"""The "Stored the wrong way up" section of the rotation page: images the run's rotation model is
sure are stored turned, the stored one beside the fixed one, and the list as a CSV (what
``sslviz upright --out`` writes)."""

from __future__ import annotations

import dataclasses

import streamlit as st
from PIL import Image

from sslviz.data import image_path, load_rgb
from sslviz.results import upright
from sslviz.results.apply import checkpoint_version
from sslviz.results.upright import DEFAULT_MIN_CONFIDENCE, UprightCheck, upright_check
from sslviz.store import Dataset, Run, Store
from sslviz.ui.results_view import pager
from sslviz.ui.widgets import dataset_picker

PER_PAGE = 6
SIDE = 160


@st.cache_resource(show_spinner="Looking at every image of the dataset four ways…", max_entries=8)
def _check(home: str, run_id: int, version: int, dataset_id: int, n_images: int) -> UprightCheck:
    from sslviz.ui.resources import get_store

    store = get_store()
    # every image the model thinks is turned at all; the page's threshold filters (as the CLI's)
    return upright_check(store, run_id, store.datasets.get(dataset_id), min_confidence=1e-9)


def check_of(store: Store, run: Run, dataset: Dataset, min_confidence: float) -> UprightCheck:
    """``sslviz upright RUN --dataset NAME --min-confidence P`` for the page, cached per
    checkpoint and dataset (the threshold only filters)."""
    every = _check(
        str(store.workspace.root),
        run.id,
        checkpoint_version(store, run.id),
        dataset.id,
        dataset.n_images,
    )
    kept = [t for t in every.turned if t.confidence >= min_confidence]
    return dataclasses.replace(every, min_confidence=min_confidence, turned=kept)


def _thumb(image: Image.Image) -> Image.Image:
    image = image.copy()
    image.thumbnail((SIDE, SIDE))
    return image


def upright_section(store: Store, run: Run) -> None:
    """Pick a dataset and a threshold; list the images stored turned, fixed beside stored."""
    st.subheader("Stored the wrong way up")
    st.caption(
        "The rotation model looks at every image of a dataset as stored (in its four turns) and "
        "lists the ones it is sure sit turned: a sideways scan, a phone photo that lost its "
        "orientation. Symmetric shapes have no up and stay below the threshold."
    )
    names = {d.id: d.name for d in store.datasets.list()}
    left, right = st.columns([2, 2], vertical_alignment="bottom")
    with left:
        dataset = dataset_picker(store, key="up_dataset", preferred=names.get(run.dataset_id))
    threshold = right.slider(
        "List an image when the model is at least this sure it is turned",
        0.5,
        1.0,
        DEFAULT_MIN_CONFIDENCE,
        0.01,
        key="up_threshold",
    )
    if dataset is None:
        return
    if not upright.is_stored(store, run.id, dataset) and not st.button(
        f"Look at all {dataset.n_images:,} images of {dataset.name}",
        key=f"up_start_{run.id}_{dataset.id}",
        help="A pass over the whole dataset, once per checkpoint (the run's own dataset was "
        "looked at when the run ended).",
    ):
        return
    check = check_of(store, run, dataset, threshold)
    st.markdown(
        f"**{len(check.turned):,}** of {check.checked:,} images look stored turned "
        f"(`sslviz upright {run.id} --dataset {dataset.name} --min-confidence {threshold:g}`)."
    )
    if not check.turned:
        return
    st.download_button(
        "Download the list (CSV)",
        check.to_csv(),
        file_name=f"upright-{dataset.name}-run{run.id}.csv",
        mime="text/csv",
        key="up_csv",
        icon=":material/download:",
    )
    images = store.datasets.images(dataset.id)
    for i in pager(len(check.turned), PER_PAGE, key="up_page", label="images"):
        found = check.turned[i]
        stored = load_rgb(image_path(store, images[found.row]))
        row = st.columns([1, 1, 2], vertical_alignment="center")
        row[0].image(_thumb(stored), caption="as stored")
        row[1].image(_thumb(stored.rotate(found.rotate_by, expand=True)), caption="fixed")
        row[2].markdown(
            f"turn **{found.rotate_by}°** counter-clockwise · model {100 * found.confidence:.0f}% "
            f"sure  \n`{found.path}`"
        )
