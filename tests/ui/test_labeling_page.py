"""AppTest of the Label and predict page: start a session, add a label name, label images from
the gallery and the queue with a click (saved in the store at once, the counts, the map and the
predictions following in the same run), undo it, label a map selection, and see predictions with
an estimate, the majority-class rate, the CV confusion matrix and the downloads once there are
enough labels."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import open_app
from streamlit.testing.v1 import AppTest
from waiting import wait_for

from sslviz.data import ensure_demo
from sslviz.data.cache import build_cache
from sslviz.fewshot import geometry
from sslviz.fewshot.labeling import create_session, label_images, labels_by_path
from sslviz.maps import project
from sslviz.maps.embed import BASELINE_SIZE, cached_embeddings
from sslviz.store import Store
from sslviz.ui.label_colours import PALETTE, session_colours

PAGE = "app_pages/labeling.py"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo set with its pixels map computed once (the page would compute it inline)."""
    root = tmp_path_factory.mktemp("labeling") / "home"
    store = Store.open(root)
    ensure_demo(store)
    build_cache(store, 1, BASELINE_SIZE, workers=1)  # decoded here, once
    project.project(store, "demo", "pixels")
    store.close()
    return root


@pytest.fixture
def app(home: Path, prepared: Path) -> AppTest:
    shutil.copytree(prepared, home)
    return open_app()


def open_page(app: AppTest, session: int | None = None) -> AppTest:
    if session is not None:
        app.query_params["session"] = str(session)
    app.switch_page(PAGE).run()
    assert not app.exception, app.exception
    return app


def label_buttons(app: AppTest, prefix: str) -> list:
    """The click-to-label buttons under the thumbnails whose keys start with ``prefix``."""
    return [b for b in app.button if b.key and b.key.startswith(prefix)]


def open_tab(app: AppTest, session: int, tab: str) -> AppTest:
    app.session_state[f"lb_tab_{session}"] = tab
    app.run()
    assert not app.exception, app.exception
    return app


def open_predictions(app: AppTest, home: Path, session: int) -> AppTest:
    """The Predictions tab: with 3 labels per class ``auto`` chooses by CV among methods that
    include the UMAP ones, so the page first asks the background for the embedding's 10-D UMAP
    (never fitted in its script) and says so; once it is cached, the page predicts."""
    return wait_for_umap(open_tab(open_page(app, session), session, "Predictions"), home)


def updating(app: AppTest) -> bool:
    """The page says new predictions are being computed in the background."""
    return any("Updating the predictions" in s.label for s in app.status)


def wait_for_predictions(app: AppTest) -> AppTest:
    """Run the page again until its predictions are drawn and none are being computed (the
    fragment that polls in a browser does not run by itself in an AppTest)."""

    def drawn() -> bool:
        app.run()
        assert not app.exception, app.exception
        return not updating(app) and any(m.label == "Estimated accuracy" for m in app.metric)

    wait_for(drawn, 240, 0.2, lambda: f"never drawn: {[s.label for s in app.status]}")
    return app


def wait_for_umap(app: AppTest, home: Path) -> AppTest:
    """Until the background fit of the embedding's 10-D UMAP is cached (the page said it waits
    for it, and predicted meanwhile without the UMAP methods), then the predictions with it."""
    store = Store.open(home)
    try:
        emb = cached_embeddings(store, 1, "pixels")
        if geometry.cached_coords(store, emb) is None:
            assert any("Fitting a UMAP of this embedding" in i.value for i in app.info)
            assert updating(app)  # predicted meanwhile, in the background too
            wait_for_predictions(app)
            if geometry.cached_coords(store, emb) is None:
                assert any("UMAP methods skipped (no fit)" in c.value for c in app.caption)
        wait_for(lambda: geometry.cached_coords(store, emb) is not None, 240, 0.5)
    finally:
        store.close()
    return wait_for_predictions(app)


def test_start_a_session_label_and_undo(app: AppTest, home: Path) -> None:
    open_page(app)
    assert app.selectbox(key="lb_session_1").value == -1  # no session yet: the new-session form
    app.text_input(key="lb_new_name").set_value("first pass")
    app.selectbox(key="lb_new_source").set_value("pixels")
    (start,) = [b for b in app.get("form_submit_button") if "Start" in b.label]
    start.click().run()
    assert not app.exception
    store = Store.open(home)
    (session,) = store.sessions.list()
    assert session.name == "first pass" and session.source == "pixels"
    assert app.query_params["session"] == str(session.id)

    app.text_input(key=f"lb_new_label_{session.id}").set_value("cat")
    next(b for b in app.get("form_submit_button") if b.label == "Add").click().run()
    assert app.button_group(key=f"lb_active_{session.id}").value == "cat"  # the brush

    first = label_buttons(app, "lb_g_")[0]
    assert first.label == "+ cat"
    first.click().run()
    assert not app.exception
    assert list(labels_by_path(store, session.id).values()) == ["cat"]  # in the store at once
    assert any("1 labeled" in m.value for m in app.markdown)
    assert label_buttons(app, "lb_g_")[0].label == "✓ cat"

    app.button(key=f"lb_undo_{session.id}").click().run()
    assert labels_by_path(store, session.id) == {}
    store.close()


