"""The command line's progress bar (``sslviz ingest``, ``train``, ``embed``): on a real terminal (a
pseudo-terminal here) it shows the count, the rate and the time left; anywhere else, nothing."""

from __future__ import annotations

import fcntl
import io
import os
import re
import select
import struct
import sys
import termios
import threading

import pytest
from waiting import wait_for

from sslviz.cli.output import ProgressBar


def _drain(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _show(bar: ProgressBar, fd: int, done: int, suffix: str, timeout: float = 30.0) -> str:
    """Update the bar to ``done`` and wait until the terminal shows it (tqdm redraws at most
    every 0.1 s: repeating the update redraws once that interval has passed); what it printed."""
    shown = bytearray()

    def showing() -> bool:
        bar.update(done, suffix)
        if select.select([fd], [], [], 0.02)[0]:  # the wait between polls
            shown.extend(os.read(fd, 65536))
        return f"{done}/200".encode() in shown

    wait_for(showing, timeout, 0, lambda: f"the bar never showed {done}/200: {bytes(shown)!r}")
    return shown.decode("utf-8", "replace")


# A terminal; one that reports no size; one with columns but 0 rows (as under `script`).
@pytest.mark.parametrize("size", [(24, 100), (0, 0), (0, 110)])
def test_on_a_terminal_it_shows_count_rate_and_eta(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    master, replica = os.openpty()
    fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    terminal = os.fdopen(replica, "w", buffering=1)
    monkeypatch.setattr(sys, "stderr", terminal)
    threads = threading.active_count()
    bar = ProgressBar(200, "decoding", unit="file")
    # No helper thread (tqdm's monitor): ingestion forks its decoders only while single-threaded.
    assert threading.active_count() == threads
    shown = "".join(_show(bar, master, done, "3 rejected") for done in range(0, 201, 20))
    bar.close()
    bar.close()  # closing twice is harmless (callers close on the last update and at the end)
    terminal.flush()
    shown += _drain(master)
    terminal.close()
    os.close(master)
    frames = [f for f in re.split(r"[\r\n]+", shown) if f.strip()]
    assert any("decoding" in f and "100/200" in f for f in frames), shown
    midway = next(f for f in frames if "100/200" in f)
    assert re.search(r"\d+(\.\d+)? ?file/s", midway), midway  # the rate
    assert re.search(r"<\d\d:\d\d", midway), midway  # the time left
    assert "3 rejected" in midway
    assert "200/200" in frames[-1]


def test_off_a_terminal_it_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()  # a log file or a pipe: no carriage-return redraws in it
    monkeypatch.setattr(sys, "stderr", log)
    bar = ProgressBar(50, "training")
    for done in range(51):
        bar.update(done, f"loss {1 / (done + 1):.3f}")
    bar.close()
    assert log.getvalue() == ""
