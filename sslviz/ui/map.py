"""The shared map widget: one WebGL scatter of a dataset's images, selections kept by image id,
and a paged thumbnail grid. Used by the Explorer page and the labeling page.

    points = MapPoints.from_projection(projection)        # or MapPoints(x, y, image_ids, paths)
    colour = categorical_colours(folders, title="folder")  # or numeric_colours(conf, title=...)
    ids = render_map(points, key="ex_map", selection_key="ex_sel", colour=colour,
                     highlight=search_hits)                 # draws map + legend, returns selection
    changed = sync_selection("ex_map", "ex_sel")            # before drawing: did it just change?
    clear_selection_button("ex_sel", key="ex_clear")
    thumbnail_grid(store, dataset_id, ids, key="ex_grid")   # paged thumbnails with paths
    export_selection_button(paths_of(store, dataset_id, ids), key="ex_export")

Pure helpers (no streamlit, unit-tested): ``map_figure`` (the plotly figure), ``selected_ids``
(a plotly selection event -> image ids, through ``customdata`` only), ``categorical_colours``,
``numeric_colours``, ``selection_csv``. State helpers: ``get_selection``, ``set_selection``,
``sync_selection``. The thumbnail grid and export live in :mod:`sslviz.ui.thumbnails` and are
re-exported here.

Why it is built this way (DESIGN 3.7):
- ONE trace with colours, sizes and opacities as numpy arrays: ``Scattergl`` (WebGL), or SVG
  ``Scatter`` for a small map whose colours change often (``svg_max``: the labeling page's, which
  every label recolours). A recoloured figure is a new widget the browser draws from scratch: a new
  WebGL context with its shaders costs ~0.5 s of the browser's time where it renders in software,
  a few hundred SVG points a fifth of that. With one trace per colour, plotly's point indices count within
  each trace and a selection maps to the wrong rows; here every selection is read back through
  ``customdata`` (the store's image ids), so the trace may even be reordered (highlighted points
  are drawn last, on top).
- Categories are integer codes on a stepped colour scale, not colour strings: plotly validates a
  string colour per point (~2 s for 100k points) while a numeric array is encoded as base64 at once.
  A single trace has no per-category legend, so ``colour_legend`` draws chips under the map.
- A new figure (recolour, new highlight) is a new widget to Streamlit and drops plotly's own
  selection; the selected ids live in ``st.session_state[selection_key]`` and the rebuilt figure
  shows them again through ``selectedpoints``. While only the selection changes the figure is
  reused unchanged, so Streamlit re-sends just a reference to it, not the megabytes of points.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from sslviz.ui.label_colours import MISSING_COLOUR, PALETTE
from sslviz.ui.thumbnails import (  # noqa: F401  (part of the widget's interface)
    EMPTY,
    ImageLookup,
    export_selection_button,
    image_lookup,
    paths_of,
    selection_csv,
    thumbnail_grid,
)

PLAIN_COLOUR = "#4e79a7"
LEGEND_MAX = 24  # categories named in the legend; the rest are summed up
SELECTION_MODES = ("points", "box", "lasso")
# Above this many points the map carries no paths for hover: at 100k they were ~2.3 of the
# figure's 4.6 MB, re-sent and parsed on every new figure.
HOVER_TEXT_MAX = 20_000
# A map recoloured often is SVG up to this many points: drawn from scratch faster than WebGL's
# setup (in Chromium's software rendering: ~0.1 s against ~0.5 s of the browser's time at 306).
SVG_MAX = 1_000


# --- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MapPoints:
    """What a map draws: N points with their image ids and paths (rows in the same order)."""

    x: np.ndarray  # (N,) float32
    y: np.ndarray  # (N,) float32
    image_ids: np.ndarray  # (N,) int64, store image ids
    paths: np.ndarray  # (N,) object (str), shown on hover

    @classmethod
    def from_arrays(cls, coords: np.ndarray, image_ids: Any, paths: Sequence[str]) -> MapPoints:
        """From (N, >=2) coordinates (the first two columns are drawn)."""
        coords = np.asarray(coords)
        return cls(
            x=np.ascontiguousarray(coords[:, 0], dtype=np.float32),
            y=np.ascontiguousarray(coords[:, 1], dtype=np.float32),
            image_ids=np.asarray(image_ids, dtype=np.int64),
            paths=np.asarray(paths, dtype=object),
        )

    @classmethod
    def from_projection(cls, projection: Any) -> MapPoints:
        """From a ``sslviz.maps.project.Projection`` (coords (N, dims), image_ids (N,), paths)."""
        return cls.from_arrays(projection.coords, projection.image_ids, projection.paths)

    def __len__(self) -> int:
        return len(self.image_ids)

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=12)
        for array in (self.x, self.y, self.image_ids):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Colouring:
    """Per-point colours: ``kind`` "category" (``values`` are codes into ``names``) or "number"."""

    kind: str
    values: np.ndarray  # (N,) int32 codes, or float32 numbers
    title: str
    names: tuple[str, ...] = ()  # category names, by code
    colours: tuple[str, ...] = ()  # category colours, by code
    counts: tuple[int, ...] = ()  # points per category, by code
    colorscale: str = "Viridis"

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(digest_size=12)
        digest.update(repr((self.kind, self.title, self.names, self.colours)).encode())
        digest.update(np.ascontiguousarray(self.values).tobytes())
        return digest.hexdigest()


def categorical_colours(
    labels: Sequence[Any] | np.ndarray,
    *,
    title: str,
    missing: str = "unlabeled",
    colour_of: Mapping[str, str] | None = None,
) -> Colouring:
    """Colour by category: the most frequent category gets the first palette colour, unless
    ``colour_of`` fixes a name's colour (``label_colours.session_colours``: the same label the
    same colour on every map). ``None`` or ``""`` labels become the ``missing`` category, drawn
    light grey (e.g. unlabeled images)."""
    raw = np.asarray(labels, dtype=object)
    absent = np.array([v is None or v == "" for v in raw], dtype=bool) if raw.size else raw
    text = np.where(absent, "", raw).astype(str)
    names, codes = np.unique(text, return_inverse=True)
    counts = np.bincount(codes, minlength=len(names))
    # Most frequent first, the missing category last.
    rank = sorted(range(len(names)), key=lambda i: (names[i] == "", -counts[i], names[i]))
    remap = np.empty(len(names), dtype=np.int32)
    remap[rank] = np.arange(len(names), dtype=np.int32)
    ordered = [str(names[i]) or missing for i in rank]
    colours = [
        MISSING_COLOUR if names[i] == "" else PALETTE[k % len(PALETTE)] for k, i in enumerate(rank)
    ]
    if colour_of is not None:  # fixed names keep theirs; others follow the fixed ones
        spare = iter(PALETTE[(len(colour_of) + j) % len(PALETTE)] for j in range(len(names)))
        colours = [
            MISSING_COLOUR if names[i] == "" else colour_of.get(str(names[i])) or next(spare)
            for i in rank
        ]
    return Colouring(
        kind="category",
        values=remap[codes].astype(np.int32),
        title=title,
        names=tuple(ordered),
        colours=tuple(colours),
        counts=tuple(int(counts[i]) for i in rank),
    )


def numeric_colours(values: Any, *, title: str, colorscale: str = "Viridis") -> Colouring:
    """Colour by a number per point (e.g. confidence), with a colour bar. NaN is drawn at the
    scale's low end."""
    numbers = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(numbers)
    low = float(numbers[finite].min()) if finite.any() else 0.0
    return Colouring(
        kind="number",
        values=np.where(finite, numbers, low).astype(np.float32),
        title=title,
        colorscale=colorscale,
    )


