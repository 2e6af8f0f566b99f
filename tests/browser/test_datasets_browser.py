"""In Chromium: upload a folder on the Datasets page and see the dataset, its gallery and the
rejected file; a server-folder ingest goes on (a job) when the person leaves the page or closes
the browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import png_bytes, wait_idle
from waiting import wait_for

from sslviz.store import Store

pytestmark = pytest.mark.browser


def test_upload_a_folder(app_url: str, page, tmp_path: Path) -> None:
    folder = tmp_path / "upload" / "garden"
    (folder / "more").mkdir(parents=True)
    for i in range(4):
        (folder / f"flower{i}.png").write_bytes(png_bytes(i))
    (folder / "more" / "leaf.png").write_bytes(png_bytes(10))
    (folder / "more" / "copy-of-flower0.png").write_bytes(png_bytes(0))
    (folder / "notes.txt").write_text("not an image")

    page.goto(app_url + "/datasets")
    page.get_by_text(
        "Train an encoder on it"
    ).first.wait_for()  # the demo greets an empty workspace
    wait_idle(page)
    page.locator("input[type=file]").set_input_files(folder)
    ingest = page.get_by_role("button", name="Ingest 7 file(s)")
    ingest.wait_for()
    wait_idle(page)
    ingest.click()

    page.get_by_text("Dataset garden: 5 images accepted, 1 rejected, 1 duplicates").first.wait_for()
    wait_idle(page)
    # The gallery of the new dataset, paths as captions (relative to the uploaded folder).
    for caption in ("flower0.png", "flower3.png", "more/leaf.png"):
        assert page.get_by_text(caption, exact=True).count() >= 1
    page.get_by_role("tab", name="Rejected files (1)").click()
    rejected = page.get_by_role("tabpanel").filter(has_text="notes.txt")
    rejected.wait_for()
    page.screenshot(path=str(tmp_path / "datasets.png"))

    dataset = Store.open(tmp_path / "home").datasets.get_by_name("garden")
    assert (dataset.n_images, dataset.n_rejected, dataset.n_duplicates) == (5, 1, 1)


# --- an ingest is a job: leaving the page or closing the browser loses nothing ------------------
SERVED = "served"


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / SERVED).mkdir()
    return {"SSLVIZ_SERVER_ROOTS": str(tmp_path / SERVED)}


def _photos(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"p{i:04d}.png").write_bytes(png_bytes(i, size=24))
    return root


def _wait_ready(home: Path, name: str, timeout: float = 240.0):
    def settled():
        store = Store.open(home)
        try:
            found = [d for d in store.datasets.list() if d.name == name]
            return found[0] if found and found[0].status != "ingesting" else None
        finally:
            store.close()

    return wait_for(settled, timeout, 0.5, f"{name} still ingesting after {timeout} s")


def _start_server_ingest(page, app_url: str, folder: Path) -> None:
    page.goto(app_url + "/datasets")
    page.get_by_text("Train an encoder on it").first.wait_for()
    wait_idle(page)
    page.get_by_text("Server folder", exact=True).click()
    wait_idle(page)
    page.get_by_label("Folder (or .zip) on the server").fill(str(folder))
    page.get_by_label("Folder (or .zip) on the server").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Ingest folder").click()
    # Submitted: the page follows the job (queued, starting or under way).
    page.get_by_text("Ingest job #1").first.wait_for()


def test_a_server_folder_ingest_goes_on_while_the_person_is_on_another_page(
    app_url: str, page, tmp_path: Path
) -> None:
    folder = _photos(tmp_path / SERVED / "garden", 400)
    _start_server_ingest(page, app_url, folder)
    page.get_by_role("link", name="Runs").click()  # away, while it runs
    # The Runs page lists the job with its kind (a cell of its table: drawn on a canvas, so
    # attached rather than visible).
    page.get_by_text("ingest", exact=True).first.wait_for(state="attached")
    dataset = _wait_ready(tmp_path / "home", "garden")
    assert (dataset.status, dataset.n_images) == ("ready", 400)
    page.goto(app_url + "/datasets")
    page.get_by_text("garden").first.wait_for(state="attached")  # a cell of its table, too


def test_closing_the_browser_during_an_ingest_loses_nothing(
    app_url: str, page, tmp_path: Path
) -> None:
    folder = _photos(tmp_path / SERVED / "shed", 300)
    _start_server_ingest(page, app_url, folder)
    page.context.browser.close()
    dataset = _wait_ready(tmp_path / "home", "shed")
    assert (dataset.status, dataset.n_images) == ("ready", 300)
