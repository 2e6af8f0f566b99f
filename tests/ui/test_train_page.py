"""AppTest of the Train page: defaults from the library, problems before submitting, a real
submitted run (a worker process) that is shown at once and then waited for."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from sslviz.runner import jobs
from sslviz.store import Store
from sslviz.training.config import default_config


def open_train(app: AppTest) -> AppTest:
    app.switch_page("app_pages/train.py").run()
    assert not app.exception
    return app


def test_defaults_follow_dataset_and_task(app: AppTest) -> None:
    open_train(app)
    demo = Store.open().datasets.get_by_name("demo")
    rotation = default_config(demo, "rotation")
    assert app.selectbox(key="train_dataset").value == "demo"
    assert app.number_input(key="train_epochs").value == rotation.epochs
    assert app.number_input(key="train_image_size").value == rotation.image_size
    assert app.selectbox(key="train_device").value == "auto"
    assert "cpu" in app.selectbox(key="train_device").options
    # the demo's 6 folders are crops of 6 photos, too few to hold out whole ones: the last 6
    # crops of every photo are (its right half, which no training crop touches), and the page
    # says so
    said = "270 training images · held out: 36 images: the last ~6 (by name) of each of 6 folders"
    assert any(said in c.value for c in app.caption)
    assert any("Expected time: about" in m.value for m in app.markdown)  # before Start
    app.radio(key="train_holdout_by").set_value("folder").run()
    assert any("held out: 51 images: all of folder " in c.value for c in app.caption)
    app.radio(key="train_holdout_by").set_value("auto").run()

    app.radio(key="train_task").set_value("jigsaw").run()
    jigsaw = default_config(demo, "jigsaw")
    assert app.number_input(key="train_image_size").value == jigsaw.image_size
    assert app.selectbox(key="train_opt_jigsaw_permutations").value == 100
    assert not app.exception

    app.radio(key="train_task").set_value("colorization").run()
    assert app.radio(key="train_opt_colorization_loss").value == "classification"
    assert app.slider(key="train_opt_colorization_temperature").value == 0.38

    # multi-task: the three heads on one encoder; its one option is the jigsaw head's set
    assert "Multi-task" in app.radio(key="train_task").options
    app.radio(key="train_task").set_value("multi").run()
    assert app.selectbox(key="train_opt_multi_permutations").value == 100
    assert any("Doersch & Zisserman" in c.value for c in app.caption)
    assert not app.button(key="train_submit").disabled and not app.exception


def test_problems_are_shown_and_block_submitting(app: AppTest) -> None:
    open_train(app)
    assert not app.button(key="train_submit").disabled
    app.number_input(key="train_batch_size").set_value(1).run()
    assert app.button(key="train_submit").disabled
    assert any("batch size 1 is too small" in e.value for e in app.error)
    app.number_input(key="train_batch_size").set_value(16).run()
    assert not app.button(key="train_submit").disabled
    assert not app.error


def test_settings_this_machine_cant_run_are_refused_before_start(app: AppTest) -> None:
    """The form shows what ``sslviz train`` refuses with (``training.feasibility``), before
    Start: resnet18 at 512 px with 64 images a step needs tens of GB."""
    open_train(app)
    app.selectbox(key="train_encoder").set_value("resnet18")
    app.number_input(key="train_image_size").set_value(512)
    app.number_input(key="train_batch_size").set_value(64).run()
    assert not app.exception and app.button(key="train_submit").disabled
    (shown,) = [e.value for e in app.error]
    assert "batch size 64 at 512 px does not fit this machine" in shown
    assert re.search(r"use --batch-size \d+ or less", shown)
    assert Store.open().runs.list() == []


def test_submit_starts_a_background_run_and_shows_it(app: AppTest) -> None:
    open_train(app)
    app.number_input(key="train_image_size").set_value(16)
    app.number_input(key="train_epochs").set_value(1)
    app.number_input(key="train_batch_size").set_value(32)
    app.run()
    app.button(key="train_submit").click().run()
    assert not app.exception

    store = Store.open()
    (run,) = store.runs.list()
    assert run.status in ("queued", "running")
    assert (run.kind, run.config["image_size"], run.epochs) == ("rotation", 16, 1)
    assert any(f"**Run #{run.id}**" in m.value for m in app.markdown)
    link = next(e for e in app.get("page_link") if "Runs page" in e.proto.label)
    assert (link.proto.page, link.proto.query_string) == ("runs", f"run={run.id}")

    # Clean up: let the one-epoch run end (a real worker process), then check it finished.
    ended = jobs.wait(store, run.id, timeout=240)
    assert ended.status == "finished", ended.error
