"""In Chromium: start a labeling session, label images from the gallery, import more from a CSV,
see predictions for the rest with an estimate, download the predictions CSV, reload and find the
labels still there."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from conftest import wait_idle
from playwright.sync_api import expect

from sslviz.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def settle(page) -> None:
    """Like ``wait_idle``, with room for the first visit's work on a busy machine (embedding
    and UMAP of the demo set, then cross-validation)."""
    wait_idle(page, timeout_ms=600_000)


def choose(page, box, option: str) -> None:
    """Pick ``option`` in a selectbox the way a keyboard user does (focus, open, type, Enter)."""
    box.click()
    page.keyboard.press("ArrowDown")
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).wait_for()
    page.keyboard.press("Enter")
    settle(page)


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def labels_in_store(home: Path) -> dict[str, str]:
    store = Store.open(home)
    try:
        (session,) = store.sessions.list()
        return {label.path: label.label for label in store.sessions.labels(session.id)}
    finally:
        store.close()


def test_label_predict_download_reload(app_url: str, page, tmp_path: Path) -> None:
    home = tmp_path / "home"
    page.goto(app_url + "/labeling")
    page.get_by_text("Start a labeling session").first.wait_for()
    wait_idle(page)
    page.get_by_label("Name", exact=True).fill("browser pass")
    choose(
        page,
        page.get_by_test_id("stSelectbox").filter(has_text="Predict from"),
        "pixels — downscaled raw pixels",
    )
    page.get_by_role("button", name="Start labeling").click()
    page.get_by_text("Active label").first.wait_for()
    settle(page)

    # Two labels from the gallery, one selector under each thumbnail (saved at once).
    page.get_by_label("New label name").fill("astronaut")
    page.get_by_role("button", name="Add").click()
    active = page.get_by_role("combobox", name="Active label")
    expect(active).to_have_value("astronaut", timeout=120_000)
    settle(page)
    for n in (1, 2):
        # the queue's selectors, then the gallery's: the gallery's first unlabeled image
        gallery = page.locator('[data-testid="stSelectbox"]:has(input[aria-label="label"]):visible')
        choose(page, gallery.nth(gallery.count() - 24 + n - 1), "astronaut")
        wait_for(lambda n=n: len(labels_in_store(home)) == n)
        settle(page)
    assert list(labels_in_store(home).values()) == ["astronaut", "astronaut"]

    # More labels from a CSV: 4 images of each folder.
    store = Store.open(home)
    paths = sorted(i.path for i in store.datasets.images(1))
    store.close()
    rows = {}
    for path in paths:
        folder = path.split("/")[0]
        if sum(1 for p in rows if p.startswith(folder + "/")) < 4:
            rows[path] = folder
    text = "path,label\n" + "".join(f"{p},{v}\n" for p, v in rows.items())
    page.get_by_text("Label names and import").click()
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": "labels.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    wait_for(lambda: len(labels_in_store(home)) >= len(rows))  # the whole import landed
    settle(page)
    given = labels_in_store(home)
    assert len(given) >= len(rows) and set(given.values()) == set(rows.values())

    # Predictions for the rest, with an estimate.
    page.get_by_role("tab", name="Predictions").click()
    page.get_by_text("Estimated accuracy").first.wait_for(timeout=180_000)
    settle(page)
    assert page.get_by_text("were predicted right when held out").count() >= 1
    with page.expect_download() as download:
        page.get_by_role("button", name="Predictions CSV").click()
    saved = tmp_path / "predictions.csv"
    download.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(table) == len(paths) and list(table[0]) == [
        "path",
        "label",
        "confidence",
        "labeled",
        "covered",
    ]
    assert sum(r["labeled"] == "true" for r in table) == len(given)
    page.screenshot(path=str(tmp_path / "predictions.png"), full_page=True)

    # A reload shows the same session and labels (from the store, via ?session=ID).
    page.reload()
    page.get_by_text(f"{len(given)} labeled").first.wait_for(timeout=180_000)
    assert "session=1" in page.url
    assert labels_in_store(home) == given