# --- the figure (pure) -----------------------------------------------------------------------------
def base_marker_size(n: int) -> float:
    """Smaller dots for bigger maps, so dense regions stay readable."""
    return 3.0 if n > 20_000 else 5.0 if n > 2_000 else 7.0


def _stepped_scale(colours: Sequence[str]) -> list[list[Any]]:
    """A colour scale with one flat band per category: code k (cmin -0.5, cmax K - 0.5) ->
    colours[k]."""
    k = max(1, len(colours))
    scale: list[list[Any]] = []
    for i, colour in enumerate(colours or (PLAIN_COLOUR,)):
        scale += [[i / k, colour], [(i + 1) / k, colour]]
    return scale


def map_figure(
    points: MapPoints,
    *,
    colour: Colouring | None = None,
    highlight: np.ndarray | None = None,
    selected: np.ndarray | None = None,
    height: int = 560,
    svg_max: int = 0,
) -> go.Figure:
    """The map: one ``Scattergl`` trace (SVG ``Scatter`` up to ``svg_max`` points), image ids in
    ``customdata``, paths on hover (up to ``HOVER_TEXT_MAX`` points).

    highlight: image ids drawn bigger, outlined and on top (others faded), e.g. search hits.
    selected: image ids shown as plotly's selection (others dimmed) in a freshly built figure.
    """
    n = len(points)
    hl = np.isin(points.image_ids, highlight) if highlight is not None and len(highlight) else None
    # Highlighted points last, so they are drawn on top; customdata keeps the ids right.
    order = (
        np.concatenate([np.flatnonzero(~hl), np.flatnonzero(hl)]) if hl is not None else slice(None)
    )
    base = base_marker_size(n)
    marker: dict[str, Any] = {"size": base, "opacity": 0.8}  # uniform: scalars, not N numbers
    if hl is not None:
        size = np.where(hl, base * 2 + 4, base).astype(np.float32)
        opacity = np.where(hl, 1.0, 0.3).astype(np.float32)
        marker.update(
            size=size[order],
            opacity=opacity[order],
            line={"width": np.where(hl, 1.5, 0.0).astype(np.float32)[order], "color": "#111"},
        )
    if colour is None:
        marker["color"] = PLAIN_COLOUR
    elif colour.kind == "category":
        k = max(1, len(colour.colours))
        codes = colour.values.astype(np.uint8 if k <= 256 else np.int32)  # 1 byte a point
        marker.update(
            color=codes[order],
            colorscale=_stepped_scale(colour.colours),
            cmin=-0.5,  # code c sits in the middle of its band
            cmax=k - 0.5,
            showscale=False,
        )
    else:
        marker.update(
            color=colour.values[order],
            colorscale=colour.colorscale,
            showscale=True,
            colorbar={"title": {"text": colour.title}, "thickness": 12},
        )
    ids = points.image_ids[order]
    if not len(ids) or int(ids.max()) < 2**31:
        ids = ids.astype(np.int32)  # half the bytes of int64 on every map sent
    kind = go.Scatter if n <= svg_max else go.Scattergl
    trace = kind(
        x=points.x[order], y=points.y[order], mode="markers", customdata=ids, marker=marker
    )
    if n <= HOVER_TEXT_MAX:
        trace.update(hovertext=points.paths[order], hovertemplate="%{hovertext}<extra></extra>")
    else:  # the paths would be most of the figure's megabytes: a selection shows them instead
        trace.update(hoverinfo="skip")
    if selected is not None and len(selected):
        # A plain list: plotly.js decodes base64 arrays only for data attributes, and
        # ``selectedpoints`` (valType "any") would arrive as an undecoded {dtype, bdata} object.
        rows = np.flatnonzero(np.isin(points.image_ids[order], selected))
        trace.selectedpoints = rows.tolist()
        if hl is not None:
            # Plotly would dim the unselected to 0.2x their opacity, highlights too: keep those
            # readable (they are bigger and outlined) and show the selection at full opacity.
            trace.selected = {"marker": {"opacity": 1.0}}
            trace.unselected = {"marker": {"opacity": 0.35}}
    figure = go.Figure(trace)
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": None}
    figure.update_layout(
        height=height,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        xaxis=axis,
        yaxis=axis,
        dragmode="zoom",  # drag zooms, a click selects a point; box/lasso from the toolbar
        hovermode="closest",
        plot_bgcolor="white",
        showlegend=False,
    )
    return figure


