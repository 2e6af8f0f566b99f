"""``sslviz app`` stops when it is stopped: a SIGTERM (or Ctrl-C) to the command leaves nothing
serving on its port, the start-up warm-up included (issue 18)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_sslviz_app_stops_the_server(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "SSLVIZ_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sslviz", "app", "--port", str(port)]
    # its own session: whatever happens, the finally below can end everything it started
    app = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: healthy(port), 90, message="the app never answered")
        app.send_signal(sig)
        wait_for(lambda: not serving(port), 5, message="still serving 5 s after the signal")
        app.wait(timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(app.pid, signal.SIGKILL)  # an orphaned server, if the test failed
        app.wait()


def test_the_app_runs_no_full_garbage_collection_after_every_script_run() -> None:
    """Issue 25: Streamlit's default ``gc.collect()`` after each run held the GIL 0.1-0.5 s with
    torch and umap loaded, so every click's last messages waited for it. The setting as Streamlit
    reads it in the folder ``sslviz app`` serves from."""
    code = (
        "from streamlit import config; config.get_config_options(force_reparse=True); "
        "print(config.get_option('runner.postScriptGC'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
