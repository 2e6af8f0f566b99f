"""UMAP maps: one shared fit on the tiny set (numba compiles once), its cache, 3-D, bad input,
and ``sslviz project``'s CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import labels_of

from sslviz.cli import main
from sslviz.core.errors import UserError
from sslviz.maps.project import Projection, cached_projection, fit_umap, project
from sslviz.maps.quality import knn_agreement
from sslviz.store import Store


@pytest.fixture(scope="module")
def shared_store(shared_home: Path) -> Iterator[Store]:
    store = Store.open(shared_home)
    yield store
    store.close()


@pytest.fixture(scope="module")
def pixel_map(shared_store: Store) -> Projection:
    return project(shared_store, "tiny", "pixels")


def test_map_of_every_image_in_path_order(shared_store: Store, pixel_map: Projection) -> None:
    images = shared_store.datasets.images(shared_store.datasets.get_by_name("tiny").id)
    assert pixel_map.coords.shape == (len(images), 2) and pixel_map.coords.dtype == np.float32
    assert np.isfinite(pixel_map.coords).all()
    assert pixel_map.paths == [i.path for i in images]
    assert pixel_map.image_ids.tolist() == [i.id for i in images]
    # two visibly different classes stay apart in the map
    assert knn_agreement(pixel_map.coords, labels_of(pixel_map.paths), k=5) >= 0.9
    assert pixel_map.params["init"] == "pca" and pixel_map.params["seed"] == 0


def test_a_map_is_cached(shared_store: Store, pixel_map: Projection) -> None:
    stamp = pixel_map.file.stat().st_mtime_ns
    again = cached_projection(shared_store, "tiny", "pixels")
    assert again is not None and again.file == pixel_map.file
    np.testing.assert_array_equal(again.coords, pixel_map.coords)
    assert project(shared_store, "tiny", "pixels").file.stat().st_mtime_ns == stamp
    assert cached_projection(shared_store, "tiny", "pixels", neighbors=7) is None


def test_three_dimensions_and_tiny_inputs(shared_store: Store, pixel_map: Projection) -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 8)).astype(np.float32)
    coords = fit_umap(points, dims=3, neighbors=5)
    assert coords.shape == (30, 3) and np.isfinite(coords).all()
    # duplicate-heavy input (most rows identical) still gets finite coordinates
    dupes = np.repeat(points[:3], 10, axis=0)
    assert np.isfinite(fit_umap(dupes, neighbors=5)).all()
    for n in (1, 2, 4):  # too few for a neighbour graph
        assert fit_umap(points[:n]).shape == (n, 2)


def test_bad_map_parameters_are_user_errors(shared_store: Store, pixel_map: Projection) -> None:
    for options, expected in [
        ({"dims": 4}, "2 or 3"),
        ({"metric": "hamming-ish"}, "unknown metric"),
        ({"neighbors": 1}, "use 2 to 200"),
        ({"min_dist": 2.0}, "use 0 to 1"),
    ]:
        with pytest.raises(UserError, match=expected):
            project(shared_store, "tiny", "pixels", **options)


def test_cli_project_writes_path_x_y(
    shared_home: Path,
    pixel_map: Projection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SSLVIZ_HOME", str(shared_home))
    out = tmp_path / "map.csv"
    assert main(["project", "pixels", "--dataset", "tiny", "--out", str(out), "--json"]) == 0
    facts = __import__("json").loads(capsys.readouterr().out)
    assert facts["images"] == len(pixel_map.paths) and facts["out"] == str(out)
    with open(out) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "x", "y"]
    assert [r[0] for r in rows[1:]] == pixel_map.paths
    np.testing.assert_allclose(
        np.array(rows[1:])[:, 1:].astype(np.float32), pixel_map.coords, rtol=1e-5
    )
    assert main(["project", "pixels", "--dataset", "tiny", "--out", str(tmp_path / "m.txt")]) == 1
    assert "FILE.csv" in capsys.readouterr().err
