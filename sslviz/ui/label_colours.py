"""One colour per label name, the same on every map of a labeling session.

Colouring by frequency rank (the most common category first) gives a label a different colour on
the Label tab (counted over given labels) than on the Predictions tab (counted over predictions).
Here a session's label names get palette colours in the order they were added, so "astronaut"
keeps its colour on every map, through renames too (a rename keeps the name's place).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sslviz.store import Store

PALETTE = (  # Tableau 10, then 10 lighter companions: distinguishable on white
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1f77b4",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#aec7e8",
    "#ffbb78",
)
MISSING_COLOUR = "#d0d0d0"  # unlabeled / no value: light grey, behind the colours


def name_colours(names: Sequence[str]) -> dict[str, str]:
    """``{name: colour}``: the k-th name gets the k-th palette colour (cycling past 20)."""
    return {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(dict.fromkeys(names))}


def session_colours(store: Store, session_id: int) -> dict[str, str]:
    """The colour of every label name of a labeling session (names in the order added)."""
    return name_colours([label.name for label in store.sessions.label_names(session_id)])