def test_a_map_selection_is_labeled_at_once(app: AppTest, home: Path) -> None:
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    store.sessions.add_label_name(session.id, "sky")
    open_page(app, session.id)
    ids = [i.id for i in store.datasets.images(1)[:5]]
    app.session_state[f"lb_sel_{session.id}"] = ids  # as a box selection leaves it
    app.run()
    app.button(key=f"lb_sel_label_{session.id}").click().run()
    assert not app.exception
    assert sorted(store.sessions.label_of(session.id)) == sorted(ids)
    store.close()


def test_predictions_with_estimate_confusion_and_downloads(app: AppTest, home: Path) -> None:
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    folders: dict[str, list[str]] = {}
    for image in store.datasets.images(1):
        folders.setdefault(image.path.split("/")[0], []).append(image.path)
    for folder, paths in folders.items():
        label_images(store, session.id, paths[:3], folder)
    open_predictions(app, home, session.id)
    assert any(m.label == "Estimated accuracy" for m in app.metric)
    estimate = next(m for m in app.metric if m.label == "Estimated accuracy")
    assert estimate.value.endswith("%")
    # issue 26: the majority-class rate beside the accuracy (6 folders, 3 labels each: 17%)
    assert any("majority class 17%" in c.value for c in app.caption)
    assert any("Cross-validation" in str(c.proto.spec) for c in app.get("plotly_chart"))
    labels = [d.proto.label for d in app.get("download_button")]
    assert {"Predictions CSV", "Labels CSV", "Everything (parquet)"} <= set(labels)
    fix = label_buttons(app, "lb_fix_")
    assert fix and len(fix) <= 12  # one predicted label's gallery at a time offers fixes
    fix[0].click().run()  # a fix becomes a label
    assert len(labels_by_path(store, session.id)) == 18 + 1
    assert any("19 labeled" in m.value for m in app.markdown)  # the counts follow at once
    store.close()


def test_too_few_labels_says_so(app: AppTest, home: Path) -> None:
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    paths = [i.path for i in store.datasets.images(1)]
    label_images(store, session.id, paths[:2], "a")
    label_images(store, session.id, paths[-2:], "b")
    wait_for_predictions(open_tab(open_page(app, session.id), session.id, "Predictions"))
    assert any(m.value == "too few labels" for m in app.metric)
    store.close()


def test_a_session_whose_run_was_deleted_says_so_instead_of_predicting(
    app: AppTest, home: Path
) -> None:
    store = Store.open(home)
    run = store.runs.create(
        dataset_id=1, kind="rotation", model_name="small-cnn", config={}, device="cpu", epochs=1
    )
    session = create_session(store, "demo", run.id)
    paths = [i.path for i in store.datasets.images(1)]
    label_images(store, session.id, paths[:3], "a")
    label_images(store, session.id, paths[-3:], "b")
    store.runs.delete(run.id)
    newer = store.runs.create(
        dataset_id=1, kind="rotation", model_name="small-cnn", config={}, device="cpu", epochs=1
    )
    assert newer.id != run.id  # ids are never reused: the session can't point at this one
    open_tab(open_page(app, session.id), session.id, "Predictions")
    assert any(f"run #{run.id}" in w.value and "was deleted" in w.value for w in app.warning)
    assert not app.error and not any(m.label == "Estimated accuracy" for m in app.metric)


def test_a_link_to_a_missing_session_says_so(app: AppTest) -> None:
    open_page(app, 42)
    assert any("labeling session '42', which doesn't exist" in w.value for w in app.warning)


def legend_colours(app: AppTest, title: str) -> dict[str, str]:
    """{label: colour} of the colour legend titled ``title`` under a map."""
    legend = next(m.value for m in app.markdown if f"<b>{title}:</b>" in m.value)
    chips = re.findall(r"background:(#[0-9a-f]{6})[^>]*></span>([^<]+?) <span", legend)
    return {name: colour for colour, name in chips}


def test_a_label_has_one_colour_on_every_map(app: AppTest, home: Path) -> None:
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    folders: dict[str, list[str]] = {}
    for image in store.datasets.images(1):
        folders.setdefault(image.path.split("/")[0], []).append(image.path)
    # astronaut is named first but has the fewest labels: frequency can't decide its colour
    label_images(store, session.id, folders["astronaut"][:3], "astronaut")
    label_images(store, session.id, folders["cat"][:8], "cat")
    label_images(store, session.id, folders["coffee"][:6], "coffee")
    open_page(app, session.id)
    given = legend_colours(app, "label")
    wait_for_umap(open_tab(app, session.id, "Predictions"), home)
    predicted = legend_colours(app, "predicted label (faint = unsure)")
    fixed = session_colours(store, session.id)
    assert given["astronaut"] == fixed["astronaut"] == PALETTE[0]
    for name in ("astronaut", "cat", "coffee"):
        assert given[name] == predicted[name] == fixed[name]
    store.close()


