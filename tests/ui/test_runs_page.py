"""AppTest of the Runs page: a finished run's curves and held-out results, a failed run's error
and traceback, the ?run= link, and delete with a confirmation. The runs are real: trained in this
process on the demo dataset (tiny), and one that really fails (its images vanished)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import open_app, png_bytes
from streamlit.testing.v1 import AppTest

from sslviz.data import ensure_demo, ingest_uploads
from sslviz.runner.execute import execute
from sslviz.store import Run, Store
from sslviz.training import train
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import evaluate_run
from sslviz.ui import runs_view


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """A workspace with the demo dataset, a finished and a failed run: (home, finished, failed).

    Built once for the module (training is the slow part); each test gets its own copy.
    """
    home = tmp_path_factory.mktemp("runs-template")
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SSLVIZ_HOME", str(home))
        store = Store.open(home)
        ensure_demo(store)
        config = TrainConfig(
            dataset="demo", task="rotation", image_size=16, epochs=1, batch_size=32, device="cpu"
        )
        finished = execute(store, train.create_run(store, config).id)

        files = [(f"gone/{i}.png", png_bytes(i)) for i in range(6)]
        dataset = ingest_uploads(store, files, "gone").dataset
        doomed = train.create_run(store, config.replace(dataset="gone"))
        shutil.rmtree(store.workspace.dataset_dir(dataset.id) / "files")  # training can't read them
        with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises, the run records it
            execute(store, doomed.id)
        failed = store.runs.get(doomed.id)
        assert (finished.status, failed.status) == ("finished", "failed")
        store.close()
    return home, finished.id, failed.id


@pytest.fixture
def runs(template: tuple[Path, int, int], home: Path) -> tuple[Run, Run]:
    """(finished, failed) runs, in a fresh copy of the template workspace at ``home``."""
    shutil.copytree(template[0], home)
    store = Store.open(home)
    return store.runs.get(template[1]), store.runs.get(template[2])


@pytest.fixture
def app(runs: tuple[Run, Run]) -> AppTest:
    """The app on the workspace with the runs (overrides conftest's ``app``)."""
    return open_app()


def open_runs(app: AppTest, run_id: int | None = None) -> AppTest:
    if run_id is not None:
        app.query_params["run"] = str(run_id)
    app.switch_page("app_pages/runs.py").run()
    assert not app.exception
    return app


def test_no_runs_points_to_the_train_page(home: Path) -> None:
    app = open_runs(open_app())
    assert any("No runs yet" in e.value for e in app.info)


def test_finished_run_shows_table_curves_and_results(app: AppTest, runs: tuple[Run, Run]) -> None:
    finished, failed = runs
    open_runs(app, finished.id)
    table = next(e.value for e in app.dataframe if "ETA" in e.value.columns)
    assert list(table["run"]) == [failed.id, finished.id]  # newest first
    assert list(table["status"]) == ["failed", "finished"]
    assert table.set_index("run").loc[finished.id, "progress"] == 100  # whole percent

    assert app.selectbox(key="runs_pick").value == finished.id
    charts = app.get("plotly_chart")
    assert len(charts) >= 2  # loss and accuracy of the selected run
    assert {"eval/accuracy"} <= {m.key for m in Store.open().runs.metrics(finished.id)}
    # the held-out tile reads as on the Rotation results page: label, percent, chance, interval
    expected = evaluate_run(Store.open(), finished.id)
    tile = next(m for m in app.metric if m.label == "held-out accuracy")
    assert tile.value == f"{100 * expected['accuracy']:.1f}%"
    assert any("chance 25.0%" in c.value and "95% interval" in c.value for c in app.caption)
    assert not [m for m in app.metric if m.label == "accuracy"]  # no raw metric keys
    assert not app.code or all("Traceback" not in c.value for c in app.code)
    # the feature-quality curve beside the loss, with its one-line advice
    assert any("Feature quality" in c.proto.spec for c in charts)
    assert any(c.value.startswith("**Feature quality: ") for c in app.caption)


def test_opens_on_the_running_run_and_the_numbers_add_up(
    app: AppTest, runs: tuple[Run, Run]
) -> None:
    finished, _ = runs
    store = Store.open()
    now = time.time()
    # a run this process trains in the foreground (as `sslviz train` does), 47.37% done: 90 s of
    # training (its claim is newer than this process, so the reaper leaves it running)
    running = store.runs.create(
        dataset_id=finished.dataset_id, kind="rotation", model_name=finished.model_name,
        config=finished.config, device="cpu", epochs=2, status="running",
    )  # fmt: skip
    store.runs.update(
        running.id, pid=os.getpid(), started_at=now, heartbeat_at=now, step=4737,
        total_steps=10_000, epoch=0, work_seconds=90.0,
    )  # fmt: skip
    # queued behind it (one run per device), and the newest run: it ends after the running one
    queued = store.runs.create(
        dataset_id=finished.dataset_id, kind="rotation", model_name=finished.model_name,
        config=finished.config, device="cpu", epochs=3,
    )  # fmt: skip
    open_runs(app)
    assert app.selectbox(key="runs_pick").value == running.id  # not the newest (queued) run
    table = next(e.value for e in app.dataframe if "ETA" in e.value.columns).set_index("run")
    assert table.loc[running.id, "progress"] == 47  # the panel's rounding
    assert table.loc[running.id, "elapsed"] == "1m 30s"  # its running time
    bar = next(p for p in app.get("progress") if p.proto.text.startswith("47% ·"))
    assert "1m 30s elapsed" in bar.proto.text
    left = 90.0 * (1 - 0.4737) / 0.4737  # the running run's ETA from its pace
    done = store.runs.get(finished.id)
    own = done.work_seconds / done.epoch * 3
    assert table.loc[queued.id, "ETA"] == runs_view.human_duration(left + own)
    store.runs.update(running.id, status="cancelled", pid=None)


def test_failed_run_shows_error_and_traceback(app: AppTest, runs: tuple[Run, Run]) -> None:
    finished, failed = runs
    open_runs(app, failed.id)  # as if opened from a link: /runs?run=ID
    assert app.selectbox(key="runs_pick").value == failed.id
    assert any(failed.error in e.value for e in app.error)
    assert any(c.value.startswith("Traceback") for c in app.code)
    assert app.button(key=f"run_resume_{failed.id}")  # a failed run can be resumed

    app.selectbox(key="runs_pick").set_value(finished.id).run()
    assert app.query_params["run"] == str(finished.id)  # a reload keeps the selection


def test_overlay_and_delete(app: AppTest, runs: tuple[Run, Run]) -> None:
    finished, failed = runs
    open_runs(app, failed.id)
    before = len(app.get("plotly_chart"))
    app.multiselect(key="runs_compare").set_value([finished.id, failed.id]).run()
    assert len(app.get("plotly_chart")) == before + 2

    app.button(key=f"run_delete_{failed.id}").click().run()
    assert any(f"Delete run #{failed.id}" in w.value for w in app.warning)
    app.button(key=f"run_delete_yes_{failed.id}").click().run()
    assert not app.exception
    assert [r.id for r in Store.open().runs.list()] == [finished.id]
    assert not Store.open().workspace.run_dir(failed.id).exists()


def _other_kinds(store: Store, parent: Run) -> tuple[Run, Run]:
    """A finished fine-tune of ``parent`` (with its curves) and a finished embedding job (none)."""
    tune = store.runs.create(
        dataset_id=parent.dataset_id,
        kind="finetune",
        model_name=parent.model_name,
        config={"labels": 18},
        device="cpu",
        epochs=3,
        status="finished",
        parent_id=parent.id,
    )
    store.runs.update(tune.id, epoch=3, step=30, total_steps=30, started_at=parent.created_at)
    store.runs.log_metrics_batch(
        tune.id, [(s, {"loss": 2.0 / s, "accuracy": 1 - 1 / s}) for s in range(1, 31)]
    )
    mapping = store.runs.create(
        dataset_id=parent.dataset_id,
        kind="embedding",
        model_name=parent.model_name,
        config={"source": str(parent.id)},
        device="cpu",
        epochs=1,
        status="finished",
    )
    store.runs.update(mapping.id, step=306, total_steps=306)
    return store.runs.get(tune.id), store.runs.get(mapping.id)


def test_fine_tunes_and_embedding_jobs_show_what_their_kind_has(
    app: AppTest, runs: tuple[Run, Run]
) -> None:
    finished, _ = runs
    tune, mapping = _other_kinds(Store.open(), finished)
    open_runs(app, tune.id)
    table = next(e.value for e in app.dataframe if "ETA" in e.value.columns)
    kinds = dict(zip(table["run"], table["task"], strict=True))
    assert (kinds[tune.id], kinds[mapping.id], kinds[finished.id]) == (
        "fine-tune",
        "embedding + map",
        "rotation",
    )
    assert f"#{tune.id} fine-tune of #{finished.id} on demo" in [h.value for h in app.subheader]
    link = next(e for e in app.get("page_link") if "Started from run" in e.proto.label)
    assert (link.proto.page, link.proto.query_string) == ("runs", f"run={finished.id}")
    assert not [m for m in app.markdown if "Held-out evaluation" in m.value]  # not a pretext
    titles = [c.proto.spec for c in app.get("plotly_chart")]
    assert len(titles) == 2 and "label accuracy (training batch)" in titles[1]

    # Following the link (the URL now names the parent) shows the parent, though a run is picked.
    app.query_params["run"] = str(finished.id)
    app.run()
    assert app.selectbox(key="runs_pick").value == finished.id

    app.selectbox(key="runs_pick").set_value(mapping.id).run()
    assert not app.exception
    assert not app.get("plotly_chart")  # an embedding job logs no curves
    assert not [c for c in app.caption if "No metrics yet" in c.value]
    bar = app.get("progress")[0].proto.text
    assert bar.startswith("100%") and "epoch" not in bar
    # Only runs that train can be overlaid.
    options = app.multiselect(key="runs_compare").options
    assert len(options) == 3 and not [o for o in options if "embedding" in o]
