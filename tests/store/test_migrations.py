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
        assert (run.task, run.status, run.parent_id) == ("rotation", "finished", None)
        assert [m.value for m in store.runs.metrics(7, "loss")] == [0.5]
        assert [a.name for a in store.runs.artifacts(7)] == ["examples"]
        assert store.datasets.get_by_name("old").n_images == 1
        assert store.datasets.count_images(1) == 1
        # the rebuilt tables enforce their new checks and keep cascading deletes
        child = store.runs.create(
            dataset_id=1,
            task="finetune",
            encoder="small-cnn",
            config={},
            device="cpu",
            epochs=1,
            parent_id=7,
        )
        assert store.runs.get(child.id).parent_id == 7
        with pytest.raises(sqlite3.IntegrityError):
            store.runs.create(
                dataset_id=1, task="nonsense", encoder="x", config={}, device="cpu", epochs=1
            )
        store.datasets.delete(1)
        assert store.runs.list() == []
        assert store.connection.query("SELECT COUNT(*) FROM metrics")[0][0] == 0
    finally:
        store.close()
