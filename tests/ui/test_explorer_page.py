"""AppTest of the Explorer page: empty states, baselines without runs, source switching,
colouring, side by side, a selection's thumbnails and neighbours, a large dataset's job."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import open_app
from streamlit.testing.v1 import AppTest

from sslviz.data import delete_dataset, ensure_demo
from sslviz.maps import project
from sslviz.runner import jobs
from sslviz.store import Store
from sslviz.ui.explorer_panels import QUERY_CAPTION

PAGE = "app_pages/explorer.py"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with the demo set and its random and pixels maps, computed once (the page
    computes them inline too: that path is the job test's, with other UMAP settings)."""
    root = tmp_path_factory.mktemp("explorer") / "home"
    store = Store.open(root)
    ensure_demo(store)
    for source in ("random", "pixels"):
        project.project(store, "demo", source)
    store.close()
    return root


@pytest.fixture
def app(home: Path, prepared: Path) -> AppTest:
    """The app on a copy of the prepared workspace (this module's own, replacing conftest's)."""
    shutil.copytree(prepared, home)
    return open_app()


def open_explorer(app: AppTest) -> AppTest:
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def test_no_dataset_says_where_to_add_one(app: AppTest) -> None:
    store = Store.open()
    delete_dataset(store, store.datasets.get_by_name("demo").id)
    app.switch_page(PAGE).run()
    assert not app.exception
    assert any("No dataset yet" in i.value for i in app.info)
    assert not app.get("plotly_chart")


def test_baselines_without_runs_then_switching_source_and_colour(app: AppTest) -> None:
    open_explorer(app)
    source = app.selectbox(key="ex_a_source")
    assert source.options == [
        "random — the same network, untrained",
        "pixels — downscaled raw pixels",
    ]
    assert any("No trained run yet" in c.value for c in app.caption)
    assert len(app.get("plotly_chart")) == 1
    # Folders exist in the demo set: coloured by folder, and the kNN agreement uses them.
    assert app.segmented_control(key="ex_colour").value == "folder"
    labels = [m.label for m in app.metric]
    assert "Effective rank" in labels and "10-NN agreement" in labels
    assert not app.image  # nothing selected yet: no thumbnails
    assert any("Box Select" in c.value for c in app.caption)

    source.set_value("pixels").run()
    assert not app.exception
    assert app.selectbox(key="ex_a_layer_pixels").value == "16px"
    app.segmented_control(key="ex_colour").set_value("cluster").run()
    assert not app.exception
    assert app.number_input(key="ex_k").value == 8
    app.number_input(key="ex_k").set_value(3).run()
    assert not app.exception
    assert any("k-means (3 clusters)" in m.value for m in app.markdown)


def test_selection_shows_thumbnails_neighbours_and_the_other_map(app: AppTest) -> None:
    open_explorer(app)
    app.toggle(key="ex_compare").set_value(True).run()
    assert not app.exception
    assert app.selectbox(key="ex_b_source").value == "pixels"
    assert len(app.get("plotly_chart")) == 2

    store = Store.open()
    demo = store.datasets.get_by_name("demo")
    images = store.datasets.images(demo.id)
    chosen = [images[0].id, images[40].id, images[200].id]
    # A selection as the map widget keeps it (image ids in session state).
    app.session_state["ex_sel_a"] = np.array(chosen, dtype=np.int64)
    app.run()
    assert not app.exception
    assert any("Selection on the left map: 3 image(s)" in h.value for h in app.subheader)
    captions = [c for image in app.image for c in image.captions]
    assert {images[i].path for i in (0, 40, 200)} <= set(captions)
    neighbours = [c for c in captions if "cos " in c or QUERY_CAPTION in c]
    assert len(captions) - len(neighbours) == 3  # exactly the selected images
    # Neighbours of the first selected image, in both maps' embeddings, with similarities,
    # each grid led by the image itself
    assert app.selectbox(key="ex_anchor").value == images[0].path
    assert sum("cos " in c for c in captions) == 2 * 16
    assert captions.count(f"{images[0].path} · {QUERY_CAPTION}") == 2
    assert not app.button(key="ex_clear").disabled
    app.button(key="ex_clear").click().run()
    assert not app.exception
    assert any("0 image(s)" in h.value for h in app.subheader)


def test_search_highlights_matching_images(app: AppTest) -> None:
    open_explorer(app)
    app.text_input(key="ex_search").input("cat_00").run()
    assert not app.exception
    assert any("10 image(s) match" in c.value for c in app.caption)


@pytest.mark.slow
def test_large_dataset_map_is_a_background_job_shown_when_done(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sslviz.maps import embedding_job

    # The page asks embedding_job whether a dataset is small; make the demo set "large".
    monkeypatch.setattr(embedding_job, "INLINE_MAX_IMAGES", 10)
    open_explorer(app)
    app.slider(key="ex_umap_neighbors").set_value(5).run()  # a map not computed yet
    assert any("computed in the background" in i.value for i in app.info)
    # the embedding is stored already (same source, layer and pooling): its PCA map meanwhile
    assert len(app.get("plotly_chart")) == 1
    assert any("PCA map of the embedding" in c.value for c in app.caption)
    app.button(key="ex_a_submit").click().run()
    assert not app.exception
    store = Store.open()
    (run,) = [r for r in store.runs.list() if r.kind == "embedding"]
    assert (run.config["source"], run.config["neighbors"]) == ("random", 5)
    assert app.get("progress")  # polled from the store while it runs
    assert jobs.wait(store, run.id, timeout=180).status == "finished"
    app.run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 1


def test_links_to_a_missing_dataset_or_source_say_so(app: AppTest) -> None:
    app.query_params["dataset"] = "nope"
    open_explorer(app)
    assert any("dataset 'nope', which doesn't exist" in w.value for w in app.warning)
    assert any("showing demo instead" in w.value for w in app.warning)
    assert "dataset" not in app.query_params  # the bad link is dropped from the URL

    fresh = open_app("explorer", params={"dataset": "demo", "source": "99"})
    assert any("map source '99' for demo, which doesn't exist" in w.value for w in fresh.warning)
