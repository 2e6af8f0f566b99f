"""In Chromium, state that must agree with itself (issue 18): adding label names logs no
Streamlit warning, and after a session switches to another source the session picker names the
new one without a reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import png_bytes, wait_idle
from playwright.sync_api import expect

from sslviz.data import ingest_uploads
from sslviz.fewshot.labeling import create_session, set_source
from sslviz.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WARNING = "created with a default value but also had its value set via the Session State API"


def settle(page) -> None:
    """Until the run the last action caused has finished, with room for a first map (UMAP's
    compile) on a busy machine."""
    wait_idle(page, timeout_ms=600_000)


def test_label_names_log_no_warning_and_the_picker_names_the_new_source(
    app_url: str, page, tmp_path: Path
) -> None:
    # a small dataset of its own (the workspace then gets no demo): its map is quick to make
    store = Store.open(tmp_path / "home")
    files = [(f"tiny/{i:02d}.png", png_bytes(i)) for i in range(24)]
    ingest_uploads(store, files, "tiny")
    session = create_session(store, "tiny", "pixels", name="first pass")
    page.goto(app_url + f"/labeling?session={session.id}")
    picker = page.get_by_role("combobox", name="Labeling session")
    expect(picker).to_have_value("first pass · pixels", timeout=300_000)
    settle(page)

    for name in ("cat", "dog", "sky"):
        page.get_by_label("New label name").fill(name)
        page.get_by_role("button", name="Add").click()
        # the name just added is the brush: the picked button of the label bar
        bar = page.get_by_role("radiogroup", name="Click an image to label it")
        expect(bar.get_by_role("radio", name=name, exact=True)).to_be_checked(timeout=120_000)
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
