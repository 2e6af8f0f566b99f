"""In Chromium, state that must agree with itself (issue 18): adding label names logs no
Streamlit warning, and after a session switches to another source the session picker names the
new one without a reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import IDLE
from playwright.sync_api import expect

from sslviz.fewshot.sessions import create_session, set_source
from sslviz.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WARNING = "created with a default value but also had its value set via the Session State API"


def settle(page) -> None:
    """Until the script is idle, with room for the first map of the demo set on a busy machine."""
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE, timeout=600_000)


def test_label_names_log_no_warning_and_the_picker_names_the_new_source(
    app_url: str, page, tmp_path: Path
) -> None:
    page.goto(app_url + "/datasets")  # the first visit brings the demo dataset in
    page.get_by_text("is ready").first.wait_for(timeout=300_000)
    store = Store.open(tmp_path / "home")
    session = create_session(store, "demo", "pixels", name="first pass")
    page.goto(app_url + f"/labeling?session={session.id}")
    picker = page.get_by_role("combobox", name="Labeling session")
    expect(picker).to_have_value("first pass · pixels", timeout=300_000)
    settle(page)

    for name in ("cat", "dog", "sky"):
        page.get_by_label("New label name").fill(name)
        page.get_by_role("button", name="Add").click()
        expect(page.get_by_role("combobox", name="Active label")).to_have_value(
            name, timeout=120_000
        )
        settle(page)
    log = (tmp_path / "app.log").read_text()
    assert WARNING not in log

    # what "Use … for this session" on the leaderboard does, then a rerun
    set_source(store, session.id, "random", None, None)
    page.get_by_role("heading", name="Label and predict").click()
    page.keyboard.press("r")  # Streamlit's "rerun" key, as any interaction would
    settle(page)
    expect(picker).to_have_value(re.compile(r"first pass · random"), timeout=60_000)
    store.close()
