"""AppTest of the Datasets page: greeting, upload through the file uploader, report, gallery,
rejected files, delete. An ingest is a job: the page submits it, a real worker process ingests,
and the page (rerun until then) shows its result from the store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import png_bytes
from streamlit.testing.v1 import AppTest
from waiting import wait_for

from sslviz.store import Store


def texts(at: AppTest) -> str:
    """All the markdown-ish text on the page, to search in."""
    parts = [
        e.value
        for kind in ("markdown", "success", "warning", "info", "error", "caption")
        for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def frame(at: AppTest, column: str, value: str | None = None) -> pd.DataFrame:
    """The first table on the page with ``column`` (holding ``value``, if given)."""
    for element in at.dataframe:
        df = element.value
        if column in df.columns and (value is None or value in set(df[column])):
            return df
    raise AssertionError(
        f"no table with a {column!r} column" + (f" holding {value!r}" if value else "")
    )


def until_ingested(app: AppTest, name: str, timeout: float = 180.0) -> None:
    """Rerun the page until dataset ``name``'s ingest job has ended (its worker is a real
    process: it imports torch first)."""

    def ingested() -> bool:
        app.run()
        assert not app.exception, app.exception
        return Store.open().datasets.get_by_name(name).status != "ingesting"

    wait_for(ingested, timeout, 0.5, f"{name} still ingesting after {timeout} s")
    app.run()  # the page as it is drawn after the end


def test_empty_workspace_is_greeted_with_the_demo_and_a_next_step(app: AppTest) -> None:
    store = Store.open()
    demo = store.datasets.get_by_name("demo")
    assert demo.n_images > 0
    assert f"**demo** is ready: {demo.n_images:,} images" in texts(app)
    link = next(e for e in app.get("page_link") if "Train an encoder on it" in e.proto.label)
    assert (link.proto.page, link.proto.query_string) == ("train", "dataset=demo")
    assert app.selectbox(key="ds_pick").value == "demo"


def test_upload_a_folder_shows_counts_gallery_and_rejected_file(app: AppTest) -> None:
    good = [(f"holiday/img{i:02d}.png", png_bytes(i), "image/png") for i in range(5)]
    duplicate = ("holiday/sub/copy.png", png_bytes(0), "image/png")
    broken = ("holiday/broken.png", png_bytes(9)[:60], "image/png")  # truncated PNG
    app.file_uploader(key="ds_upload_folder_0").set_value([*good, duplicate, broken])
    app.run()
    # The name defaults to the uploaded folder's name.
    assert "default: holiday" in app.text_input(key="ds_name").proto.placeholder
    app.button(key="ds_ingest").click()
    app.run()
    assert not app.exception
    until_ingested(app, "holiday")

    report = texts(app)
    assert "Dataset **holiday**: 5 images accepted, 1 rejected, 1 duplicates" in report
    store = Store.open()
    dataset = store.datasets.get_by_name("holiday")
    assert (dataset.n_images, dataset.n_rejected, dataset.n_duplicates) == (5, 1, 1)

    # The new dataset is selected: its table row, gallery and rejected file are shown.
    assert app.selectbox(key="ds_pick").value == "holiday"
    table = frame(app, "size on disk")
    row = table[table["name"] == "holiday"].iloc[0]
    assert (row["images"], row["rejected"], row["duplicates"]) == (5, 1, 1)
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    assert sorted(captions) == [f"img{i:02d}.png" for i in range(5)]
    rejected = frame(app, "reason", None)
    assert list(rejected["path"]) == ["broken.png"]
    assert rejected["reason"].iloc[0]  # a reason is given
    duplicates = frame(app, "same content as")
    assert list(duplicates["path"]) == ["sub/copy.png"]
    # The uploader was emptied (a fresh key), so a second click can't ingest twice.
    assert app.file_uploader(key="ds_upload_folder_1").value == []


def test_upload_files_needs_a_name_and_refuses_a_taken_one(app: AppTest) -> None:
    app.radio(key="ds_source").set_value("Files").run()
    app.file_uploader(key="ds_upload_files_0").set_value(
        [("a.png", png_bytes(1), "image/png"), ("b.png", png_bytes(2), "image/png")]
    )
    app.run()
    assert app.button(key="ds_ingest").disabled  # loose files have no folder name
    app.text_input(key="ds_name").input("demo").run()
    assert app.button(key="ds_ingest").disabled
    assert "exists already" in texts(app)
    app.text_input(key="ds_name").input("pair").run()
    app.button(key="ds_ingest").click().run()
    assert not app.exception
    until_ingested(app, "pair")
    assert Store.open().datasets.get_by_name("pair").n_images == 2


def test_server_folder_is_off_without_roots(app: AppTest) -> None:
    app.radio(key="ds_source").set_value("Server folder").run()
    assert not app.exception
    assert "SSLVIZ_SERVER_ROOTS" in texts(app)


def test_delete_asks_first(app: AppTest) -> None:
    app.button(key="ds_delete").click().run()
    assert "Delete **demo**" in texts(app)
    app.button(key="ds_delete_no").click().run()
    assert Store.open().datasets.list()
    app.button(key="ds_delete").click().run()
    app.button(key="ds_delete_yes").click().run()
    assert not app.exception
    assert Store.open().datasets.list() == []
    assert "No datasets yet" in texts(app)


# --- interrupted ingests -----------------------------------------------------------------------
def _finished_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _interrupted(name: str, source: str) -> int:
    """A dataset whose ingest process died (as after SIGKILL, or an app restart: the server that
    ingested it is gone); found by the page itself."""
    store = Store.open()
    return store.datasets.create(name, source, pid=_finished_pid()).id


def test_an_interrupted_upload_says_to_upload_again_and_can_be_deleted(app: AppTest) -> None:
    _interrupted("holiday", "upload")
    app.run()
    assert not app.exception
    table = frame(app, "status", "interrupted")
    assert table.set_index("name").loc["holiday", "status"] == "interrupted"
    app.selectbox(key="ds_pick").set_value("holiday").run()
    page = texts(app)
    assert "**holiday** was not ingested completely" in page and "ended before finishing" in page
    assert "browser upload: upload the files again" in page
    assert not [b for b in app.button if b.key == "ds_retry"]  # nothing on disk to re-read
    assert not app.get("tab")  # no gallery of a half dataset

    # Uploading again under its name replaces it.
    app.file_uploader(key="ds_upload_folder_0").set_value(
        [(f"holiday/img{i}.png", png_bytes(i), "image/png") for i in range(3)]
    ).run()
    assert "replaces the interrupted dataset **holiday**" in texts(app)
    assert not app.button(key="ds_ingest").disabled
    app.button(key="ds_ingest").click().run()
    assert not app.exception
    until_ingested(app, "holiday")
    store = Store.open()
    dataset = store.datasets.get_by_name("holiday")
    assert (dataset.status, dataset.n_images) == ("ready", 3), dataset.error

    # Delete works on an interrupted dataset too.
    other = _interrupted("other", "upload")
    app.run()
    app.selectbox(key="ds_pick").set_value("other").run()
    app.button(key="ds_delete").click().run()
    app.button(key="ds_delete_yes").click().run()
    assert not app.exception
    assert other not in [d.id for d in store.datasets.list()]


def test_an_interrupted_server_folder_is_retried_from_the_page(
    app: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "served" / "birds"
    folder.mkdir(parents=True)
    for i in range(4):
        (folder / f"{i}.png").write_bytes(png_bytes(i))
    _interrupted("birds", str(folder))
    app.run()
    app.selectbox(key="ds_pick").set_value("birds").run()
    assert "sslviz reingest birds" in texts(app)  # the app may not read server folders
    monkeypatch.setenv("SSLVIZ_SERVER_ROOTS", str(tmp_path / "served"))
    app.run()
    app.button(key="ds_retry").click().run()
    assert not app.exception
    until_ingested(app, "birds")
    dataset = Store.open().datasets.get_by_name("birds")
    assert (dataset.status, dataset.n_images) == ("ready", 4), dataset.error
    assert "Dataset **birds**: 4 images accepted" in texts(app)
    assert app.selectbox(key="ds_pick").value == "birds"


def test_after_an_ingest_the_name_field_is_empty_again(app: AppTest) -> None:
    files = [(f"mini/img{i:02d}.png", png_bytes(20 + i), "image/png") for i in range(3)]
    app.file_uploader(key="ds_upload_folder_0").set_value(files)
    app.run()
    app.text_input(key="ds_name").input("minizip").run()
    app.button(key="ds_ingest").click().run()
    assert not app.exception
    until_ingested(app, "minizip")
    assert "Dataset **minizip**" in texts(app)
    assert app.text_input(key="ds_name").value == ""  # ready for the next one
    assert "exists already" not in texts(app)
