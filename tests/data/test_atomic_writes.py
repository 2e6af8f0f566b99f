"""Artifact pictures are written atomically: a process killed while writing one leaves the previous
picture whole (readers never see half a PNG), and its temporary file is named for cleanup."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from sslviz.core.atomic import write_json
from sslviz.core.processes import pid_alive

# Writes big grids of noise (slow to compress) over the same file until it is killed.
WRITER = """
import sys
import numpy as np
from PIL import Image
from sslviz.pretext.render import save_grid

path = sys.argv[1]
rng = np.random.default_rng(0)
tiles = [Image.fromarray(rng.integers(0, 256, (700, 700, 3), dtype=np.uint8)) for _ in range(4)]
print("ready", flush=True)
while True:
    save_grid(tiles, columns=2, path=path)
"""


def _complete_png(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError):
        return False
    return True


@pytest.mark.slow  # the writer process imports torch (sslviz.pretext)
def test_a_writer_killed_midway_leaves_a_whole_picture(tmp_path: Path) -> None:
    target = tmp_path / "grid.png"
    Image.new("RGB", (8, 8), "white").save(target)  # the previous artifact
    for delay in (0.6,):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay)  # a PNG of this size takes ~0.5 s to write: killed inside one
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert _complete_png(target)
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
        for leftover in leftovers:  # named for its dead writer, for a later cleanup
            assert leftover.name.startswith(f".tmp-{writer.pid}-")
            assert not pid_alive(writer.pid)
            leftover.unlink()


def test_json_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.5})
    write_json(path, {"accuracy": 0.9, "confusion": [[1, 0], [0, 1]]})
    assert path.read_text() == '{"accuracy": 0.9, "confusion": [[1, 0], [0, 1]]}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
