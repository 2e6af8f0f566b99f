"""In Chromium: launch a short run from the Train page, watch its progress advance on the Runs
page, reload mid-run and still see it, and see it finish with its curves."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import wait_idle

from sslviz.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PROGRESS = re.compile(r"(\d+)% · epoch \d+")


def set_number(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    wait_idle(page)


def progress_percent(page) -> int:
    text = page.get_by_test_id("stProgress").first.inner_text()
    match = PROGRESS.search(text)
    assert match, text
    return int(match.group(1))


def test_launch_watch_reload_finish(app_url: str, page, tmp_path: Path) -> None:
    page.goto(app_url + "/train")
    page.get_by_text("Pretext task").first.wait_for()
    wait_idle(page)
    set_number(page, "Image size (px)", "16")
    set_number(page, "Batch size", "16")
    page.get_by_text("Stop after a time budget").click()
    wait_idle(page)
    set_number(page, "Time budget (s)", "20")
    page.get_by_role("button", name="Start training").click()
    link = page.get_by_text("Watch run #1 on the Runs page")
    link.wait_for()
    link.click()

    # The Runs page, live: the progress bar advances while the run trains.
    page.wait_for_url(re.compile(r"/runs\?run=1"))
    page.get_by_text("#1 rotation on demo").first.wait_for()
    deadline = time.monotonic() + 90
    first = None
    while time.monotonic() < deadline:  # polls the page for the state "advanced"
        if Store.open(tmp_path / "home").runs.get(1).status in ("running", "finished"):
            percent = progress_percent(page)
            first = percent if first is None else first
            if percent > first:  # (a busy machine may see it only once it finished: 100%)
                break
        page.wait_for_timeout(1000)
    else:
        pytest.fail(f"progress did not advance (stayed at {first}%)")

    # A reload shows the same run from the store.
    page.reload()
    page.get_by_text("#1 rotation on demo").first.wait_for()
    assert progress_percent(page) >= first

    # It finishes (the time budget ends it cleanly) and shows its curves and held-out result.
    page.get_by_text("Held-out evaluation").first.wait_for(timeout=180_000)
    assert Store.open(tmp_path / "home").runs.get(1).status == "finished"
    wait_idle(page)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2")
    assert progress_percent(page) == 100
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
