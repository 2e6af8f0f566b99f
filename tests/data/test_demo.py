"""The bundled demo dataset: real colour photos, ingested once into an empty workspace."""

from __future__ import annotations

import numpy as np
import pytest

from sslviz.data import DEMO_DIR, ensure_demo, image_path, ingest, load_rgb
from sslviz.store import Store
from tests.data.make_files import encoded, noise


def test_demo_assets_are_small_varied_colour_images() -> None:
    files = sorted(DEMO_DIR.rglob("*.jpg"))
    assert 200 <= len(files) <= 600
    assert sum(f.stat().st_size for f in files) < 5 * 1024**2
    assert len({f.parent.name for f in files}) >= 6
    saturation = [np.ptp(np.asarray(load_rgb(f), float), axis=2).mean() for f in files[::25]]
    assert np.median(saturation) > 15  # colour, not grey


def test_ensure_demo_is_idempotent(store: Store) -> None:
    demo = ensure_demo(store, workers=2)
    assert demo is not None and demo.name == "demo"
    assert demo.n_images == len(list(DEMO_DIR.rglob("*.jpg"))) and demo.n_rejected == 0
    assert ensure_demo(store) == demo
    assert len(store.datasets.list()) == 1
    first = store.datasets.images(demo.id, limit=1)[0]
    assert load_rgb(image_path(store, first)).mode == "RGB"


def test_ensure_demo_leaves_a_used_workspace_alone(store: Store, tmp_path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.png").write_bytes(encoded(noise(16, 16), "PNG"))
    ingest(store, [tmp_path / "mine"], workers=1)
    assert ensure_demo(store) is None
    assert [d.name for d in store.datasets.list()] == ["mine"]


def test_an_installed_demo_is_found_and_a_missing_one_says_so(
    store: Store, tmp_path, monkeypatch
) -> None:
    """After `pip install .` (a wheel) there is no source tree: the demo's images are the wheel's
    data files under <prefix>/share/sslviz/demo; without them an empty workspace is told why."""
    from sslviz.core.errors import UserError
    from sslviz.data import demo

    monkeypatch.setattr(demo, "SOURCE_DEMO_DIR", tmp_path / "no-source-tree")
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(demo.sysconfig, "get_path", lambda name: str(prefix))
    monkeypatch.setattr(demo.sys, "prefix", str(prefix))
    monkeypatch.setattr(demo.site, "getuserbase", lambda: str(prefix))
    with pytest.raises(UserError, match="demo dataset is not installed") as error:
        demo.ensure_demo(store)
    assert "\n" not in str(error.value) and store.datasets.list() == []
    installed = prefix / "share" / "sslviz" / "demo" / "red"
    installed.mkdir(parents=True)
    (installed / "a.png").write_bytes(encoded(noise(16, 16), "PNG"))
    assert demo.demo_dir() == installed.parent
    assert demo.ensure_demo(store, workers=1).n_images == 1
