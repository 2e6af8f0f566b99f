"""Files are written atomically: a process killed while writing one leaves the previous file whole
(readers never see half a PNG), and its temporary file is named for cleanup. A written file gets
the mode ``open()`` would give it, and a target that can't be written is one clear error."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslviz.core.atomic import orphans, replacing, write_bytes, write_json, write_text
from sslviz.core.errors import UserError
from sslviz.core.processes import pid_alive

# Starts replacing the picture through ``core.atomic.replacing``: writes the first half of a new
# PNG into the temporary file, says so (with the temporary file's name), then waits to be killed.
WRITER = """
import sys
from pathlib import Path
from sslviz.core.atomic import replacing

path, png = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes()
with replacing(path) as tmp:
    with open(tmp, "wb") as handle:
        handle.write(png[: len(png) // 2])
        handle.flush()
        print("mid-write", tmp, flush=True)
        sys.stdin.read()  # until killed: the rest is never written, the rename never happens
        handle.write(png[len(png) // 2 :])
"""


def _png(seed: int, side: int = 256) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_a_writer_killed_mid_write_leaves_the_previous_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "grid.png"
    previous = _png(0)
    target.write_bytes(previous)
    new = tmp_path / "new.bin"
    new.write_bytes(_png(1))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), str(new)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        marker, tmp = writer.stdout.readline().split()  # blocks until the child is mid-write
        assert marker == "mid-write"
        partial = Path(tmp)
        # the kill lands mid-write: half the new picture is in the temporary file, none in place
        assert 0 < partial.stat().st_size < len(new.read_bytes())
        assert target.read_bytes() == previous
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == previous  # whole, and still the old one
    with Image.open(target) as image:
        image.load()
    # the leftover is named for its dead writer, so a later cleanup finds it
    assert partial.exists() and partial.name.startswith(f".tmp-{writer.pid}-grid.png-")
    assert not pid_alive(writer.pid)
    assert orphans(target) == [partial]


def test_json_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.5})
    write_json(path, {"accuracy": 0.9, "confusion": [[1, 0], [0, 1]]})
    assert path.read_text() == '{"accuracy": 0.9, "confusion": [[1, 0], [0, 1]]}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_new_file_gets_the_umask_mode_as_open_would(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_text(tmp_path / "atomic.csv", "path,label\n")
        with open(tmp_path / "plain.csv", "w") as handle:
            handle.write("path,label\n")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic.csv").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.csv").stat().st_mode) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.csv"
    path.write_text("old")
    path.chmod(0o640)
    write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_target_that_cant_be_written_is_one_user_error(tmp_path: Path) -> None:
    folder = tmp_path / "out.csv"
    folder.mkdir()
    with pytest.raises(UserError, match="is a folder"):
        write_text(folder, "x")
    with pytest.raises(UserError, match="does not exist"):
        write_text(tmp_path / "missing" / "out.csv", "x")
    with pytest.raises(UserError, match="is a folder"), replacing(folder, suffix=".npy"):
        pass
    assert list(folder.iterdir()) == [] and len(list(tmp_path.iterdir())) == 1
