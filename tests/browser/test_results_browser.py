"""In Chromium, over tiny real runs of every task: each result page renders its charts and
images with no exception, the live demo answers an uploaded image and explains a non-image.
Screenshots are saved in the test's tmp dir (look at them)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import wait_idle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "results"))
import trained_runs  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def trained(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> trained_runs.Trained:
    """The session's trained runs, copied to where ``app_url`` puts the app's workspace."""
    template = trained_runs.template(tmp_path_factory)
    template.copy_to(tmp_path / "home")
    return template


@pytest.fixture
def app_url(trained: trained_runs.Trained, app_url: str) -> str:
    """The app, started on the workspace with the trained runs (overrides conftest's)."""
    return app_url


def no_exception(page) -> None:
    assert page.get_by_test_id("stException").count() == 0


def test_result_pages_and_live_demo(
    app_url: str, page, tmp_path: Path, trained: trained_runs.Trained
) -> None:
    page.set_viewport_size({"width": 1500, "height": 2400})
    for name, run, text, charts in (
        ("rotation", trained.rotation, "Confusion matrix", 2),
        ("colorization", trained.colorization, "L2 regression vs classification", 0),
        ("jigsaw", trained.jigsaw, "Puzzles", 1),
    ):
        page.goto(f"{app_url}/{name}?run={run}")
        page.get_by_text(text).first.wait_for()
        wait_idle(page)
        if charts:
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot').length >= {charts}"
            )
        no_exception(page)
        if name != "rotation":  # images arrive from the media endpoint after the script ends
            page.get_by_test_id("stImage").nth(5).wait_for()
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)

    page.goto(f"{app_url}/demo?run={trained.rotation}")
    page.get_by_text("Give the model an image above").wait_for()
    upright = tmp_path / "upright.png"
    upright.write_bytes(trained_runs.png(trained_runs.oriented_image(np.random.default_rng(8), 90)))
    page.locator("input[type=file]").first.set_input_files(str(upright))
    # an upload is read, not graded, until the person says it is upright
    page.get_by_text(re.compile(r"The model (reads this image|thinks this image)")).first.wait_for()
    assert page.get_by_text("turns named right").count() == 0
    page.get_by_text("This image is upright: grade the model's answers").click()
    page.get_by_text("4 of 4 turns named right").wait_for()
    wait_idle(page)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 1")
    no_exception(page)
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)

    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo")
    page.locator("input[type=file]").first.set_input_files(str(fake))
    page.get_by_text("holiday.jpg is not a usable image").wait_for()
    no_exception(page)
    page.screenshot(path=str(tmp_path / "demo_not_an_image.png"), full_page=True)
