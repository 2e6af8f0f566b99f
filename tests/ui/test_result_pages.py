"""AppTests of the result pages and the live demo over tiny real runs of every task (trained once
per session, see tests/results/trained_runs.py): run selection, ``?run=`` links, the figures
``sslviz eval`` gives, the empty state, and an upload that is not an image."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import open_app, png_bytes
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import trained_runs  # noqa: E402

from sslviz.runner import jobs  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training.evaluate import evaluate_run  # noqa: E402


@pytest.fixture
def trained(tmp_path_factory: pytest.TempPathFactory, home: Path) -> trained_runs.Trained:
    """The session's trained runs, copied into this test's workspace."""
    template = trained_runs.template(tmp_path_factory)
    template.copy_to(home)
    return template


def open_page(name: str, run_id: int | None = None) -> AppTest:
    return open_app(name, params={} if run_id is None else {"run": str(run_id)})


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_rotation_page_shows_eval_figures(trained: trained_runs.Trained) -> None:
    app = open_page("rotation")
    assert app.selectbox(key="rot_run").value == trained.rotation
    assert app.selectbox(key="rot_run").options == [
        f"#{trained.rotation} rotation on shapes · finished"
    ]
    expected = evaluate_run(Store.open(), trained.rotation)
    assert metric(app, "held-out accuracy") == f"{100 * expected['accuracy']:.1f}%"
    heatmap = app.get("plotly_chart")[0]
    assert "Confusion matrix" in heatmap.proto.spec
    assert len(app.get("plotly_chart")) == 2
    # every accuracy sits next to chance and its 95% interval, as `sslviz eval` gives them
    low, high = expected["accuracy_interval"]
    context = f"chance 25.0% · 95% interval {100 * low:.0f}–{100 * high:.0f}%"
    assert any(c.value == context for c in app.caption)
    said = [w.value for w in app.warning if "learned nothing" in w.value]
    assert bool(said) == (not expected["learned"])
    # ambiguity is judged in absolute terms and against the model's typical sureness, both said
    app.slider(key="rot_ambiguous_below").set_value(1.0).run()
    assert not app.exception
    said = next(c.value for c in app.caption if " of 6 images: " in c.value)
    assert "below 50% sure in absolute terms" in said
    assert "1.00× the model's typical sureness" in said


def test_deep_link_opens_the_run_and_other_tasks_are_sent_to_their_page(
    trained: trained_runs.Trained,
) -> None:
    app = open_page("colorization", trained.colorization)  # not the newest colorization run
    assert app.selectbox(key="col_run").value == trained.colorization
    app.selectbox(key="col_run").set_value(trained.colorization_l2).run()
    assert str(trained.colorization_l2) == app.query_params["run"]

    app = open_page("jigsaw", trained.rotation)
    assert any("is a rotation run, not a jigsaw run" in w.value for w in app.warning)
    assert app.selectbox(key="jig_run").value == trained.jigsaw  # the jigsaw run instead
    assert all("rotation" not in o for o in app.selectbox(key="jig_run").options)


def test_colorization_page_temperature_and_comparison(trained: trained_runs.Trained) -> None:
    app = open_page("colorization", trained.colorization)
    expected = evaluate_run(Store.open(), trained.colorization)
    assert metric(app, "PSNR, model") == f"{expected['psnr']:.2f} dB"
    assert metric(app, "PSNR, faithful decode") == f"{expected['psnr_faithful']:.2f} dB"
    assert metric(app, "PSNR, grey image (no colour)") == f"{expected['psnr_grey']:.2f} dB"
    app.slider(key="col_temperature").set_value(1.0).run()
    assert not app.exception
    assert any("At T = 1" in i.value for i in app.info)
    assert app.selectbox(key="col_compare").value == trained.colorization_l2  # L2 vs classification
    assert any(m.label == f"PSNR #{trained.colorization_l2} l2" for m in app.metric)


def test_jigsaw_page_figures_and_filter(trained: trained_runs.Trained) -> None:
    app = open_page("jigsaw")
    expected = evaluate_run(Store.open(), trained.jigsaw)
    assert metric(app, "held-out accuracy") == f"{100 * expected['accuracy']:.1f}%"
    assert metric(app, "top-5 accuracy") == f"{100 * expected['top5']:.1f}%"
    captions = [c.value for c in app.caption]
    assert any(c.startswith("chance 3.3% · 95% interval") for c in captions)  # 30 permutations
    assert any(c.startswith("chance 16.7% · 95% interval") for c in captions)  # top-5
    chance_hamming = expected["chance"]["mean_hamming"]
    assert any(c.startswith(f"chance {chance_hamming:.2f}") for c in captions)
    said = [w.value for w in app.warning if "learned nothing" in w.value]
    if expected["learned"]:
        assert not said
    else:  # a few steps of jigsaw: says so, and what to do
        assert "jigsaw needs thousands of steps" in said[0]
    assert metric(app, "permutation set") == "30"
    app.segmented_control(key="jig_filter").set_value("wrong").run()
    assert not app.exception


def test_demo_reads_an_upload_and_grades_it_only_when_told_upright(
    trained: trained_runs.Trained,
) -> None:
    app = open_page("demo", trained.rotation)
    assert app.selectbox(key="demo_run").value == trained.rotation
    array = trained_runs.oriented_image(np.random.default_rng(5), 64)
    upright, sideways = trained_runs.png(array), trained_runs.png(np.rot90(array).copy())
    app.file_uploader(key="demo_upload").set_value(("photo.png", sideways, "image/png")).run()
    assert not app.exception
    headlines = [m.value for m in app.markdown if m.value.startswith("## ")]
    # read, not graded: the turn it sees, and no verdict on the stored orientation
    assert headlines[0].startswith("## The model thinks this image was turned 90° counter-clock")
    assert not any("named right" in h for h in headlines)
    # the run's held-out figures beside the answer
    assert any(m.label == "held-out accuracy" for m in app.metric)

    app.file_uploader(key="demo_upload").set_value(("photo.png", upright, "image/png")).run()
    assert any(m.value.startswith("## The model reads this image as upright") for m in app.markdown)
    app.checkbox(key="demo_upright_own").check().run()  # the person says it is upright: graded
    assert any("4 of 4 turns named right" in m.value for m in app.markdown)

    app.file_uploader(key="demo_upload").set_value(("notes.png", b"hello", "image/png")).run()
    assert not app.exception
    assert any("notes.png is not a usable image" in e.value for e in app.error)


def test_demo_says_whether_a_dataset_image_was_trained_on(trained: trained_runs.Trained) -> None:
    app = open_page("demo", trained.rotation)
    app.segmented_control(key="demo_source").set_value("From a dataset").run()
    assert not app.exception
    store = Store.open()
    run = store.runs.get(trained.rotation)
    from sslviz.results import held_out
    from sslviz.results.apply import load_run_model

    held = held_out(store, run, load_run_model(store, run.id).config)
    paths = [i.path for i in store.datasets.images(run.dataset_id)]
    trained_row = next(r for r in range(len(paths)) if r not in held.rows)
    for row, said in ((held.rows[0], "Held out:"), (trained_row, "Trained on:")):
        app.number_input(key="demo_index").set_value(row + 1).run()
        assert not app.exception
        shown = [e.value for e in [*app.success, *app.warning] if paths[row] in e.value]
        assert shown and said in shown[0], shown
    assert app.checkbox(key="demo_upright_dataset").value  # a dataset image is graded
    assert any("turns named right" in m.value for m in app.markdown)

    app.selectbox(key="demo_run").set_value(trained.jigsaw).run()
    assert not app.exception
    assert any(m.value.startswith("## puzzle") for m in app.markdown)


def test_demo_colorization_with_a_real_photo(trained: trained_runs.Trained) -> None:
    app = open_page("demo", trained.colorization)
    app.file_uploader(key="demo_upload").set_value(("c.png", png_bytes(3, 48), "image/png")).run()
    assert not app.exception
    assert any("PSNR" in m.value for m in app.markdown)
    app.slider(key="demo_temperature").set_value(0.9).run()
    assert not app.exception


def test_no_run_of_the_task_points_to_the_train_page(trained: trained_runs.Trained) -> None:
    jobs.delete_run(Store.open(), trained.jigsaw)
    app = open_page("jigsaw")
    assert any("No jigsaw run yet" in i.value for i in app.info)
    link = next(e for e in app.get("page_link") if "Train an encoder" in e.proto.label)
    assert link.proto.page.endswith("train")


@pytest.mark.parametrize("page", ["demo", "rotation"])
def test_a_link_to_a_missing_run_says_so(trained: trained_runs.Trained, page: str) -> None:
    app = open_page(page, 99)
    assert any("run #99, which doesn't exist" in w.value for w in app.warning)
    app.run()  # the page now names the run it shows: said once
    assert not any("run #99" in w.value for w in app.warning)