def selected_ids(event: Any) -> np.ndarray:
    """The image ids of a plotly selection event (``st.plotly_chart(on_select=...)``'s value),
    read through each point's ``customdata`` — never its point index. Sorted, unique, int64."""
    if not event:
        return EMPTY
    selection = event.get("selection") or {}
    ids = []
    for point in selection.get("points") or ():
        data = point.get("customdata")
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is not None:
            ids.append(int(data))
    return np.unique(np.asarray(ids, dtype=np.int64)) if ids else EMPTY


# --- selection state -------------------------------------------------------------------------------
def get_selection(selection_key: str) -> np.ndarray:
    """The image ids selected on the map that stores its selection under ``selection_key``."""
    return st.session_state.get(selection_key, EMPTY)


def set_selection(selection_key: str, ids: Any) -> None:
    """Replace a map's selection (e.g. clear it); the map redraws to show it on its next run."""
    st.session_state[selection_key] = np.unique(np.asarray(ids, dtype=np.int64))
    # A new generation makes the chart a new widget, so plotly's own (now stale) selection goes.
    generation = f"{selection_key}__gen"
    st.session_state[generation] = st.session_state.get(generation, 0) + 1


def clear_selection_button(selection_key: str, *, key: str, label: str = "Clear selection") -> None:
    st.button(
        label,
        key=key,
        icon=":material/deselect:",
        disabled=not len(get_selection(selection_key)),
        on_click=set_selection,  # a callback: the map below/above already sees the empty selection
        args=(selection_key, EMPTY),
    )


