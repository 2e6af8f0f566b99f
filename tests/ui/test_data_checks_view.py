"""AppTest of the Explorer's data checks: colour a run's map by each check (pretext score,
outliers, near-duplicates, neighbours kept from random) and the table under the maps, whose
numbers are the CLI's. The checks are jobs: the page submits them and shows their results once
their (real) worker has stored them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import open_app
from streamlit.testing.v1 import AppTest
from waiting import wait_for

from sslviz.data import ensure_demo
from sslviz.maps import neighbour_checks, project
from sslviz.maps.embed import embed
from sslviz.results.image_scores import image_scores
from sslviz.runner.execute import execute
from sslviz.store import Store
from sslviz.training import train
from sslviz.training.config import TrainConfig


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo set, a one-epoch rotation run on it, and the run's map (computed once)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explorer-checks") / "home"
    store = Store.open(root)
    ensure_demo(store)
    config = TrainConfig(
        dataset="demo", task="rotation", image_size=32, epochs=1, batch_size=32, device="cpu"
    )
    run = execute(store, train.create_run(store, config).id)
    assert run.status == "finished", run.error
    project.project(store, "demo", run.id)
    store.close()
    return root


def settle(app: AppTest, timeout: float = 300.0) -> None:
    """Rerun the page until no data-check job is queued or running (and once more after)."""
    store = Store.open()

    def checks_ended() -> bool:
        if any(r.kind == "checks" for r in store.runs.list(("queued", "running"))):
            app.run()
            return False
        return True

    try:
        wait_for(checks_ended, timeout, 0.5, "the data-check jobs did not end")
    finally:
        store.close()
    app.run()
    assert not app.exception, app.exception
    failed = [r.error for r in Store.open().runs.list(("failed",))]
    assert not failed, failed


@pytest.fixture
def app(home: Path, prepared: Path) -> AppTest:
    shutil.copytree(prepared, home)
    return open_app("explorer", params={"source": "1"})


@pytest.mark.slow  # a run and its map are made first
def test_colour_a_runs_map_by_every_check_and_read_the_table(app: AppTest) -> None:
    assert app.selectbox(key="ex_a_source").value == "1"  # ?source=1: the run's map
    app.segmented_control(key="ex_colour").set_value("check").run()
    assert not app.exception, app.exception
    settle(app)
    assert app.selectbox(key="ex_check").value == "score"
    assert app.selectbox(key="ex_check_col_1").value == "upright"  # the task's headline score
    for check in ("outlier", "duplicates", "changed"):
        app.selectbox(key="ex_check").set_value(check).run()
        assert not app.exception, (check, app.exception)
        settle(app)
        assert len(app.get("plotly_chart")) == 1
        if check == "duplicates":
            assert any("group(s) of near-duplicates" in c.value for c in app.caption)

    # The table: every check of the map's embedding, and the run's scores (its own map's run).
    assert app.selectbox(key="ex_table_run_1").value == 1
    table = app.dataframe[0].value
    assert {
        "path",
        "outlier",
        "dup_group",
        "nearest",
        "cosine",
        "kept",
        "upright",
        "sureness",
    } <= set(table.columns)
    assert len(table) == 306

    # The same numbers as the library (and so the CLI) gives.
    store = Store.open()
    emb = embed(store, "demo", 1)
    graph = neighbour_checks.neighbour_graph(store, emb)
    by_path = table.set_index("path")
    outliers = neighbour_checks.outlier_scores(graph)
    assert np.allclose(by_path.loc[graph.paths, "outlier"].to_numpy(), outliers, atol=1e-6)
    scores = image_scores(store, 1, "demo")
    assert np.allclose(by_path.loc[scores.paths, "upright"].to_numpy(), scores.columns["upright"])

    # Focus on the top outliers: 50 rows, their thumbnails, and select them on the map.
    app.selectbox(key="ex_table_show").set_value("outliers").run()
    assert not app.exception
    top = app.dataframe[0].value
    assert len(top) == 50 and top["outlier"].is_monotonic_decreasing
    assert sum("outlier " in c for image in app.image for c in image.captions) == 24  # a page
    app.button(key="ex_table_select").click().run()
    assert not app.exception
    assert any("Selection: 50 image(s)" in h.value for h in app.subheader)

    app.selectbox(key="ex_table_show").set_value("changed").run()
    assert not app.exception
    assert app.dataframe[0].value["kept"].is_monotonic_increasing
    app.text_input(key="ex_table_query").input("cat").run()
    assert not app.exception
    assert all("cat" in p.lower() for p in app.dataframe[0].value["path"])


@pytest.mark.slow  # a second run is trained
def test_selectors_follow_the_map_and_the_default_reuses_a_stored_map(
    home: Path, prepared: Path
) -> None:
    shutil.copytree(prepared, home)
    store = Store.open(home)
    config = TrainConfig(
        dataset="demo", task="rotation", image_size=32, epochs=1, batch_size=32, device="cpu"
    )
    newer = execute(store, train.create_run(store, config).id)  # no map of it yet
    app = open_app("explorer")
    # the page opens on the run whose map is stored, not on the newest run (a new UMAP fit)
    assert app.selectbox(key="ex_a_source").value == "1"
    # random beside it is read out at the same layer and pooling, and says so
    app.toggle(key="ex_compare").set_value(True).run()
    assert app.selectbox(key="ex_b_source").value == "random"
    layer = app.selectbox(key="ex_a_layer_1").value
    grid = app.selectbox(key="ex_a_grid_1").value
    b_layer = next(s for s in app.selectbox if s.key and s.key.startswith("ex_b_layer_random"))
    b_grid = next(s for s in app.selectbox if s.key and s.key.startswith("ex_b_grid_random"))
    assert (b_layer.value, b_grid.value) == (layer, grid)
    assert any("read out as run #1 is" in c.value for c in app.caption)
    # "Pretext scores of" follows a change of the map's source
    assert app.selectbox(key="ex_table_run_1").value == 1
    app.selectbox(key="ex_a_source").set_value(str(newer.id)).run()
    assert not app.exception, app.exception
    # the new run's embedding is computed in the app's work process: the page shows its
    # progress, then the map and the table
    key = f"ex_table_run_{newer.id}"

    def table_shown() -> bool:
        app.run()
        assert not app.exception, app.exception
        return any(s.key == key for s in app.selectbox)

    wait_for(table_shown, 240, 0.5, lambda: f"never shown: {[s.label for s in app.status]}")
    assert app.selectbox(key=key).value == newer.id
