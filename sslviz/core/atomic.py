"""Write a file so that readers see the old file or the whole new one, never a part, even if the
process is killed or the machine loses power midway: write a temporary file in the same folder,
flush it to disk, rename it over the target, flush the folder (the rename itself).

    write_bytes(run_dir / "grid.png", png)
    write_json(run_dir / "confusion.json", {"accuracy": 0.93})
    with replacing(path) as tmp: image.save(tmp, format="PNG")   # a writer that wants a path

Temporary files are named ``.tmp-<pid>-<name>-<random>``: unique per process and thread (two
sessions of one Streamlit server writing the same file never share one), and a later cleanup can
tell a dead writer's leftovers from a live one's (``sslviz.data.recovery``, ``remove_orphans``).

    write_npy(file, coords)                                      # numpy arrays too
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def replacing(path: Path | str, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path next to ``path`` to write to (ending in ``suffix``, for writers that
    insist on one); on success it replaces ``path`` durably, on an error it is removed and
    ``path`` is untouched."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)  # the data reaches the disk before the rename that publishes it
        os.replace(tmp, path)
        _fsync(path.parent)  # and the rename itself
    finally:
        tmp.unlink(missing_ok=True)


def temp_prefix(path: Path) -> str:
    """How this process's temporary files for ``path`` start."""
    return f".tmp-{os.getpid()}-{path.name}-"


def orphans(path: Path | str) -> list[Path]:
    """Temporary files of ``path`` left by writers that are gone (any process)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return [p for p in path.parent.glob(f".tmp-*-{path.name}-*") if not _writer_alive(p)]


def _writer_alive(tmp: Path) -> bool:
    pid = tmp.name.split("-")[1]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes(path: Path | str, data: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, obj: Any) -> Path:
    return write_text(path, json.dumps(obj))


def write_npy(path: Path | str, array: Any) -> Path:
    """``np.save`` of ``array`` to ``path`` (a name ending in .npy), atomically."""
    import numpy as np

    with replacing(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return Path(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems can't fsync a folder; the file itself was synced
        pass
    finally:
        os.close(fd)
