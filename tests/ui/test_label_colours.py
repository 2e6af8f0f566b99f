"""One colour per label name: fixed by the order names were added, never by how often they occur."""

from __future__ import annotations

from sslviz.ui.label_colours import MISSING_COLOUR, PALETTE, name_colours
from sslviz.ui.map import categorical_colours


def test_a_name_keeps_its_colour_whatever_the_counts() -> None:
    fixed = name_colours(["astronaut", "cat"])
    given = categorical_colours(
        ["cat", "cat", "cat", "astronaut", ""], title="label", colour_of=fixed
    )
    predicted = categorical_colours(["astronaut"] * 5 + ["cat"], title="p", colour_of=fixed)
    for colouring in (given, predicted):
        by_name = dict(zip(colouring.names, colouring.colours, strict=True))
        assert by_name["astronaut"] == PALETTE[0] and by_name["cat"] == PALETTE[1]
    assert dict(zip(given.names, given.colours, strict=True))["unlabeled"] == MISSING_COLOUR
    # a name the session doesn't know (yet) takes a colour no known name has
    other = categorical_colours(["dog", "cat"], title="label", colour_of=fixed)
    assert dict(zip(other.names, other.colours, strict=True))["dog"] not in fixed.values()