def legend_text(app: AppTest, title: str) -> str:
    """The words of the colour legend titled ``title`` ("label: astronaut (3) ...")."""
    legend = next(m.value for m in app.markdown if f"<b>{title}:</b>" in m.value)
    return re.sub(r"<[^>]+>", "", legend)


def test_a_label_shows_everywhere_in_the_same_run(app: AppTest, home: Path) -> None:
    """Issue 27: labels given in the queue or the gallery showed only after a reload (both were
    fragments; the counts, the map and the predictions were not)."""
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    for name in ("astronaut", "cat"):
        store.sessions.add_label_name(session.id, name)
    open_page(app, session.id)
    assert "unlabeled (306)" in legend_text(app, "label")
    app.button_group(key=f"lb_active_{session.id}").set_value("astronaut").run()
    queue = [b.key for b in label_buttons(app, "lb_next_")]
    label_buttons(app, "lb_next_")[0].click().run()
    # the labeled image leaves the queue; the rest of its batch stays where it was
    assert [b.key for b in label_buttons(app, "lb_next_")] == queue[1:]
    for prefix in ("lb_g_", "lb_next_"):
        label_buttons(app, prefix)[0].click().run()  # the first unlabeled one of each
        assert not app.exception
    app.button_group(key=f"lb_active_{session.id}").set_value("cat").run()
    for prefix in ("lb_g_", "lb_next_", "lb_g_"):
        unlabeled = [b for b in label_buttons(app, prefix) if b.label.startswith("+ ")]
        unlabeled[0].click().run()
        assert not app.exception
    given = store.sessions.label_of(session.id)
    assert sorted(given.values()) == ["astronaut"] * 3 + ["cat"] * 3
    # no reload: the header, the map's legend and the predictions follow in the same run
    assert any("6 labeled" in m.value and "astronaut** 3" in m.value for m in app.markdown)
    legend = legend_text(app, "label")
    assert "unlabeled (300)" in legend and "astronaut (3)" in legend
    open_tab(app, session.id, "Predictions")  # too few to choose by CV: no UMAP to wait for
    assert not any("at least two different labels" in i.value for i in app.info)
    wait_for_predictions(app)
    assert any(m.label == "Estimated accuracy" for m in app.metric)
    store.close()


def test_labels_from_the_queue_flag_the_estimate(app: AppTest, home: Path) -> None:
    """issue 26: the page passes which labels came from the suggestions to ``predict``, so its
    estimate says when most were actively chosen (CV is optimistic on them)."""
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    folders: dict[str, list[str]] = {}
    for image in store.datasets.images(1):
        folders.setdefault(image.path.split("/")[0], []).append(image.path)
    for folder, paths in folders.items():
        label_images(store, session.id, paths[:3], folder, suggested=True)
    open_predictions(app, home, session.id)
    assert any(m.label == "Estimated accuracy" for m in app.metric)
    assert any("chosen by the suggestions" in c.value for c in app.caption)
    store.close()


def test_the_script_returns_while_predictions_are_computed(app: AppTest, home: Path) -> None:
    """Issue 25: predicting (cross-validation and the fit) ran in the page's script, so a label
    held the script (and the server's GIL) for seconds. Now the run that asks for predictions
    returns at once saying they are being computed; the page draws them when they are there,
    and after one more label shows the last ones with "updating…" until the new ones are."""
    store = Store.open(home)
    session = create_session(store, "demo", "pixels")
    paths = [i.path for i in store.datasets.images(1)]
    label_images(store, session.id, paths[:2], "a")
    label_images(store, session.id, paths[-2:], "b")  # too few per class: no UMAP to wait for
    open_tab(open_page(app, session.id), session.id, "Predictions")
    assert updating(app) and not any(m.label == "Estimated accuracy" for m in app.metric)
    wait_for_predictions(app)
    assert "Predictions by label" in " ".join(m.value for m in app.markdown)

    label_images(store, session.id, paths[2:3], "a")  # one more label: new predictions
    app.run()
    assert not app.exception, app.exception
    assert updating(app)  # being computed, and the last ones shown meanwhile
    assert any(m.label == "Estimated accuracy" for m in app.metric)
    assert any("from before your last label" in c.value for c in app.caption)
    wait_for_predictions(app)
    assert not any("from before your last label" in c.value for c in app.caption)
    store.close()


def test_a_source_not_embedded_yet_is_embedded_in_the_background(app: AppTest, home: Path) -> None:
    """Issue 25: the page embedded a small dataset inline, in its script. Now the run returns
    saying the images are being embedded; the queue and the map come once they are."""
    store = Store.open(home)
    session = create_session(store, "demo", "random")  # only pixels was embedded beforehand
    store.sessions.add_label_name(session.id, "cat")
    open_page(app, session.id)
    assert any("Embedding 306 images" in s.label for s in app.status)
    assert cached_embeddings(store, 1, "random") is None  # not in the script: it returned first
    assert not label_buttons(app, "lb_next_")

    def queued() -> bool:
        app.run()
        assert not app.exception, app.exception
        return bool(label_buttons(app, "lb_next_"))

    wait_for(queued, 240, 0.2)
    assert cached_embeddings(store, 1, "random") is not None
    assert not any("Embedding 306 images" in s.label for s in app.status)
    store.close()
