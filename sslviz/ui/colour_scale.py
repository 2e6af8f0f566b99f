"""Colour bars that say what a heat map's colours mean: the ramp ``sslviz.results.heatmap``
paints with (activation maps, saliency), and the grey scale of the first-layer filters."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from sslviz.results.heatmap import colour_ramp

BAR_HEIGHT = 14
BAR_WIDTH = 512


def _ramp_picture() -> np.ndarray:
    """uint8 (BAR_HEIGHT, BAR_WIDTH, 3): the heat ramp, 0 on the left, 1 on the right."""
    values = torch.linspace(0, 1, BAR_WIDTH)[None].expand(BAR_HEIGHT, -1)
    return colour_ramp(values).permute(1, 2, 0).numpy()


def _grey_picture() -> np.ndarray:
    """uint8 (BAR_HEIGHT, BAR_WIDTH, 3): black (most negative) -> grey (0) -> white."""
    row = np.linspace(0, 255, BAR_WIDTH).round().astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], BAR_HEIGHT, 0), 3, 2)


def colour_bar(low: str, high: str, *, note: str = "", grey: bool = False) -> None:
    """A labelled colour bar: ``low`` under its left end, ``high`` under its right, ``note``
    (what the scale is relative to) below."""
    with st.container():
        st.image(_grey_picture() if grey else _ramp_picture(), width="stretch")
        left, right = st.columns(2)
        left.caption(low)
        right.html(f"<div style='text-align:right;font-size:0.8rem;opacity:0.7'>{high}</div>")
        if note:
            st.caption(note)
