"""Zips and browser uploads: names are untrusted labels, never paths to write to."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from sslviz.core.errors import UserError
from sslviz.data import ingest, ingest_uploads
from sslviz.data.sources import safe_relative
from sslviz.store import Store
from tests.data.make_files import encoded, noise


def png(seed: int) -> bytes:
    return encoded(noise(16, 16, seed), "PNG")


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def evil_zip(path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as nested:
        nested.writestr("inner.png", png(9))
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("good/a.png", png(1))
        archive.writestr("good/b.png", png(2))
        archive.writestr("good/a_again.png", png(1))
        archive.writestr("../evil.png", png(3))
        archive.writestr("../../tmp/evil2.png", png(4))
        archive.writestr("/abs.png", png(5))
        archive.writestr("C:\\windows\\evil3.png", png(6))
        archive.writestr("ok\\backslash.png", png(7))
        archive.writestr(link, "/etc/passwd")
        archive.writestr("nested.zip", inner.getvalue())
        archive.writestr("bomb.png", b"\x00" * (4 * 1024**2))  # ~4 kB packed: ratio over 1000:1
        archive.writestr("__MACOSX/good/._a.png", b"\x00\x05\x16\x07")
        archive.writestr("empty.png", b"")
        archive.writestr("good/b.png", png(8))  # the same name again, other content


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_zip_with_escaping_entries_writes_nothing_outside(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "upload" / "evil.zip"
    archive.parent.mkdir()
    evil_zip(archive)
    before = all_files(tmp_path) - all_files(store.workspace.root)
    report = ingest(store, [archive], workers=2)

    assert all_files(tmp_path) - all_files(store.workspace.root) == before
    assert not Path("/abs.png").exists() and not Path("/tmp/evil2.png").exists()
    assert report.dataset.name == "evil"
    paths = {i.path for i in store.datasets.images(report.dataset.id)}
    assert paths == {"good/a.png", "good/b.png", "good/b~2.png", "ok/backslash.png"}
    reasons = {r.path: r.reason for r in report.rejected}
    for name in ("../evil.png", "../../tmp/evil2.png", "/abs.png", "C:\\windows\\evil3.png"):
        assert "unsafe path" in reasons[name]
    assert "link" in reasons["link.png"]
    assert "archive" in reasons["nested.zip"]
    assert "zip bomb" in reasons["bomb.png"]
    assert reasons["__MACOSX/"] == "hidden folder (skipped)"
    assert "empty" in reasons["empty.png"]
    assert len(reasons) == 9 and report.duplicates == 1
    for stored in all_files(store.workspace.dataset_dir(report.dataset.id)):
        assert stored.resolve().is_relative_to(store.workspace.root)


def test_uploads_are_labels_not_paths(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inside/c.png", png(3))
    uploads = [
        ("photos/a.png", png(1)),
        ("photos\\sub\\b.png", io.BytesIO(png(2))),
        ("photos/more.zip", archive.read_bytes()),
        ("../../evil.png", png(4)),
        ("/etc/abs.png", png(5)),
        ("C:/evil.png", png(6)),
    ]
    report = ingest_uploads(store, uploads, "uploaded", workers=1)
    paths = {i.path for i in store.datasets.images(report.dataset.id)}
    assert paths == {"a.png", "sub/b.png", "more/inside/c.png"}  # the common top folder dropped
    assert sorted(r.path for r in report.rejected) == [
        "../../evil.png",
        "/etc/abs.png",
        "C:/evil.png",
    ]
    assert not any(p.name.startswith("upload-") for p in store.workspace.root.iterdir())


def test_a_folder_upload_drops_its_top_folder(store: Store) -> None:
    report = ingest_uploads(store, [("trip/a.png", png(1)), ("trip/day2/b.png", png(2))], "trip")
    assert {i.path for i in store.datasets.images(report.dataset.id)} == {"a.png", "day2/b.png"}


def test_an_upload_with_nothing_usable_leaves_nothing(store: Store) -> None:
    with pytest.raises(UserError, match="no usable images"):
        ingest_uploads(store, [("notes.txt", b"hello")], "junk")
    assert store.datasets.list() == []
    assert sorted(p.name for p in store.workspace.root.iterdir() if p.is_dir()) in (
        [],
        ["datasets"],
    )


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("a/b.png", "a/b.png"),
        ("./a//b.png", "a/b.png"),
        ("a\\b.png", "a/b.png"),
        ("../a.png", None),
        ("a/../../b.png", None),
        ("/a.png", None),
        ("\\\\server\\share\\a.png", None),
        ("C:a.png", None),
        ("a\x00.png", None),
        ("", None),
    ],
)
def test_safe_relative(name: str, safe: str | None) -> None:
    assert safe_relative(name) == safe
