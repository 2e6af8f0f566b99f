"""Migrations keep what an older workspace holds: a v1 database opened by this sslviz is rebuilt
to the current schema with every row (and the rows that reference them) intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sslviz.store import SCHEMA_VERSION, Store
from sslviz.store.schema import MIGRATIONS


def _v1_database(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO datasets (id, name, source, status, created_at, n_images) "
        "VALUES (1, 'old', '/x', 'ready', 1.0, 1)"
    )
    conn.execute(
        "INSERT INTO images (dataset_id, path, sha256, file, width, height, mode, format, bytes) "
        "VALUES (1, 'a.png', 'abc', 'files/abc.png', 8, 8, 'RGB', 'PNG', 10)"
    )
    conn.execute(
        "INSERT INTO runs (id, dataset_id, task, encoder, config, device, status, created_at, "
        "epochs) VALUES (7, 1, 'rotation', 'small-cnn', '{}', 'cpu', 'finished', 2.0, 3)"
    )
    conn.execute("INSERT INTO metrics VALUES (7, 'loss', 1, 0.5, 3.0)")
    conn.execute("INSERT INTO artifacts VALUES (7, 'examples', 'image', 'a.png', 3.0)")
    conn.close()


def test_v1_workspace_migrates_with_rows_intact(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _v1_database(home / "sslviz.db")
    store = Store.open(home)
    try:
        version = store.connection.query("PRAGMA user_version")[0][0]
        assert version == SCHEMA_VERSION
        run = store.runs.get(7)
        assert (run.kind, run.status, run.parent_id) == ("rotation", "finished", None)
        assert [m.value for m in store.runs.metrics(7, "loss")] == [0.5]
        assert [a.name for a in store.runs.artifacts(7)] == ["examples"]
        assert store.datasets.get_by_name("old").n_images == 1
        assert store.datasets.count_images(1) == 1
        # the rebuilt tables enforce their new checks and keep cascading deletes
        child = store.runs.create(
            dataset_id=1,
            kind="finetune",
            model_name="small-cnn",
            config={},
            device="cpu",
            epochs=1,
            parent_id=7,
        )
        assert store.runs.get(child.id).parent_id == 7
        with pytest.raises(sqlite3.IntegrityError):
            store.runs.create(
                dataset_id=1, kind="nonsense", model_name="x", config={}, device="cpu", epochs=1
            )
        store.datasets.delete(1)
        assert store.runs.list() == []
        assert store.connection.query("SELECT COUNT(*) FROM metrics")[0][0] == 0
    finally:
        store.close()


def _v2_database(path: Path) -> None:
    """A v2 workspace: a dataset with two images, a run and its fine-tune, a labeling session."""
    conn = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(
        "INSERT INTO datasets (id, name, source, status, created_at, n_images, pid) "
        "VALUES (3, 'old', '/x', 'ready', 1.0, 2, 99)"
    )
    for i, name in ((5, "a"), (6, "b")):
        conn.execute(
            "INSERT INTO images (id, dataset_id, path, sha256, file, width, height, mode, "
            "format, bytes) VALUES (?, 3, ?, ?, 'files/x.png', 8, 8, 'RGB', 'PNG', 10)",
            (i, f"{name}.png", name),
        )
    for run_id, task, parent in ((7, "rotation", None), (8, "finetune", 7)):
        conn.execute(
            "INSERT INTO runs (id, dataset_id, task, encoder, config, device, status, created_at, "
            "epochs, parent_id) VALUES (?, 3, ?, 'small-cnn', '{}', 'cpu', 'finished', 2.0, 3, ?)",
            (run_id, task, parent),
        )
    conn.execute("INSERT INTO metrics VALUES (8, 'loss', 1, 0.5, 3.0)")
    conn.execute(
        "INSERT INTO sessions (id, dataset_id, name, source, created_at) "
        "VALUES (4, 3, 's', '7', 1.0)"
    )
    conn.execute("INSERT INTO label_names (id, session_id, name) VALUES (1, 4, 'cat')")
    conn.execute("INSERT INTO labels VALUES (4, 5, 1, 1.0)")
    conn.close()


def test_v2_workspace_migrates_with_rows_intact_and_ids_are_never_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _v2_database(home / "sslviz.db")
    store = Store.open(home)
    try:
        assert store.connection.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert store.runs.get(8).parent_id == 7 and store.runs.get(7).kind == "rotation"
        assert [m.value for m in store.runs.metrics(8, "loss")] == [0.5]
        assert [i.id for i in store.datasets.images(3)] == [5, 6]
        assert store.datasets.get(3).pid == 99
        rows = store.connection.query("SELECT session_id, image_id FROM labels")
        assert [tuple(row) for row in rows] == [(4, 5)]
        # delete the newest run: the next one gets a new id, never 8 again
        store.runs.delete(8)
        new = store.runs.create(
            dataset_id=3, kind="rotation", model_name="small-cnn", config={}, device="cpu", epochs=1
        )
        assert new.id == 9
        # the same for the newest dataset (and its images and sessions, which cascade)
        store.datasets.delete(3)
        assert store.connection.query("SELECT COUNT(*) FROM labels")[0][0] == 0
        dataset = store.datasets.create("again", "/y")
        assert dataset.id == 4
    finally:
        store.close()


def test_v3_workspace_takes_multi_task_runs_and_keeps_its_id_sequence(tmp_path: Path) -> None:
    """Migration 4 rebuilds ``runs`` for the ``multi`` kind: rows and ids kept, and the id of a
    run deleted before the upgrade is still never given again."""
    home = tmp_path / "home"
    home.mkdir()
    conn = sqlite3.connect(home / "sslviz.db", isolation_level=None)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO datasets (id, name, source, status, created_at) "
        "VALUES (1, 'old', '/x', 'ready', 1.0)"
    )
    for run_id in (1, 2):
        conn.execute(
            "INSERT INTO runs (id, dataset_id, task, encoder, config, device, status, created_at, "
            "epochs) VALUES (?, 1, 'jigsaw', 'small-cnn', '{}', 'cpu', 'finished', 2.0, 3)",
            (run_id,),
        )
    conn.execute("INSERT INTO metrics VALUES (1, 'loss', 1, 0.5, 3.0)")
    conn.execute("DELETE FROM runs WHERE id = 2")  # the newest run, deleted before the upgrade
    with pytest.raises(sqlite3.IntegrityError):  # v3 knows no multi-task runs
        conn.execute(
            "INSERT INTO runs (dataset_id, task, encoder, config, device, created_at, epochs) "
            "VALUES (1, 'multi', 'small-cnn', '{}', 'cpu', 2.0, 3)"
        )
    conn.close()
    store = Store.open(home)
    try:
        assert store.connection.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert store.runs.get(1).kind == "jigsaw"
        assert [m.value for m in store.runs.metrics(1, "loss")] == [0.5]
        new = store.runs.create(
            dataset_id=1, kind="multi", model_name="small-cnn", config={}, device="cpu", epochs=1
        )
        assert new.id == 3 and store.runs.get(3).kind == "multi"
        with pytest.raises(sqlite3.IntegrityError):
            store.runs.create(
                dataset_id=1, kind="nonsense", model_name="x", config={}, device="cpu", epochs=1
            )
    finally:
        store.close()
