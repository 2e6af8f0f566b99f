"""``import sslviz``: the notebook calls are there, cost nothing until used (no torch, no
streamlit), and importing the submodules they live beside never shadows them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

PROBE = """
import sys, sslviz
heavy = [m for m in ("torch", "streamlit", "umap", "sklearn") if m in sys.modules]
names = ["open_workspace", "ingest", "pretrain", "embeddings", "projection", "effective_rank"]
import sslviz.maps.embed, sslviz.maps.project, sslviz.training.train  # submodules named like the things they do
print(heavy, all(callable(getattr(sslviz, n)) for n in names))
"""


def test_import_is_light_and_names_are_not_shadowed() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True", out.stdout + out.stderr


def test_notebook_flow(home: Path, run_id: int) -> None:
    import sslviz

    store = sslviz.open_workspace(home)
    try:
        emb = sslviz.embeddings(store, "tiny", run_id)
        assert emb.vectors.shape == (len(emb.paths), emb.dim)
        assert (emb.layer, emb.grid) == ("block3", 1)  # the measured default for a trained run
        baseline = sslviz.embeddings(store, "tiny", "random")
        assert (baseline.layer, baseline.grid) == ("block2", 2)  # the untrained network's best
        assert np.isfinite(sslviz.effective_rank(emb.vectors))
    finally:
        store.close()
