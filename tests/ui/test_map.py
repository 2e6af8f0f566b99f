"""The map widget's pure parts: one trace, image ids in customdata, selection -> ids, colours."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import plotly.io as pio

from sslviz.ui.map import (
    HOVER_TEXT_MAX,
    MISSING_COLOUR,
    MapPoints,
    categorical_colours,
    map_figure,
    numeric_colours,
    selected_ids,
    selection_csv,
)


def points(n: int = 50) -> MapPoints:
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(1000, 1000 + n))  # ids unrelated to row positions
    return MapPoints.from_arrays(rng.normal(size=(n, 2)), ids, [f"d{i % 3}/{i}.png" for i in ids])


def test_one_scattergl_trace_with_ids_in_customdata() -> None:
    p = points()
    colour = categorical_colours([path.split("/")[0] for path in p.paths], title="folder")
    figure = map_figure(p, colour=colour)
    assert len(figure.data) == 1 and figure.data[0].type == "scattergl"
    trace = figure.data[0]
    assert isinstance(trace.customdata, np.ndarray)  # numpy arrays, not lists
    assert list(trace.customdata) == list(p.image_ids)
    assert isinstance(trace.marker.color, np.ndarray) and trace.marker.color.dtype == np.uint8
    # Sent to the browser as base64 typed arrays, not JSON lists of numbers.
    spec = json.loads(pio.to_json(figure, validate=False))
    assert "bdata" in spec["data"][0]["customdata"]


def test_a_small_map_can_be_svg_with_the_same_ids_and_colours() -> None:
    """``svg_max``: up to that many points the one trace is SVG ``scatter`` (cheaper to draw from
    scratch than WebGL: the labeling page's map is redrawn after every label), with the same
    ids, colour codes and arrays; above it, WebGL."""
    p = points()
    colour = categorical_colours([path.split("/")[0] for path in p.paths], title="folder")
    webgl, svg = map_figure(p, colour=colour), map_figure(p, colour=colour, svg_max=len(p))
    assert len(svg.data) == 1 and svg.data[0].type == "scatter"
    assert map_figure(p, colour=colour, svg_max=len(p) - 1).data[0].type == "scattergl"
    for name in ("x", "y", "customdata", "hovertext"):
        assert list(svg.data[0][name]) == list(webgl.data[0][name])
    assert list(svg.data[0].marker.color) == list(webgl.data[0].marker.color)
    assert "bdata" in json.loads(pio.to_json(svg, validate=False))["data"][0]["customdata"]


def test_highlight_draws_hits_on_top_and_keeps_ids_with_their_points() -> None:
    p = points()
    hits = p.image_ids[[3, 10]]
    trace = map_figure(p, highlight=hits).data[0]
    assert set(trace.customdata[-2:]) == set(hits)  # drawn last
    row = {int(i): k for k, i in enumerate(p.image_ids)}
    for k, image_id in enumerate(trace.customdata):  # every coordinate still with its own id
        assert (
            trace.x[k] == p.x[row[int(image_id)]]
            and trace.hovertext[k] == p.paths[row[int(image_id)]]
        )
    assert trace.marker.size[-1] > trace.marker.size[0]


def test_selected_ids_become_selectedpoints_of_a_new_figure() -> None:
    p = points()
    chosen = p.image_ids[[1, 4, 9]]
    figure = map_figure(p, selected=chosen, highlight=p.image_ids[[4]])
    trace = figure.data[0]
    assert sorted(trace.customdata[list(trace.selectedpoints)]) == sorted(chosen)
    # A JSON list: plotly.js does not decode base64 arrays in selectedpoints.
    spec = json.loads(pio.to_json(figure, validate=False))
    assert isinstance(spec["data"][0]["selectedpoints"], list)


def test_selection_event_maps_to_ids_through_customdata_only() -> None:
    event = {
        "selection": {
            # point_index values are deliberately wrong: only customdata counts
            "points": [
                {"point_index": 0, "customdata": 1042, "curve_number": 0},
                {"point_index": 0, "customdata": [1007], "curve_number": 0},
                {"point_index": 5, "customdata": 1042},
                {"point_index": 6},
            ],
            "point_indices": [0, 0, 5, 6],
        }
    }
    ids = selected_ids(event)
    assert ids.dtype == np.int64 and list(ids) == [1007, 1042]
    assert len(selected_ids(None)) == 0
    assert len(selected_ids({"selection": {"points": []}})) == 0


def test_categorical_colours_most_frequent_first_missing_grey() -> None:
    colour = categorical_colours(["b", "a", "b", None, "", "c", "b"], title="label")
    assert colour.names == ("b", "a", "c", "unlabeled")
    assert colour.counts == (3, 1, 1, 2)
    assert colour.colours[-1] == MISSING_COLOUR
    assert list(colour.values) == [0, 1, 0, 3, 3, 2, 0]


def test_numeric_colours_have_a_colour_bar_and_no_nan() -> None:
    colour = numeric_colours([0.2, np.nan, 0.9], title="confidence")
    assert np.isfinite(colour.values).all()
    marker = map_figure(points(3), colour=colour).data[0].marker
    assert marker.showscale and marker.colorbar.title.text == "confidence"


def test_selection_csv_has_a_path_column() -> None:
    rows = list(csv.DictReader(io.StringIO(selection_csv(["a/1.png", "b,2.png"]))))
    assert [r["path"] for r in rows] == ["a/1.png", "b,2.png"]


def test_a_large_map_carries_no_paths_and_keeps_its_ids() -> None:
    small, large = points(HOVER_TEXT_MAX), points(HOVER_TEXT_MAX + 1)
    assert list(map_figure(small).data[0].hovertext) == list(small.paths)
    trace = map_figure(large).data[0]
    assert trace.hovertext is None and trace.hoverinfo == "skip"
    assert list(trace.customdata) == list(large.image_ids)  # int32 on the wire, same ids
    event = {"selection": {"points": [{"customdata": int(trace.customdata[7])}]}}
    assert selected_ids(event).tolist() == [int(large.image_ids[7])]
