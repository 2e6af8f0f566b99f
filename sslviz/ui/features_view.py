"""Features page pieces: a run's (or the untrained network's) channels with their dataset
examples, one channel's top 50 with its activation maps, the first-layer filters, and one image's
activation maps at a layer. The work is ``sslviz.results.features``; this file caches it per
checkpoint and draws it as few, large pictures (one ``st.image`` per channel row: the page stays
fast with dozens of channels)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import streamlit as st
import torch
from PIL import Image as PILImage

from sslviz.data import image_path, load_rgb
from sslviz.maps.embed import source_version
from sslviz.results.apply import square
from sslviz.results.features import (
    ChannelIndex,
    FeatureSource,
    activation_maps,
    channel_index,
    feature_source,
    first_layer_filters,
)
from sslviz.results.heatmap import outline, overlay
from sslviz.store import Dataset, Store
from sslviz.ui.colour_scale import colour_bar
from sslviz.ui.results_view import pager, picture

CROP_SIDE = 72  # px of a dataset example in the channel grid
DETAIL_SIDE = 112  # px of an image in a channel's top 50
DETAIL_COUNT = 50
DETAIL_COLUMNS = 5  # images a row in the top 50: large enough to see the map
FILTER_SIDE = 64  # px of a first-layer filter
FILTER_COLUMNS = 12
IMAGE_MAP_SIDE = 144  # px of one channel's map over the given image
IMAGE_MAPS = 24  # channels shown for one image (the ones it excites most, relative to their max)
SELECTIVITY_HELP = (
    "Selectivity: how far a channel's top 1% of images stand above its typical (median) image, in "
    "standard deviations of its peaks — 0 fires alike on everything, higher is pickier. It says "
    "how picky a channel is, not how useful: an untrained network's channels can be picky about "
    "plain colour."
)
SCALE_NOTE = (
    "Each channel on its own scale: 1 = its highest activation on any image of the dataset, so "
    "the run and the untrained network read alike though their raw activations differ by orders "
    "of magnitude."
)
STRIP_COUNT = 8  # examples per channel in the grid
CHANNELS_PER_PAGE = 8
GAP = 4


# --- cached work -------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the network…", max_entries=8)
def _source(home: str, source: str, version: str) -> FeatureSource:
    from sslviz.ui.resources import get_store

    return feature_source(get_store(), source)


def source_of(store: Store, source: str) -> FeatureSource:
    """The encoder of ``source`` (a run id or "random"), loaded once per checkpoint."""
    return _source(str(store.workspace.root), source, source_version(store, source))


@st.cache_resource(show_spinner="One pass over the dataset (once per checkpoint)…", max_entries=16)
def _index(
    home: str, dataset_id: int, n_images: int, source: str, version: str, layer: str
) -> ChannelIndex:
    from sslviz.ui.resources import get_store

    store = get_store()
    return channel_index(
        store, store.datasets.get(dataset_id), _source(home, source, version), layer
    )


def index_of(store: Store, dataset: Dataset, source: str, layer: str) -> ChannelIndex:
    """Every channel's peaks over ``dataset`` at ``layer`` (what ``sslviz features`` reads)."""
    version = source_version(store, source)
    return _index(str(store.workspace.root), dataset.id, dataset.n_images, source, version, layer)


def _version_key(store: Store, index: ChannelIndex) -> tuple[str, str, str, str]:
    return (
        str(store.workspace.root),
        index.source,
        source_version(store, index.source),
        index.layer,
    )


