"""The app and the browser for the browser benchmarks: a real ``streamlit run app.py`` on a free
port, waited for on its health endpoint, and the Chromium this machine has (never downloaded)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# the page's script has finished (Streamlit's own marker)
IDLE = (
    "document.querySelector('[data-test-script-state]')"
    "?.getAttribute('data-test-script-state') === 'notRunning'"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, home: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """The app on workspace ``home``, once it answers ``/_stcore/health`` (its output in
    ``home/app-PORT.log``)."""
    env = {**os.environ, "SSLVIZ_HOME": str(home), **(env_extra or {})}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    log = open(home / f"app-{port}.log", "ab")  # noqa: SIM115 (closed with the process)
    app = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise SystemExit(f"the app exited ({app.returncode}); see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return app
        except OSError:
            time.sleep(0.2)  # polling the health endpoint for the state "serving"
    app.terminate()
    raise SystemExit(f"the app did not answer within 120 s; see {log.name}")


def stop_app(app: subprocess.Popen) -> None:
    app.terminate()
    try:
        app.wait(timeout=30)
    except subprocess.TimeoutExpired:
        app.kill()
        app.wait()
