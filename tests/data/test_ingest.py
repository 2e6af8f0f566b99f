"""Ingest of a folder with good and broken files of every kind, into a real workspace."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image as PILImage

from sslviz.core.errors import UserError
from sslviz.data import (
    THUMB_SIZE,
    delete_dataset,
    image_path,
    ingest,
    ingest_server_folder,
    load_rgb,
    thumbnail_path,
)
from sslviz.store import Store
from tests.data.make_files import encoded, good_files, make_folder, noise


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("src") / "photos"
    expected_bad = make_folder(root)
    (root / "plain_copy.jpg").write_bytes((root / "plain.jpg").read_bytes())
    return root, expected_bad


def test_accepts_exactly_the_good_files_and_names_every_bad_one(store: Store, folder) -> None:
    root, expected_bad = folder
    seen: list[tuple[int, int]] = []
    report = ingest(
        store, [root], workers=2, progress=lambda done, total: seen.append((done, total))
    )

    assert report.dataset.name == "photos" and report.dataset.status == "ready"
    paths = {image.path for image in store.datasets.images(report.dataset.id)}
    assert paths == set(good_files())  # the copy is the duplicate, kept out
    assert report.accepted == len(good_files()) == report.dataset.n_images
    reasons = {r.path: r.reason for r in report.rejected}
    assert set(reasons) == set(expected_bad)
    for path, word in expected_bad.items():
        assert word in reasons[path], (path, reasons[path])
    assert report.duplicates == 1
    assert [(d.path, d.duplicate_of) for d in report.duplicate_files] == [
        ("plain_copy.jpg", "plain.jpg")  # the first listed is kept, whatever the scheduling
    ]
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_rows_and_files_describe_the_original(store: Store, folder) -> None:
    root, _ = folder
    report = ingest(store, [root], workers=1)
    images = {i.path: i for i in store.datasets.images(report.dataset.id)}
    for path, image in images.items():
        data = (root / path).read_bytes()
        stored = image_path(store, image)
        assert image.sha256 == hashlib.sha256(data).hexdigest() and image.bytes == len(data)
        assert stored.read_bytes() == data and stored.name.startswith(image.sha256)
        rgb = load_rgb(stored)
        assert rgb.size == (image.width, image.height)
        with PILImage.open(thumbnail_path(store, image)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= THUMB_SIZE
    assert (images["rotated.jpg"].width, images["rotated.jpg"].height) == (20, 40)
    assert images["cmyk.jpg"].mode == "CMYK" and images["grey16.png"].mode == "I;16"
    assert images["wrong_extension.png"].format == "JPEG"
    assert images["wrong_extension.png"].file.endswith(".jpg")  # named by content, not by name
    assert report.dataset.bytes == sum(i.bytes for i in images.values())


def test_parallel_and_serial_give_the_same_dataset(store: Store, folder) -> None:
    root, _ = folder
    one = ingest(store, [root], "serial", workers=1)
    two = ingest(store, [root], "parallel", workers=2)
    rows = [
        [(i.path, i.sha256, i.width, i.height, i.mode) for i in store.datasets.images(r.dataset.id)]
        for r in (one, two)
    ]
    assert rows[0] == rows[1]
    assert one.to_json()["rejected"] == two.to_json()["rejected"]


def test_links_inside_the_folder_are_read_links_outside_are_not(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "linked"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.png").write_bytes(encoded(noise(16, 16, 1), "PNG"))
    (root / "b.png").symlink_to(root / "real" / "a.png")
    (root / "dangling.png").symlink_to(root / "missing.png")
    (tmp_path / "elsewhere").mkdir()
    (root / "folder_out").symlink_to(tmp_path / "elsewhere")
    report = ingest(store, [root], workers=1)
    reasons = {r.path: r.reason for r in report.rejected}
    assert reasons == {
        "dangling.png": "broken link",
        "folder_out/": "link points outside the folder",
    }
    assert report.accepted == 1 and report.duplicates == 1


def test_odd_file_names_are_kept_as_text(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    png = encoded(noise(16, 16, 1), "PNG")
    (root / "space and ünïcode.png").write_bytes(png)
    with open(os.path.join(os.fsencode(root), b"caf\xe9.png"), "wb") as handle:  # not UTF-8
        handle.write(encoded(noise(16, 16, 2), "PNG"))
    fifo = root / "pipe.png"
    os.mkfifo(fifo)
    report = ingest(store, [root], workers=1)
    paths = {i.path for i in store.datasets.images(report.dataset.id)}
    assert paths == {"space and ünïcode.png", "caf\ufffd.png"}
    assert [(r.path, r.reason) for r in report.rejected] == [("pipe.png", "not a regular file")]


def test_nothing_usable_is_an_error_that_leaves_nothing_behind(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "junk"
    root.mkdir()
    (root / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=r"no usable images .*notes.txt \(not an image\)"):
        ingest(store, [root])
    assert store.datasets.list() == []
    assert not (store.workspace.root / "datasets").exists() or not any(
        (store.workspace.root / "datasets").iterdir()
    )


def test_names_sources_and_their_errors(store: Store, folder, tmp_path: Path) -> None:
    root, _ = folder
    ingest(store, [root / "plain.jpg", root / "sub" / "deeper" / "nested.png"], workers=1)
    assert [d.name for d in store.datasets.list()] == ["photos"]  # a loose file's parent folder
    with pytest.raises(UserError, match="already exists"):
        ingest(store, [root], workers=1)
    with pytest.raises(UserError, match="no such file or folder"):
        ingest(store, [tmp_path / "missing"], "x")
    both = ingest(store, [root / "sub", root / "plain.jpg"], "both", workers=1)
    assert {i.path for i in store.datasets.images(both.dataset.id)} == {
        "sub/deeper/nested.png",
        "plain.jpg",
    }


def test_server_folders_only_under_configured_roots(store: Store, folder, tmp_path: Path) -> None:
    root, _ = folder
    with pytest.raises(UserError, match="SSLVIZ_SERVER_ROOTS"):
        ingest_server_folder(store, root, roots=[])
    with pytest.raises(UserError, match="not under the allowed server folders"):
        ingest_server_folder(store, root, roots=[tmp_path / "elsewhere"])
    with pytest.raises(UserError, match="not under"):
        ingest_server_folder(store, root.parent / "photos" / ".." / "..", roots=[root.parent])
    report = ingest_server_folder(store, root, "served", roots=[root.parent])
    assert report.accepted == len(good_files())


def test_delete_removes_rows_files_and_run_folders(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "few"
    root.mkdir()
    (root / "a.png").write_bytes(encoded(noise(16, 16, 1), "PNG"))
    dataset = ingest(store, [root], workers=1).dataset
    run = store.runs.create(
        dataset_id=dataset.id, kind="rotation", model_name="x", config={}, device="cpu", epochs=1
    )
    store.runs.transition(run.id, "finished", allowed_from=("queued",))
    store.workspace.run_dir(run.id).mkdir(parents=True)
    (store.workspace.run_dir(run.id) / "checkpoint.pt").write_bytes(b"x")
    delete_dataset(store, dataset.id)
    assert store.datasets.list() == [] and store.runs.list() == []
    assert not store.workspace.dataset_dir(dataset.id).exists()
    assert not store.workspace.run_dir(run.id).exists()


def test_loose_files_with_the_same_name_both_stay(store: Store, tmp_path: Path) -> None:
    for folder, seed in (("x", 1), ("y", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.png").write_bytes(encoded(noise(16, 16, seed), "PNG"))
    report = ingest(store, [tmp_path / "x" / "a.png", tmp_path / "y" / "a.png"], "loose")
    assert [i.path for i in store.datasets.images(report.dataset.id)] == ["a.png", "a~2.png"]
