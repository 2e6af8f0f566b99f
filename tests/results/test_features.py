"""Per-channel dataset examples (``sslviz features``): the receptive field is where the unit
really looks, one pass gives every channel's top images, the cache is reused, and the CLI answers
DESIGN 3.2's keys."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from sslviz.api import channel_features
from sslviz.core.errors import UserError
from sslviz.models.encoders import create_encoder
from sslviz.results.features import first_layer_filters, index_file
from sslviz.results.receptive_field import layer_geometry, to_stored
from sslviz.store import Store


@pytest.mark.parametrize(("name", "side"), [("small-cnn", 32), ("small-cnn", 40), ("resnet18", 32)])
def test_receptive_field_is_where_the_gradient_reaches(name: str, side: int) -> None:
    """Property: the input pixels that can change a unit are exactly inside its computed box."""
    torch.manual_seed(0)
    encoder = create_encoder(name, image_size=side).eval()
    for layer in encoder.layer_names[:3]:
        geometry = layer_geometry(encoder, layer, side)
        x = torch.randn(1, 3, side, side, requires_grad=True)
        fmap = encoder.feature_maps(x, [layer])[layer]
        assert fmap.shape[-1] == geometry.map_side
        row = col = geometry.map_side // 2
        fmap[0, :, row, col].sum().backward()
        ys, xs = (x.grad[0].abs().sum(0) > 0).nonzero(as_tuple=True)
        x0, y0, x1, y1 = geometry.box(row, col)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1, layer
        # and the box is tight: the gradient reaches its far edges (up to a pixel of padding)
        assert xs.max() - xs.min() + 1 >= min(geometry.size, side) - 2


def test_boxes_map_back_to_the_stored_image() -> None:
    # a 64x40 image: shorter side 40 -> 32 px, centre crop: 12 px cut off left and right
    assert to_stored((0, 0, 32, 32), 32, 64, 40) == [12, 0, 52, 40]
    assert to_stored((16, 16, 32, 32), 32, 40, 40) == [20, 20, 40, 40]


def test_one_pass_gives_every_channel_and_is_cached(trained) -> None:
    store = Store.open()
    index = channel_features(store, "shapes", trained.rotation, layer="block2")
    assert index.peak.shape == (60, 64) and index.seconds > 0
    ranked = index.ranked_channels()
    assert sorted(ranked) == list(range(64))
    selectivity = index.selectivity()
    assert all(selectivity[a] >= selectivity[b] for a, b in zip(ranked, ranked[1:], strict=False))
    top = index.top_images(ranked[0], 5)
    peaks = index.peak[top, ranked[0]]
    assert list(peaks) == sorted(peaks, reverse=True)
    assert peaks[0] == index.peak[:, ranked[0]].max()
    again = channel_features(store, "shapes", trained.rotation, layer="block2")
    assert again.seconds == 0 and (again.peak == index.peak).all()  # read, not recomputed
    dataset = store.datasets.get_by_name("shapes")
    assert index_file(store, dataset, _source(store, trained.rotation), "block2").exists()


def _source(store, run):
    from sslviz.results.features import feature_source

    return feature_source(store, run)


def test_first_layer_filters_are_pictures(trained) -> None:
    store = Store.open()
    rgb = first_layer_filters(_source(store, trained.rotation).encoder)
    grey = first_layer_filters(_source(store, trained.colorization).encoder)
    assert rgb.shape == (16, 3, 3, 3) and rgb.dtype == torch.uint8
    assert (grey[:, 0] == grey[:, 1]).all()  # colorization sees L only: grey filters


@pytest.mark.slow
def test_cli_features_json(trained) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslviz",
            "features",
            str(trained.rotation),
            "--dataset",
            "shapes",
            "--channels",
            "3",
            "--top",
            "4",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert {"run", "dataset", "layer", "channels"} <= set(result)
    assert result["run"] == trained.rotation and result["layer"] == "block3"
    assert len(result["channels"]) == 3
    for channel in result["channels"]:
        acts = [i["activation"] for i in channel["images"]]
        assert len(acts) == 4 and acts == sorted(acts, reverse=True)
        for image in channel["images"]:
            x0, y0, x1, y1 = image["box"]
            assert 0 <= x0 < x1 <= 40 and 0 <= y0 < y1 <= 40  # the stored images are 40 px
    with pytest.raises(UserError, match="block1"):
        channel_features(Store.open(), "shapes", "random", layer="nope")
