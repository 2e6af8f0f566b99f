"""The PCA map drawn while UMAP is fitted: numpy alone, the first principal axes (as
scikit-learn finds them, up to sign), the same picture every time, and the map of the same
embedding a UMAP map would use (without fitting or storing one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import labels_of
from sklearn.decomposition import PCA

from sslviz.maps.project import cached_projection, pca_coords, preview_projection
from sslviz.maps.quality import knn_agreement
from sslviz.store import Store


def test_pca_coords_are_the_principal_axes_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 12)) * np.linspace(5, 0.1, 12)).astype(np.float32)  # (500, 12)
    ours = pca_coords(x)
    assert ours.shape == (500, 2) and ours.dtype == np.float32
    theirs = PCA(2).fit_transform(x)
    for k in range(2):  # equal up to the sign of each axis
        assert abs(np.corrcoef(ours[:, k], theirs[:, k])[0, 1]) > 0.999
    assert np.array_equal(ours, pca_coords(x.copy()))
    assert np.array_equal(pca_coords(x[:1]), np.zeros((1, 2), np.float32))


def test_preview_is_the_embeddings_map_and_stores_no_umap_map(home: Path) -> None:
    store = Store.open(home)
    preview = preview_projection(store, "tiny", "pixels")
    assert preview.params["method"] == "pca" and preview.file is None
    assert preview.coords.shape == (len(preview.paths), 2)
    assert np.isfinite(preview.coords).all()
    # the two visibly different classes already fall apart on the first two axes
    assert knn_agreement(preview.coords, labels_of(preview.paths), k=5) > 0.9
    assert cached_projection(store, "tiny", "pixels") is None  # UMAP is not fitted by this
    store.close()
