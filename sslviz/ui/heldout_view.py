"""A run's headline held-out figures as tiles, each with its chance level and 95% interval under
it, and a plain warning when the run learned nothing: one renderer for the result pages and the
Runs page, so both read the same (labels and formats from ``sslviz.training.figures``)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from sslviz.training.chance import verdict
from sslviz.training.figures import Figure, figures


def heldout_summary(
    results: dict[str, Any],
    *,
    step: int | None = None,
    extra: list[Figure] | None = None,
    skip: tuple[str, ...] = (),
) -> None:
    """Tiles of ``sslviz eval`` ``results`` (plus page-specific ``extra`` tiles), and the verdict
    of a run no better than chance. ``skip``: figure keys the page shows elsewhere."""
    said = verdict(results, step)
    if said:
        st.warning(said, icon=":material/trending_flat:")
    shown = [f for f in figures(results) if f.key not in skip] + list(extra or [])
    for column, figure in zip(st.columns(len(shown)), shown, strict=True):
        column.metric(figure.label, figure.value)
        if figure.context:
            column.caption(figure.context)
