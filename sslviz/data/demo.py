"""The bundled demo dataset (``assets/demo``: crops of freely licensed photos, see assets/README.md).

An empty workspace gets it at app start, so a first visit has something to train on. It is found
in the source tree (a clone, an editable install) or, after ``pip install .`` from a wheel, in
``<prefix>/share/sslviz/demo`` (the wheel's data files, see pyproject.toml).
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

from sslviz.core.errors import UserError
from sslviz.data.ingest_pipeline import ingest
from sslviz.data.recovery import RETRYABLE, reap_ingests
from sslviz.store import Dataset, Store

DEMO_NAME = "demo"
SOURCE_DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo"
INSTALLED_DEMO = Path("share") / "sslviz" / "demo"  # under an install prefix


def demo_candidates() -> list[Path]:
    """Where the demo images may be: the source tree, then the install prefixes (the
    environment's, the interpreter's, the user's)."""
    prefixes = [sysconfig.get_path("data"), sys.prefix, site.getuserbase()]
    return [SOURCE_DEMO_DIR, *(Path(p) / INSTALLED_DEMO for p in dict.fromkeys(prefixes) if p)]


def demo_dir() -> Path | None:
    """The folder holding the demo dataset's images, or None if it is not installed."""
    return next((d for d in demo_candidates() if d.is_dir() and any(d.iterdir())), None)


DEMO_DIR = demo_dir() or SOURCE_DEMO_DIR


def ensure_demo(store: Store, *, workers: int | None = None) -> Dataset | None:
    """The demo dataset, ingesting it first if the workspace has no datasets at all.

    Idempotent: returns the existing "demo" dataset if there is one, None if the workspace already
    has other datasets (the user's choice to keep it out). A demo whose ingest was interrupted
    (the app was stopped while preparing it) is ingested again. An empty workspace without the
    demo's images installed gets a one-line UserError saying where they were looked for.
    """
    reap_ingests(store)
    datasets = store.datasets.list()
    for dataset in datasets:
        if dataset.name == DEMO_NAME and dataset.status not in RETRYABLE:
            return dataset
    if any(d.name != DEMO_NAME for d in datasets):
        return None
    folder = demo_dir()
    if folder is None:
        where = " or ".join(str(d) for d in demo_candidates())
        raise UserError(
            f"the demo dataset is not installed (looked in {where}): reinstall sslviz "
            "(`pip install .` from its source, which installs it) or ingest your own images"
        )
    try:
        return ingest(store, [folder], DEMO_NAME, workers=workers).dataset
    except UserError:
        # Two app sessions starting at once: the other one created it first.
        existing = [d for d in store.datasets.list() if d.name == DEMO_NAME]
        if existing:
            return existing[0]
        raise
