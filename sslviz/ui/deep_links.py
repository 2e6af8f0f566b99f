"""A link (``?run=``, ``?session=``, ``?dataset=``, ``?source=``) to something that doesn't exist
says so, once, instead of silently opening something else: a researcher following an old link
must know the page shows another run, session or dataset than the one they asked for."""

from __future__ import annotations

import streamlit as st


def say_missing(thing: str, *, instead: str | None = None) -> None:
    """Warn that the linked ``thing`` (e.g. "run #99") doesn't exist, and what is shown."""
    shown = f": showing {instead} instead" if instead else ""
    st.warning(
        f"The link asks for {thing}, which doesn't exist (deleted, or never created){shown}. "
        "Pick another below.",
        icon=":material/link_off:",
    )
