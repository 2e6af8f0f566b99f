"""In Chromium: start a labeling session, label images from the gallery, import more from a CSV,
see predictions for the rest with an estimate, download the predictions CSV, reload and find the
labels still there; labels given in the queue and the gallery show in the header counts, the
map's legend and the Predictions tab at once, without a reload; predictions are computed in the
background while the page says so, and drawn by themselves."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_idle
from playwright.sync_api import expect
from waiting import wait_for

from sslviz.data import ensure_demo
from sslviz.fewshot.labeling import create_session
from sslviz.maps import project
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
    page.get_by_text("Add a label name to start").first.wait_for()
    # pixels is embedded in the background (issue 25): the map and the queue come when it is,
    # moving the gallery down (a click meanwhile could land beside its button)
    page.get_by_text("worth labeling now").first.wait_for(timeout=600_000)
    settle(page)

    # Two labels from the gallery: the new name is the brush, a click under a thumbnail gives it
    page.get_by_label("New label name").fill("astronaut")
    page.get_by_role("button", name="Add").click()
    settle(page)
    for n in (1, 2):
        click_unlabeled(page, "lb_g_", "astronaut")
        wait_for(lambda n=n: len(labels_in_store(home)) == n)
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
    # the UMAP map replaces the PCA preview by itself (a rerun that would cancel a download)
    expect(page.get_by_text("shown while the UMAP map is computed")).to_have_count(
        0, timeout=600_000
    )
    # so do the predictions once the embedding's 10-D UMAP is there (computed in the background)
    for waiting in ("Fitting a UMAP of this embedding", "Updating the predictions"):
        expect(page.get_by_text(waiting)).to_have_count(0, timeout=600_000)
    settle(page)
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


def click_unlabeled(page, prefix: str, name: str) -> None:
    """Click the first "+ name" button under a thumbnail of the queue (``lb_next_``) or the
    gallery (``lb_g_``), then wait for the run it causes."""
    button = page.locator(f'[class*="st-key-{prefix}"] button:has-text("+ {name}")').first
    button.click()
    settle(page)


def header(page) -> str:
    return page.locator(
        '[data-testid="stMarkdownContainer"]:has-text(" labeled — ")'
    ).first.inner_text()


def legend(page) -> str:
    return page.locator('[data-testid="stMarkdownContainer"]:has-text("label:")').first.inner_text()


@pytest.fixture
def session_home(tmp_path: Path, chromium: Path) -> Path:
    """The demo set, its pixels map, and a session on pixels with two label names, made before
    the app starts (``app_url``, requested after this, serves it)."""
    home = tmp_path / "home"
    store = Store.open(home)
    ensure_demo(store)
    project.project(store, "demo", "pixels")
    session = create_session(store, "demo", "pixels", name="browser")
    for name in ("astronaut", "cat"):
        store.sessions.add_label_name(session.id, name)
    store.close()
    return home


def test_labels_from_the_queue_and_gallery_show_at_once(session_home: Path, app_url: str, page):
    """Issue 27: after labels given in the queue or the gallery the header still said "0
    labeled", the map "unlabeled (306)" and Predictions asked for two labels, until a reload."""
    page.goto(app_url + "/labeling?session=1")
    page.get_by_text("worth labeling now").first.wait_for(timeout=600_000)
    settle(page)
    assert header(page).startswith("0 labeled")
    assert "unlabeled (306)" in legend(page)
    page.get_by_role("tab", name="Predictions").click()
    page.get_by_text("at least two different labels").first.wait_for()
    settle(page)
    page.get_by_role("tab", name="Label").click()
    page.get_by_text("worth labeling now").first.wait_for()
    settle(page)
    url = page.url

    brush = page.locator('[class*="st-key-lb_active_"]')  # pick the label once
    brush.get_by_text("astronaut", exact=True).click()
    settle(page)
    for n in range(3):
        click_unlabeled(page, "lb_next_", "astronaut")
        wait_for(lambda n=n: len(labels_in_store(session_home)) == n + 1)
    brush.get_by_text("cat", exact=True).click()
    settle(page)
    for n in range(3):
        click_unlabeled(page, "lb_g_", "cat")
        wait_for(lambda n=n: len(labels_in_store(session_home)) == n + 4)
    assert sorted(labels_in_store(session_home).values()) == ["astronaut"] * 3 + ["cat"] * 3

    # the same page, never reloaded: every part shows the six labels
    assert page.url == url
    expect(page.get_by_text("6 labeled").first).to_be_visible()
    assert "astronaut 3" in header(page) and "cat 3" in header(page)
    assert "unlabeled (300)" in legend(page) and "astronaut (3)" in legend(page)
    page.get_by_role("tab", name="Predictions").click()
    # issue 25: the script returns while they are computed in the background, saying so ...
    page.get_by_text("Updating the predictions").first.wait_for(timeout=180_000)
    # ... and the page draws them by itself once they are there
    page.get_by_text("Estimated accuracy").first.wait_for(timeout=180_000)
    expect(page.get_by_text("Updating the predictions")).to_have_count(0, timeout=180_000)
    settle(page)
    assert page.get_by_text("at least two different labels").count() == 0
    assert page.get_by_text("too few labels").count() >= 1  # 6 labels: honest, not a number


# Every drawn point of the page's first map in page pixels, with its image id and colour code.
DRAWN = """() => { const gd = document.querySelector('.js-plotly-plot'), t = gd._fullData[0];
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {type: t.type, points: Array.from(t.x, (x, i) => [r.left + xa.l2p(x),
    r.top + ya.l2p(t.y[i]), Number(t.customdata[i]), Number(t.marker.color[i])])}; }"""


def test_a_label_recolours_the_map_and_images_still_show_on_hover(
    session_home: Path, app_url: str, page
):
    """Issue 25 (one label within 0.3 s): the Label tab's small map is drawn as SVG (a new WebGL
    context per label cost the browser ~0.5 s) and has the label's colour after the click's one
    run; the images on hover, sent once per browser session, still show on the redrawn map."""
    page.goto(app_url + "/labeling?session=1")
    page.get_by_text("worth labeling now").first.wait_for(timeout=600_000)
    settle(page)
    page.wait_for_function("window.sslvizThumbs && Object.keys(window.sslvizThumbs).length === 306")
    page.locator('[class*="st-key-lb_active_"]').get_by_text("cat", exact=True).click()
    settle(page)
    click_unlabeled(page, "lb_next_", "cat")
    (path,) = labels_in_store(session_home)
    store = Store.open(session_home)
    (image_id,) = [i.id for i in store.datasets.images(1) if i.path == path]
    store.close()
    expect(page.get_by_text("cat (1)").first).to_be_visible()  # the legend under the map

    drawn = page.evaluate(DRAWN)
    assert drawn["type"] == "scatter"  # SVG, not scattergl
    codes = {int(p[2]): int(p[3]) for p in drawn["points"]}
    assert len(codes) == 306
    assert [i for i, c in codes.items() if c == codes[image_id]] == [image_id]  # its own colour

    # the loneliest point under the cursor shows its image, from the thumbnails sent at the start
    xy = np.array([p[:2] for p in drawn["points"]])
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    px, py, shown_id, _ = drawn["points"][int(gaps.min(axis=1).argmax())]
    page.mouse.move(px + 2, py + 2)
    page.mouse.move(px, py)
    box = page.locator("#sslviz-hover-thumb")
    box.wait_for(state="visible", timeout=30_000)
    assert box.locator("img").get_attribute("src") == page.evaluate(
        f"window.sslvizThumbs['{int(shown_id)}']"
    )
