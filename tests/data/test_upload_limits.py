"""Uploads are copied to the workspace in blocks, under a limit per file and per upload; past a
limit the upload is refused with the limit named and nothing is kept (issue 26)."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sslviz.core.errors import UserError
from sslviz.data import ingest_uploads
from sslviz.store import Store
from tests.data.make_files import encoded, noise


def leftovers(store: Store) -> list[str]:
    """What a refused upload could have left: staging folders, dataset folders."""
    root = store.workspace.root
    staged = [p.name for p in root.iterdir() if p.name.startswith("upload-")]
    datasets = root / "datasets"
    return staged + ([p.name for p in datasets.iterdir()] if datasets.is_dir() else [])


def test_a_file_past_the_per_file_limit_is_refused_naming_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSLVIZ_MAX_UPLOAD_FILE_MB", "1")
    big = np.random.default_rng(0).bytes(1024**2 + 10)
    small = encoded(noise(16, 16, 1), "PNG")
    with pytest.raises(
        UserError, match=r"big\.bin is larger than the upload limit of 1 MB per file"
    ):
        ingest_uploads(store, [("a.png", small), ("big.bin", big)], "trip")
    assert store.datasets.list() == [] and leftovers(store) == []


def test_an_upload_past_the_total_limit_is_refused_naming_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSLVIZ_MAX_UPLOAD_MB", "1")
    part = np.random.default_rng(1).bytes(600 * 1024)
    with pytest.raises(UserError, match="larger than its limit of 1 MB in all"):
        ingest_uploads(store, [("a.bin", part), ("b.bin", part)], "trip")
    assert store.datasets.list() == [] and leftovers(store) == []


def test_a_large_zip_upload_is_never_held_in_memory_whole(store: Store, tmp_path: Path) -> None:
    """A 12 MB zip of noise PNGs (stored, not compressed), uploaded as an open file: the ingest's
    peak Python memory stays well under the zip's size (copied in blocks, read entry by entry)."""
    archive = tmp_path / "shots.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for i in range(64):
            out.writestr(f"shot{i:02d}.png", encoded(noise(256, 256, i), "PNG", compress_level=0))
    size = archive.stat().st_size
    assert size > 10 * 1024**2
    with archive.open("rb") as upload:
        tracemalloc.start()
        try:
            report = ingest_uploads(store, [("shots.zip", upload)], "shots", workers=1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert report.accepted == 64
    assert peak < size / 2, f"peak {peak / 1024**2:.1f} MB for a {size / 1024**2:.1f} MB upload"
