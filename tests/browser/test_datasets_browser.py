"""In Chromium: upload a folder on the Datasets page and see the dataset, its gallery and the
rejected file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import png_bytes, wait_idle

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
