"""sslviz: self-supervised pretext training, embeddings and few-shot labels for unlabeled images.

The library does all the work and never imports streamlit (only ``sslviz.ui`` and the app's pages
in ``app_pages/`` do).
``import sslviz`` is cheap (no torch): the notebook calls below load what they need when called.

    import sslviz
    store = sslviz.open_workspace()
    sslviz.ingest(store, "photos/", name="photos")
    run = sslviz.pretrain(store, "photos", "rotation", time_budget=60)
    emb = sslviz.embeddings(store, "photos", run.id)       # vectors (N, D), paths
    proj = sslviz.projection(store, "photos", run.id)      # coords (N, 2), paths
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first use (PEP 562), so torch loads only when needed
_API = {
    "open_workspace": "sslviz.api",
    "ingest": "sslviz.api",
    "pretrain": "sslviz.api",
    "embeddings": "sslviz.api",
    "projection": "sslviz.api",
    "channel_features": "sslviz.api",
    "effective_rank": "sslviz.maps.quality",
    "knn_agreement": "sslviz.maps.quality",
    "UserError": "sslviz.core.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'sslviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
