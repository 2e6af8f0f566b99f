"""``sslviz app`` stopped while a visitor's page waits on the start-up warm-up (torch and UMAP
loading in a thread): the server still goes, within 5 s, and leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ARGS, _free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from test_app_command import healthy, serving  # noqa: E402
from waiting import wait_for  # noqa: E402


def alive_in_session(session: int) -> list[str]:
    """Processes still running in ``session`` (dead ones waiting to be reaped don't count)."""
    out = subprocess.run(
        ["ps", "-o", "stat=,pid=,cmd=", "-s", str(session)], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line.strip() and not line.startswith("Z")]


@pytest.mark.slow
def test_sigterm_during_the_warm_up_stops_everything(tmp_path: Path, chromium: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "SSLVIZ_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen(
        [sys.executable, "-m", "sslviz", "app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: healthy(port), 90, message="the app never answered")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=ARGS)
            page = browser.new_page()
            # the Train page waits for the warm-up's torch import: the warm-up is under way
            page.goto(f"http://127.0.0.1:{port}/train", wait_until="domcontentloaded")
            page.wait_for_selector("[data-test-script-state]", state="attached", timeout=60_000)
            started = time.monotonic()
            app.send_signal(signal.SIGTERM)
            wait_for(lambda: not serving(port), 5, message="still serving 5 s after SIGTERM")
            app.wait(timeout=max(0.1, 5 - (time.monotonic() - started)))
            browser.close()
        wait_for(
            lambda: not alive_in_session(app.pid), 5, message=lambda: str(alive_in_session(app.pid))
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGKILL)
        app.wait()