# --- the widget ------------------------------------------------------------------------------------
def _widget_key(key: str, selection_key: str) -> str:
    return f"{key}_{st.session_state.get(f'{selection_key}__gen', 0)}"


def _apply_event(meta: dict[str, Any], selection_key: str, event: Any) -> bool:
    """Take a chart's selection event into the stored selection; True if that changed it."""
    ids = selected_ids(event)
    last = meta.get("last_event")
    meta["last_event"] = ids
    if len(ids) and (last is None or not np.array_equal(ids, last)):
        st.session_state[selection_key] = ids  # a new box, lasso or click
        return True
    if not len(ids) and last is not None and len(last):
        st.session_state[selection_key] = EMPTY  # emptied in the chart (double-click)
        return True
    return False


def sync_selection(key: str, selection_key: str) -> bool:
    """Read the map's latest selection from the browser before anything is drawn; True if it
    changed. Call it for every map first when one map's selection highlights points in another,
    so both see this run's selections (``render_map`` calls it too; twice is harmless)."""
    meta = st.session_state.setdefault(f"_map_{key}", {})
    event = st.session_state.get(_widget_key(key, selection_key))
    return _apply_event(meta, selection_key, event) if event is not None else False


def render_map(
    points: MapPoints,
    *,
    key: str,
    selection_key: str,
    colour: Colouring | None = None,
    highlight: np.ndarray | None = None,
    height: int = 560,
    svg_max: int = 0,
) -> np.ndarray:
    """Draw the map (and the colour legend under it); returns the selected image ids (int64).

    The selection is kept in ``st.session_state[selection_key]``: it survives recolouring and
    new highlights (each a new figure), and is replaced by the next box, lasso or click. Plotly's
    double-click (which empties its selection) clears it too.
    """
    sync_selection(key, selection_key)
    state = st.session_state
    signature = "/".join(
        (
            points.fingerprint(),
            colour.fingerprint() if colour is not None else "-",
            hashlib.blake2b(np.asarray(highlight, np.int64).tobytes(), digest_size=8).hexdigest()
            if highlight is not None
            else "-",
            str(height),
            str(svg_max),
            _widget_key(key, selection_key),
        )
    )
    meta = state.setdefault(f"_map_{key}", {})
    if meta.get("signature") != signature:
        # A new figure is a new widget (it starts with no selection): it shows the stored
        # selection itself, through ``selectedpoints``.
        meta.update(
            signature=signature,
            figure=map_figure(
                points,
                colour=colour,
                highlight=highlight,
                selected=get_selection(selection_key),
                height=height,
                svg_max=svg_max,
            ),
            last_event=None,
        )
    event = st.plotly_chart(
        meta["figure"],
        key=_widget_key(key, selection_key),
        on_select="rerun",
        selection_mode=SELECTION_MODES,
        config={"displaylogo": False, "scrollZoom": False},
    )
    _apply_event(meta, selection_key, event)
    if colour is not None and colour.kind == "category":
        colour_legend(colour)
    return get_selection(selection_key)


def colour_legend(colour: Colouring) -> None:
    """Chips naming each category's colour (one trace has no per-category legend)."""
    chips = []
    for name, col, count in list(zip(colour.names, colour.colours, colour.counts, strict=False))[
        :LEGEND_MAX
    ]:
        chips.append(
            f'<span style="white-space:nowrap;margin-right:14px">'
            f'<span style="display:inline-block;width:11px;height:11px;border-radius:50%;'
            f'background:{col};margin-right:5px;vertical-align:-1px"></span>'
            f"{html.escape(name)} <span style='color:#888'>({count:,})</span></span>"
        )
    rest = len(colour.names) - LEGEND_MAX
    if rest > 0:
        chips.append(f"<span style='color:#888'>… and {rest:,} more (colours repeat)</span>")
    st.markdown(
        f"<div style='font-size:0.85rem;line-height:1.8'><b>{html.escape(colour.title)}:</b> "
        + " ".join(chips)
        + "</div>",
        unsafe_allow_html=True,
    )