# --- pictures ------------------------------------------------------------------------------------
def sheet(pictures: Sequence[np.ndarray], columns: int, gap: int = GAP) -> np.ndarray:
    """Equal-sized (h, w, 3) uint8 pictures in rows of ``columns`` on white: one picture."""
    h, w = pictures[0].shape[:2]
    rows = -(-len(pictures) // columns)
    columns = min(columns, len(pictures))
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, p in enumerate(pictures):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = p
    return out


def _stored(store: Store, index: ChannelIndex, row: int) -> PILImage.Image:
    return load_rgb(image_path(store, index.images[row]))


def _crop(image: PILImage.Image, box: list[int], side: int) -> np.ndarray:
    """The box of the stored image, squared up and resized to ``side`` (nearest when enlarging:
    pixels stay visible)."""
    x0, y0, x1, y1 = box
    crop = image.crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    method = PILImage.Resampling.NEAREST if max(crop.size) < side else PILImage.Resampling.BOX
    return np.asarray(crop.resize((side, side), method))


def png(picture: np.ndarray) -> bytes:
    """A picture as PNG bytes: cached once, so a rerun sends it without encoding it again."""
    out = io.BytesIO()
    PILImage.fromarray(picture).save(out, format="PNG")
    return out.getvalue()


@st.cache_data(max_entries=512, show_spinner=False)
def _strip(_store: Store, _index: ChannelIndex, key: tuple, channel: int, n: int) -> bytes:
    rows = _index.top_images(channel, n)
    crops = [_crop(_stored(_store, _index, r), _index.box(r, channel), CROP_SIDE) for r in rows]
    return png(sheet(crops, len(crops)))


def channel_strip(
    store: Store, index: ChannelIndex, channel: int, n: int = STRIP_COUNT
) -> np.ndarray:
    """The channel's ``n`` strongest images, each cropped to the receptive field of its spot."""
    return _strip(store, index, _version_key(store, index), channel, n)


@st.cache_data(max_entries=64, show_spinner="Activation maps of the top images…")
def _detail(
    _store: Store, _index: ChannelIndex, _source: FeatureSource, key: tuple, channel: int, n: int
) -> bytes:
    from sslviz.data.cache import open_cache

    rows = _index.top_images(channel, n)
    cache = open_cache(_store, _index.images[0].dataset_id, _source.image_size)
    images = torch.from_numpy(np.array(cache[sorted(rows)]))  # uint8 (n, 3, S, S)
    order = {r: i for i, r in enumerate(sorted(rows))}
    maps = activation_maps(_source, images, _index.layer)[:, channel]  # (n, h, w)
    vmax = _index.channel_max()[channel]  # the channel's own dataset maximum is 1
    pictures = []
    for r in rows:
        big = _enlarged(images[order[r]], DETAIL_SIDE)  # (3, kS, kS), whole-pixel scale k
        heat = PILImage.fromarray(overlay(big, maps[order[r]], vmax=vmax).permute(1, 2, 0).numpy())
        k = big.shape[-1] / _source.image_size
        shown = outline(heat, [round(v * k) for v in _index.input_box(r, channel)])
        pictures.append(np.asarray(shown.resize((DETAIL_SIDE, DETAIL_SIDE))))
    return png(sheet(pictures, DETAIL_COLUMNS))


def _enlarged(image: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 (3, S, S) -> uint8 (3, kS, kS) enlarged by whole pixels to about ``side``."""
    return torch.from_numpy(picture(image, side).copy()).permute(2, 0, 1)


def channel_detail(store: Store, index: ChannelIndex, source: FeatureSource, channel: int) -> bytes:
    """The channel's top 50 (at the size the network saw them), each with the channel's map over
    it (on the channel's own scale: 1 = its dataset maximum) and its strongest spot's receptive
    field outlined."""
    return _detail(store, index, source, _version_key(store, index), channel, DETAIL_COUNT)


def filters_picture(source: FeatureSource, side: int = FILTER_SIDE) -> np.ndarray:
    """The first conv layer's filters, each scaled on its own (grey = 0 weight), 12 a row."""
    filters = first_layer_filters(source.encoder)  # uint8 (C, 3, k, k)
    return sheet([picture(f, side) for f in filters], FILTER_COLUMNS)


def image_maps(
    source: FeatureSource,
    image: PILImage.Image,
    layer: str,
    channel_max: np.ndarray,
    *,
    count: int = IMAGE_MAPS,
    side: int = IMAGE_MAP_SIDE,
) -> tuple[list[np.ndarray], list[str]]:
    """The ``count`` channels this image excites most, relative to each channel's own dataset
    maximum ``channel_max`` (C,): their maps over the image on that scale, and a caption each
    (``"ch 12 · 0.87"``: the map's peak, 1 = the channel's dataset maximum)."""
    x = square(image, source.image_size)  # (1, 3, S, S)
    maps = activation_maps(source, x, layer)[0]  # (C, h, w)
    top = torch.from_numpy(np.maximum(channel_max, 1e-12)).float()  # (C,)
    relative = maps.flatten(1).amax(dim=1) / top  # (C,)
    order = torch.argsort(relative, descending=True, stable=True)[:count].tolist()
    big = _enlarged(x[0], side)
    pictures = [overlay(big, maps[c], vmax=float(top[c])).permute(1, 2, 0).numpy() for c in order]
    return pictures, [f"ch {c} · {float(relative[c]):.2f}" for c in order]


# --- the grid --------------------------------------------------------------------------------------
def channel_grid(
    store: Store, index: ChannelIndex, *, key: str, on_open: str, selected: int | None
) -> None:
    """Channels, most selective first, paged: each row a caption, an "open" button (sets
    ``st.session_state[on_open]`` to the channel) and its strongest images."""
    ranked = index.ranked_channels()
    selectivity = index.selectivity()
    typical = index.typical_share()
    for i in pager(len(ranked), CHANNELS_PER_PAGE, key=f"{key}_page", label="channels"):
        c = ranked[i]
        left, right = st.columns([3, 10], vertical_alignment="center")
        left.markdown(f"**channel {c}**" + ("  \n:blue[open below]" if c == selected else ""))
        left.caption(
            f"selectivity {selectivity[c]:.2f} · typical image {typical[c]:.0%} of its max",
            help=SELECTIVITY_HELP,
        )
        # a callback, so the detail above the grid shows on the very run the click starts
        left.button(
            "Top 50",
            key=f"{key}_open_{c}",
            icon=":material/zoom_in:",
            on_click=st.session_state.__setitem__,
            args=(on_open, c),
        )
        right.image(channel_strip(store, index, c), width="stretch")


def channels_panel(
    store: Store, dataset: Dataset, source: str, layer: str, *, key: str, title: str
) -> None:
    """One network's side of the page: its channels at ``layer`` on ``dataset`` and, once one is
    opened (``st.session_state[key + "_channel"]``), that channel's top 50 with its maps."""
    st.subheader(title)
    index = index_of(store, dataset, source, layer)
    chosen_key = f"{key}_channel"
    chosen = st.session_state.get(chosen_key)
    if chosen is not None and not 0 <= int(chosen) < index.channels:
        st.warning(f"{title} has no channel {chosen} at {layer}: it has {index.channels}.")
        chosen = st.session_state[chosen_key] = None
    g = index.geometry
    st.caption(
        f"{index.channels} channels · {len(index.images):,} images · each crop is the receptive "
        f"field of the channel's strongest spot ("
        + (f"{g.size} of {g.input_side} px)" if g.size < g.input_side else "the whole image)")
    )
    if chosen is not None:
        c = int(chosen)
        st.markdown(f"**Channel {c}: its top {DETAIL_COUNT}**, with its activation map over each")
        st.image(channel_detail(store, index, source_of(store, source), c), width="stretch")
        colour_bar("0", "1 = the channel's highest on any dataset image", note=SCALE_NOTE)
        st.button(
            "Close",
            key=f"{key}_close",
            icon=":material/close:",
            on_click=st.session_state.__setitem__,
            args=(chosen_key, None),
        )
    channel_grid(store, index, key=key, on_open=chosen_key, selected=chosen)


def one_image_panel(
    store: Store, dataset: Dataset, source: str, layer: str, image: PILImage.Image, *, title: str
) -> None:
    """The channels one image excites most, each map on its channel's own dataset scale."""
    index = index_of(store, dataset, source, layer)
    pictures, captions = image_maps(source_of(store, source), image, layer, index.channel_max())
    st.markdown(
        f"**{title}** · {layer}: the {len(pictures)} of {index.channels} channels "
        "this image excites most, strongest first"
    )
    st.image(pictures, caption=captions, width=IMAGE_MAP_SIDE)


def random_layer(store: Store, layer: str) -> str:
    """The untrained network's layer to compare with: the same name if it has it, else its deepest."""
    names = source_of(store, "random").encoder.layer_names
    return layer if layer in names else names[-1]
