"""The Explorer in Chromium: box-select a region of the map and see exactly the images inside it
(computed from the stored map), keep the selection through a recolouring, export it as CSV."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_idle

from sslviz.data import ensure_demo
from sslviz.maps import project
from sslviz.store import Store

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

    # Aim the box at one folder's points (data -> page pixels through the axes' ranges), with
    # the whole plot in the viewport (the mouse can't drag outside it).
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

    rocket = np.char.startswith(paths.astype(str), "rocket/")
    left, top = to_page(x[rocket].min(), y[rocket].max())
    right, bottom = to_page(x[rocket].max(), y[rocket].min())
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
