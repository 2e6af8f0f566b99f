"""The bundled demo dataset (``assets/demo``: crops of freely licensed photos, see assets/README.md).

An empty workspace gets it at app start, so a first visit has something to train on.
"""

from __future__ import annotations

from pathlib import Path

from sslviz.core.errors import UserError
from sslviz.data.ingest import ingest
from sslviz.data.recovery import RETRYABLE, reap_ingests
from sslviz.store import Dataset, Store

DEMO_NAME = "demo"
DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo"


def ensure_demo(store: Store, *, workers: int | None = None) -> Dataset | None:
    """The demo dataset, ingesting it first if the workspace has no datasets at all.

    Idempotent: returns the existing "demo" dataset if there is one, None if the workspace already
    has other datasets (the user's choice to keep it out) or the assets are not installed. A demo
    whose ingest was interrupted (the app was stopped while preparing it) is ingested again.
    """
    reap_ingests(store)
    datasets = store.datasets.list()
    for dataset in datasets:
        if dataset.name == DEMO_NAME and dataset.status not in RETRYABLE:
            return dataset
    if any(d.name != DEMO_NAME for d in datasets) or not DEMO_DIR.is_dir():
        return None
    try:
        return ingest(store, [DEMO_DIR], DEMO_NAME, workers=workers).dataset
    except UserError:
        # Two app sessions starting at once: the other one created it first.
        existing = [d for d in store.datasets.list() if d.name == DEMO_NAME]
        if existing:
            return existing[0]
        raise
