"""The Explorer in Chromium: box-select a region of the map and see exactly the images inside it
(computed from the stored map), keep the selection through a recolouring, export it as CSV; the
image of the point under the cursor."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_idle

from sslviz.data import ensure_demo, thumbnail_path
from sslviz.maps import project
from sslviz.store import Store
from sslviz.ui.hover_thumbnails import data_url, side_for

GRAPH = ".js-plotly-plot"


@pytest.fixture
def explorer_home(tmp_path: Path, chromium: Path) -> Path:
    """The demo set's ``random`` map computed before the app starts (the page then only reads
    it); returns the workspace, which ``app_url`` (requested after this) serves."""
    home = tmp_path / "home"
    store = Store.open(home)
    ensure_demo(store)
    project.project(store, "demo", "random")
    store.close()
    return home


def _drag_box(page, box: tuple[float, float, float, float]) -> None:
    """Box Select from the toolbar, then drag from (x0, y0) to (x1, y1) in page pixels."""
    page.locator(f'{GRAPH} .modebar-btn[data-title="Box Select"]').first.click()
    x0, y0, x1, y1 = box
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=10)
    page.mouse.up()


def _selection_captions(page, n: int, timeout: float = 60) -> list[str]:
    """The paths under the selection's thumbnails (not the neighbours' grid), once there are
    ``n`` of them (a rerun redraws the grid)."""
    deadline = time.monotonic() + timeout
    while True:
        captions = page.locator("[data-testid='stImageCaption']").all_inner_texts()
        paths = [c.strip() for c in captions if " · " not in c]  # not the neighbours' captions
        if len(paths) == n or time.monotonic() > deadline:
            return paths
        page.wait_for_timeout(200)


def _box_of_a_few(
    x: np.ndarray, y: np.ndarray, paths: np.ndarray
) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around some crops of one photo (a folder's points, or the half of them left
    of their median) with 10-40 stored points inside: one page of thumbnails."""
    names = paths.astype(str)
    for folder in sorted({p.split("/")[0] for p in names}):
        mine = np.char.startswith(names, folder + "/")
        for keep in (mine, mine & (x <= np.median(x[mine]))):
            x0, x1, y0, y1 = x[keep].min(), x[keep].max(), y[keep].min(), y[keep].max()
            if 10 <= int(((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).sum()) <= 40:
                return float(x0), float(y0), float(x1), float(y1)
    raise AssertionError("no part of a photo's crops has 10-40 points in its box")


@pytest.mark.browser
@pytest.mark.slow
def test_box_selection_shows_exactly_the_images_inside(explorer_home: Path, app_url: str, page):
    store = Store.open(explorer_home)
    projection = project.cached_projection(store, "demo", "random")
    x, y = projection.coords[:, 0], projection.coords[:, 1]
    paths = np.asarray(projection.paths)

    page.goto(f"{app_url}/explorer?dataset=demo")
    page.wait_for_selector(f"{GRAPH} canvas", timeout=120_000)
    wait_idle(page)

    # Aim the box at some of one folder's points (data -> page pixels through the axes' ranges),
    # with the whole plot in the viewport (the mouse can't drag outside it).
    page.locator(GRAPH).first.scroll_into_view_if_needed()
    xr, yr = page.evaluate(
        "() => { const l = document.querySelector('.js-plotly-plot')._fullLayout;"
        " return [l.xaxis.range, l.yaxis.range]; }"
    )
    area = page.locator(f"{GRAPH} .nsewdrag").first.bounding_box()

    def to_page(px: float, py: float) -> tuple[float, float]:
        return (
            float(area["x"] + (px - xr[0]) / (xr[1] - xr[0]) * area["width"]),
            float(area["y"] + (yr[1] - py) / (yr[1] - yr[0]) * area["height"]),
        )

    x_min, y_min, x_max, y_max = _box_of_a_few(x, y, paths)
    left, top = to_page(x_min, y_max)
    right, bottom = to_page(x_max, y_min)
    _drag_box(page, (left - 8, top - 8, right + 8, bottom + 8))
    wait_idle(page)

    # What plotly selected, in data coordinates: the ground truth is every stored point inside.
    (shape,) = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.selections")
    x0, x1 = sorted((shape["x0"], shape["x1"]))
    y0, y1 = sorted((shape["y0"], shape["y1"]))
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    expected = sorted(paths[inside])
    assert 10 <= len(expected) <= 48  # one page of thumbnails
    page.get_by_text(f"Selection: {len(expected)} image(s)").wait_for()
    assert sorted(_selection_captions(page, len(expected))) == expected

    # A new colouring is a new figure: the selection stays (and is drawn by the new figure).
    page.get_by_role("radio", name="k-means cluster").click()
    wait_idle(page)
    page.get_by_text(f"Selection: {len(expected)} image(s)").wait_for()
    assert sorted(_selection_captions(page, len(expected))) == expected
    shown = page.evaluate("() => document.querySelector('.js-plotly-plot').data[0].selectedpoints")
    assert len(shown) == len(expected)

    # Export: a CSV of exactly those paths.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    with open(download.value.path(), newline="") as f:
        assert sorted(row["path"] for row in csv.DictReader(f)) == expected
    store.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_point_under_the_cursor_shows_its_image(explorer_home: Path, app_url: str, page):
    store = Store.open(explorer_home)
    projection = project.cached_projection(store, "demo", "random")
    page.goto(f"{app_url}/explorer?dataset=demo")
    page.wait_for_selector(f"{GRAPH} canvas", timeout=120_000)
    page.wait_for_function(
        f"window.sslvizThumbs && Object.keys(window.sslvizThumbs).length === {len(projection.paths)}",
        timeout=120_000,
    )
    page.locator(GRAPH).first.scroll_into_view_if_needed()
    # Every drawn point in page pixels, with its image id; aim at the loneliest one.
    drawn = page.evaluate(
        """() => { const gd = document.querySelector('.js-plotly-plot'), t = gd._fullData[0];
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return Array.from(t.x, (x, i) => [r.left + xa.l2p(x), r.top + ya.l2p(t.y[i]),
                                           Number(t.customdata[i])]); }"""
    )
    xy = np.array([d[:2] for d in drawn])
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    px, py, image_id = drawn[int(gaps.min(axis=1).argmax())]
    page.mouse.move(px + 2, py + 2)
    page.mouse.move(px, py)
    box = page.locator("#sslviz-hover-thumb")
    box.wait_for(state="visible", timeout=30_000)
    src = box.locator("img").get_attribute("src")
    assert src == page.evaluate(f"window.sslvizThumbs['{image_id}']")
    image = next(
        i for i in store.datasets.images(store.datasets.get_by_name("demo").id) if i.id == image_id
    )
    assert src == data_url(str(thumbnail_path(store, image)), side_for(len(projection.paths)))
    page.mouse.move(5, 5)  # off the map: the image goes
    box.wait_for(state="hidden", timeout=30_000)
    store.close()
