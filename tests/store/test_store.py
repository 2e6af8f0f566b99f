"""The SQLite store: schema on open, WAL, CHECK-enforced statuses, dataclass rows, atomic transitions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from sslviz.core.errors import UserError
from sslviz.store import SCHEMA_VERSION, Image, Rejection, Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path)
    yield s
    s.close()


def _dataset_with_run(store):
    ds = store.datasets.create("pets", "/data/pets")
    run = store.runs.create(
        dataset_id=ds.id,
        kind="rotation",
        model_name="small-cnn",
        config={"lr": 0.1},
        device="cpu",
        epochs=3,
    )
    return ds, run


def test_open_applies_schema_in_wal_mode(tmp_path):
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "sslviz.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "datasets",
        "images",
        "rejections",
        "duplicates",
        "runs",
        "metrics",
        "artifacts",
    } <= tables


def test_reopening_keeps_data_and_version(tmp_path):
    with_data = Store.open(tmp_path)
    with_data.datasets.create("a", "src")
    with_data.close()
    again = Store.open(tmp_path)
    assert [d.name for d in again.datasets.list()] == ["a"]


def test_newer_schema_is_refused_with_a_clear_error(tmp_path):
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "sslviz.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this sslviz"):
        Store.open(tmp_path)


def test_status_check_constraint_rejects_unknown_status(store):
    _, run = _dataset_with_run(store)
    with pytest.raises(sqlite3.IntegrityError):
        store.runs.update(run.id, status="exploded")
    with pytest.raises(sqlite3.IntegrityError):
        store.runs.create(
            dataset_id=1, kind="sudoku", model_name="x", config={}, device="cpu", epochs=1
        )


def test_transition_only_from_allowed_states(store):
    _, run = _dataset_with_run(store)
    assert store.runs.transition(run.id, "running", allowed_from=["queued"], pid=123)
    assert not store.runs.transition(run.id, "running", allowed_from=["queued"])
    assert store.runs.transition(run.id, "interrupted", allowed_from=["running"])
    # the worker finishing after the reaper won: it must not overwrite "interrupted"
    assert not store.runs.transition(run.id, "finished", allowed_from=["running"])
    got = store.runs.get(run.id)
    assert (got.status, got.pid, got.config) == ("interrupted", 123, {"lr": 0.1})


def test_dataset_images_are_ordered_by_path_and_counted(store):
    ds = store.datasets.create("d", "src")
    rows = [
        Image(0, ds.id, path, f"{i:064x}", f"files/{i}.png", 10, 12, "RGB", "PNG", 100 + i)
        for i, path in enumerate(["b/2.png", "a.png", "b/1.png"])
    ]
    store.datasets.add_images(rows)
    store.datasets.add_rejections(ds.id, [Rejection("bad.jpg", "truncated image file")])
    done = store.datasets.finish(ds.id)
    assert [i.path for i in store.datasets.images(ds.id)] == ["a.png", "b/1.png", "b/2.png"]
    assert (done.status, done.n_images, done.n_rejected, done.bytes) == ("ready", 3, 1, 303)
    with pytest.raises(sqlite3.IntegrityError):  # the same content twice in one dataset
        store.datasets.add_images([rows[0]])


def test_unknown_names_raise_user_errors_listing_what_exists(store):
    store.datasets.create("cats", "src")
    with pytest.raises(UserError, match="cats"):
        store.datasets.get_by_name("dogs")
    with pytest.raises(UserError, match="sslviz runs"):
        store.runs.get(99)
    with pytest.raises(UserError, match="already exists"):
        store.datasets.create("cats", "again")


def test_metrics_long_form_and_cascade_delete(store):
    ds, run = _dataset_with_run(store)
    store.runs.log_metrics(run.id, 1, {"loss": 2.0, "accuracy": 0.25})
    store.runs.log_metrics(run.id, 2, {"loss": 1.5})
    store.runs.add_artifact(run.id, "confusion", "json", "artifacts/confusion.json")
    assert [(m.step, m.value) for m in store.runs.metrics(run.id, "loss")] == [(1, 2.0), (2, 1.5)]
    store.datasets.delete(ds.id)
    assert store.runs.list() == []
    assert store.runs.metrics(run.id) == []


def test_a_second_process_sees_writes_while_the_first_holds_its_connection(store, tmp_path):
    _, run = _dataset_with_run(store)
    code = (
        "import sys; from sslviz.store import Store; s = Store.open(sys.argv[1]); "
        "s.runs.log_metrics(1, 5, {'loss': 0.5}); s.runs.heartbeat(1)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert store.runs.metrics(run.id, "loss")[0].value == 0.5
    assert store.runs.get(run.id).heartbeat_at is not None
