"""The Explorer's quality figures follow the map they describe: the "10-NN in the map" figure of
one embedding changes when the UMAP settings (hence the map) change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sslviz.maps.embed import Embeddings
from sslviz.ui import explorer_panels
from sslviz.ui.explorer_view import LoadedMap, MapSpec
from sslviz.ui.map import MapPoints


class Column:
    """Stands in for a Streamlit column: records the metrics written to it."""

    def __init__(self, shown: dict[str, str]) -> None:
        self.shown = shown

    def metric(self, label: str, value: str, **_: Any) -> None:
        self.shown[label] = value


def shown_figures(monkeypatch: pytest.MonkeyPatch, loaded: LoadedMap, labels: np.ndarray) -> dict:
    shown: dict[str, str] = {}
    monkeypatch.setattr(explorer_panels.st, "columns", lambda n: [Column(shown) for _ in range(n)])
    explorer_panels.quality_figures(loaded, labels, "folder")
    return shown


def test_knn_in_the_map_follows_the_umap_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    n = 200
    labels = np.repeat(np.array(["a", "b"], dtype=object), n // 2)
    vectors = (rng.normal(size=(n, 8)) + 4 * (labels == "a")[:, None]).astype(np.float32)
    embeddings = Embeddings(
        vectors=vectors,
        image_ids=np.arange(n),
        paths=[f"{x}/{i}.png" for i, x in enumerate(labels)],
        source="random",
        layer="block2",
        grid=1,
        dim=8,
        file=tmp_path / "emb.npy",
    )
    separated = rng.normal(size=(n, 2)) + 10 * (labels == "a")[:, None]  # a map that keeps classes
    mixed = rng.normal(size=(n, 2))  # the same embedding, a map that lost them
    first = LoadedMap(
        MapSpec("random", neighbors=15),
        MapPoints.from_arrays(separated, embeddings.image_ids, embeddings.paths),
        embeddings,
    )
    second = LoadedMap(
        MapSpec("random", neighbors=50),
        MapPoints.from_arrays(mixed, embeddings.image_ids, embeddings.paths),
        embeddings,
    )
    label = f"{explorer_panels.KNN_K}-NN in the map"
    before = shown_figures(monkeypatch, first, labels)
    after = shown_figures(monkeypatch, second, labels)
    assert float(before[label]) > 0.95 and float(after[label]) < 0.8, (before, after)
    assert (
        before[f"{explorer_panels.KNN_K}-NN agreement"]
        == after[f"{explorer_panels.KNN_K}-NN agreement"]
    )
