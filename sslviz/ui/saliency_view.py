""" "Where the model looked" on the result pages and the live demo: Grad-CAM pictures
(``sslviz.results.saliency``), cached per checkpoint, behind one toggle per page."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image

from sslviz.results.apply import LoadedModel
from sslviz.results.heatmap import overlay
from sslviz.results.jigsaw_answers import JigsawResults
from sslviz.results.rotation_answers import RotationResults, turned
from sslviz.results.saliency import (
    SALIENCY_TASKS,
    jigsaw_board,
    jigsaw_saliency,
    rotation_saliency,
    saliency_panels,
)
from sslviz.ui.colour_scale import colour_bar
from sslviz.ui.results_view import picture

HELP = (
    "Grad-CAM (Selvaraju et al. 2017, via Captum) at the encoder's deepest layer, for the answer "
    "the model gave: bright = the evidence it used. It passes the model-randomisation sanity "
    "check (Adebayo et al. 2018): with the weights re-initialised the map changes."
)


def saliency_toggle(*, key: str, label: str = "Show where the model looked") -> bool:
    """The toggle, and when it is on the colour scale of the maps it turns on."""
    on = st.toggle(label, value=False, key=key, help=HELP)
    if on:
        colour_bar(
            "no evidence",
            "the strongest evidence in that picture",
            note="Each map is scaled to its own maximum: compare where within a picture, not "
            "how much between pictures.",
        )
    return on


@st.cache_data(max_entries=256, show_spinner=False)
def _rotation_pictures(
    _results: RotationResults, _model, key: tuple, images: tuple[int, ...], turns: tuple[int, ...]
) -> list[np.ndarray]:
    rows = torch.tensor(images)
    maps = rotation_saliency(_model, _results.images[rows], torch.tensor(turns))  # (n, S, S)
    out = []
    for i, k, m in zip(images, turns, maps, strict=True):
        shown = torch.from_numpy(picture(turned(_results.images[i : i + 1], k)[0]).copy())
        out.append(overlay(shown.permute(2, 0, 1), m).permute(1, 2, 0).numpy())
    return out


def rotation_pictures(
    results: RotationResults, loaded: LoadedModel, images: list[int], turns: list[int]
) -> list[np.ndarray]:
    """Grad-CAM over each (image, turn) copy, for the angle the model names on it."""
    key = (loaded.run.id, loaded.version)
    return _rotation_pictures(results, loaded.model, key, tuple(images), tuple(turns))


@st.cache_data(max_entries=256, show_spinner=False)
def _jigsaw_picture(
    _results: JigsawResults, _loaded: LoadedModel, key: tuple, i: int
) -> np.ndarray:
    from sslviz.pretext.jigsaw import JigsawLayout

    one = JigsawLayout(
        _results.layout.offsets[i : i + 1],
        _results.layout.labels[i : i + 1],
        _results.layout.grey[i : i + 1],
    )
    image = _results.images[i : i + 1]
    maps = jigsaw_saliency(_loaded.task, _loaded.model, image, one)  # (9, t, t)
    perm = _results.permutations[_results.labels[i]]
    return picture(jigsaw_board(image, one, maps, perm), 180)


def jigsaw_picture(results: JigsawResults, loaded: LoadedModel, i: int) -> np.ndarray:
    """Puzzle ``i``'s shuffled tiles with Grad-CAM for the permutation the model names."""
    return _jigsaw_picture(results, loaded, (loaded.run.id, loaded.version), i)


def demo_saliency(loaded: LoadedModel, image: Image.Image, *, seed: int = 0) -> None:
    """The live demo's "where it looked" row (what ``sslviz apply --saliency`` writes)."""
    if loaded.task.name not in SALIENCY_TASKS:
        return
    if not saliency_toggle(key="demo_saliency"):
        return
    panels = saliency_panels(loaded, image, seed=seed)
    columns = st.columns(len(panels))
    for column, panel in zip(columns, panels, strict=True):
        column.markdown(f"**{panel.title}**")
        column.image(picture(panel.image, 256), width="stretch")
        column.caption(panel.caption)
