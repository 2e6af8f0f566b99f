"""AppTest of the Features page over the session's tiny trained runs: channels beside the
untrained network's, ``?run=&layer=&channel=`` deep links, a channel's top 50, the first-layer
filters, one image through the network; and the upright section of the rotation page."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import open_app
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import trained_runs  # noqa: E402

from sslviz.api import channel_features  # noqa: E402
from sslviz.store import Store  # noqa: E402


@pytest.fixture
def trained(tmp_path_factory: pytest.TempPathFactory, home: Path) -> trained_runs.Trained:
    template = trained_runs.template(tmp_path_factory)
    template.copy_to(home)
    return template


def open_features(**params: str) -> AppTest:
    return open_app("features", params=params)


def test_channels_of_the_run_beside_the_untrained_network(trained) -> None:
    app = open_features(run=str(trained.jigsaw), layer="block2", channel="3")
    assert app.selectbox(key="feat_run").value == trained.jigsaw
    assert app.selectbox(key="feat_layer").value == "block2"
    headers = [h.value for h in app.subheader]
    assert f"Run #{trained.jigsaw}" in headers and "Untrained (random)" in headers
    # the page's order is the CLI's: the first channel shown is the most selective
    index = channel_features(Store.open(), "shapes", trained.jigsaw, layer="block2")
    first = index.ranked_channels()[0]
    assert any(f"**channel {first}**" in m.value for m in app.markdown)
    # the deep-linked channel is open: its top 50 with activation maps
    assert any("Channel 3: its top 50" in m.value for m in app.markdown)
    app.button(key=f"feat_open_{first}").click().run()
    assert not app.exception
    assert any(f"Channel {first}: its top 50" in m.value for m in app.markdown)
    assert app.query_params["channel"] == str(first)
    app.selectbox(key="feat_layer").set_value("block1").run()
    assert not app.exception and app.query_params["layer"] == "block1"


def test_one_image_through_the_network(trained) -> None:
    app = open_features(run=str(trained.colorization))
    app.segmented_control(key="feat_image_source").set_value("From a dataset").run()
    assert not app.exception
    assert any("activation map at block3" in c.value for c in app.caption)
    # each channel on its own dataset scale (1 = its highest on any dataset image), said on a
    # colour bar: the run and the untrained network read alike, whatever their raw units
    assert any("1 = its highest activation on any image" in c.value for c in app.caption)
    shown = [i for i in app.get("image") if len(i.proto.imgs) > 1]
    assert len(shown) == 2  # the run's and the untrained network's strongest channels
    for element in shown:
        values = [float(img.caption.split(" · ")[1]) for img in element.proto.imgs]
        assert values == sorted(values, reverse=True)
        assert 0 < values[0] <= 1.5  # the dataset's own image: near its channels' maxima


def test_upright_section_on_the_rotation_page(trained) -> None:
    app = open_app("rotation", params={"run": str(trained.rotation)})
    assert "Stored the wrong way up" in [h.value for h in app.subheader]
    # the run's own dataset was looked at when the run ended: read, no button to start it
    assert any("look stored turned" in m.value for m in app.markdown)
    assert not [b for b in app.button if str(b.key).startswith("up_start_")]
    app.slider(key="up_threshold").set_value(0.5).run()
    assert not app.exception
    app.toggle(key="rot_saliency").set_value(True).run()
    assert not app.exception
