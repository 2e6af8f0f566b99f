"""The real app in a subprocess and headless Chromium (plain Playwright, no pytest plugin).

Chromium is Debian's ``/usr/bin/chromium``. Without it these tests skip locally but fail under CI
(``CI=true``): in CI a missing browser is a broken setup, not a reason to pass.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
APP = Path(__file__).resolve().parents[2] / "app.py"
IDLE = (
    "document.querySelector('[data-test-script-state]')"
    "?.getAttribute('data-test-script-state') === 'notRunning'"
)
# Installed in every page: notes when the user last acted (a click, a key, a file) and when a
# script run last started, so a test can wait for the run its own action caused to finish
# (instead of sleeping in the hope that it started by then).
TRACK_RUNS = """
(() => {
  window.__lastInput = 0;
  window.__lastRunStart = 0;
  const state = () => document.querySelector('[data-test-script-state]')
    ?.getAttribute('data-test-script-state');
  new MutationObserver(() => {
    if (state() === 'running') window.__lastRunStart = performance.now();
  }).observe(document, {attributes: true, subtree: true, childList: true,
                        attributeFilter: ['data-test-script-state']});
  for (const type of ['pointerup', 'keyup', 'change', 'input', 'drop']) {
    document.addEventListener(type, () => { window.__lastInput = performance.now(); }, true);
  }
})();
"""
# Idle after the last action: no script run is going on, and one has started since the action
# (an action that starts none, e.g. a click on plain text, counts once it is QUIET_MS old).
QUIET_MS = 2000
SETTLED = (
    f"({IDLE}) && (window.__lastInput === undefined"
    " || window.__lastRunStart >= window.__lastInput"
    f" || performance.now() - window.__lastInput > {QUIET_MS})"
)


def png_bytes(seed: int, size: int = 48) -> bytes:
    """A real, distinct PNG for every seed (a colour gradient plus noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = (rng.uniform(0, 255, 3) + ramp[None, :, None] * rng.uniform(0.2, 1.0, 3)) % 256
    pixels = pixels + rng.normal(0, 20, size=(size, size, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(out, format="PNG")
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt install chromium)")
    return CHROMIUM


@pytest.fixture
def app_env() -> dict[str, str]:
    """Extra environment of the app server (a test module may override this fixture)."""
    return {}


@pytest.fixture
def app_url(tmp_path: Path, chromium: Path, app_env: dict[str, str]) -> Iterator[str]:
    """``streamlit run app.py`` on a free port with its own workspace; killed afterwards."""
    port = _free_port()
    env = {**os.environ, "SSLVIZ_HOME": str(tmp_path / "home"), "SSLVIZ_WORKER_THREADS": "1"}
    env.pop("SSLVIZ_SERVER_ROOTS", None)
    env.update(app_env)
    log = (tmp_path / "app.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
        ],
        cwd=APP.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            assert server.poll() is None, f"the app ended: {(tmp_path / 'app.log').read_text()}"
            return False

    wait_for(
        serving, 60, 0.3, lambda: f"the app did not start: {(tmp_path / 'app.log').read_text()}"
    )
    try:
        yield url
    finally:
        _stop_runs(tmp_path / "home")  # workers run in their own sessions: end them first
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _stop_runs(home: Path) -> None:
    from sslviz.runner import jobs
    from sslviz.store import Store
    from sslviz.store.rows import ACTIVE_STATUSES

    if not (home / "sslviz.db").exists():
        return
    store = Store.open(home)
    for run in store.runs.list(ACTIVE_STATUSES):
        jobs.cancel(store, run.id)
        jobs.wait(store, run.id, timeout=30)
    store.close()


@pytest.fixture
def page(chromium: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(TRACK_RUNS)
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Until the script run the last interaction caused has started and finished (an interaction
    that causes none counts once it is QUIET_MS old): a state, not a guess at how long it takes."""
    page.wait_for_function(SETTLED, timeout=timeout_ms)
