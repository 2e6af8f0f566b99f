"""The SQLite store: the single source of truth for datasets, runs, metrics and artifacts.

    store = Store.open()            # the workspace named by $SSLVIZ_HOME
    store.datasets.get_by_name("demo")
    store.runs.get(3)

connection         one SQLite connection in WAL mode, shared by the tables
schema             the schema, as an ordered list of migrations
rows               the plain dataclasses rows become at the boundary
datasets           datasets, their images, and the files ingest rejected or found duplicated
runs               runs of every kind, their metrics (long form: run, key, step) and artifacts
labeling_sessions  labeling sessions, their label names, labels and undo log
kinds              what each kind of run is (executor, results writer), without importing torch
"""

from __future__ import annotations

from pathlib import Path

from sslviz.core.workspace import Workspace
from sslviz.store.connection import Connection
from sslviz.store.datasets import DatasetTable
from sslviz.store.labeling_sessions import SessionTable
from sslviz.store.rows import Artifact, Dataset, Duplicate, Image, Metric, Rejection, Run
from sslviz.store.runs import RunTable
from sslviz.store.schema import JOB_KINDS, RUN_KINDS, RUN_STATUSES, SCHEMA_VERSION, TASKS


class Store:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.connection = Connection(workspace.db_path)
        self.datasets = DatasetTable(self.connection)
        self.runs = RunTable(self.connection)
        self.sessions = SessionTable(self.connection)

    @classmethod
    def open(cls, home: Path | str | None = None) -> Store:
        """Open (creating and migrating if needed) the store of ``home`` or of ``$SSLVIZ_HOME``."""
        if home is None:
            return cls(Workspace.from_env())
        root = Path(home).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(Workspace(root))

    def close(self) -> None:
        self.connection.close()


__all__ = [
    "JOB_KINDS",
    "RUN_KINDS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "TASKS",
    "Artifact",
    "Dataset",
    "Duplicate",
    "Image",
    "Metric",
    "Rejection",
    "Run",
    "Store",
]
