"""Write a file so that readers see the old file or the whole new one, never a part, even if the
process is killed or the machine loses power midway: write a temporary file in the same folder,
flush it to disk, rename it over the target, flush the folder (the rename itself).

    write_bytes(run_dir / "grid.png", png)
    write_json(run_dir / "confusion.json", {"accuracy": 0.93})
    with replacing(path) as tmp: image.save(tmp, format="PNG")   # a writer that wants a path

Temporary files are named ``.tmp-<pid>-<name>-<random>``: unique per process and thread (two
sessions of one Streamlit server writing the same file never share one), and a later cleanup can
tell a dead writer's leftovers from a live one's (``sslviz.data.recovery``, ``remove_orphans``).
The file gets the mode ``open()`` would give it: a new one the umask's (0644 under umask 022, so
the group can read a CSV exported on a shared server), a replaced one its old mode.

    write_npy(file, coords)                                      # numpy arrays too

A target that can't be written (a folder, a missing folder, no permission) is a ``UserError``
naming it, in one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sslviz.core.errors import UserError


@contextlib.contextmanager
def replacing(path: Path | str, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path next to ``path`` to write to (ending in ``suffix``, for writers that
    insist on one); on success it replaces ``path`` durably, on an error it is removed and
    ``path`` is untouched."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"can't write {path}: it is a folder, name a file inside it")
    tmp = _create_temp(path, suffix)
    try:
        yield tmp
        _fsync(tmp)  # the data reaches the disk before the rename that publishes it
        try:
            os.replace(tmp, path)
        except OSError as error:
            raise _unwritable(path, error) from None
        _fsync(path.parent)  # and the rename itself
    finally:
        tmp.unlink(missing_ok=True)


def _create_temp(path: Path, suffix: str) -> Path:
    """A new empty temporary file next to ``path``, with the mode ``open(path, "w")`` would
    leave: created 0666 less the umask by the kernel (``mkstemp``'s 0600 would hide an export
    from the group), or the mode of the file it will replace."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = None
    while True:
        tmp = path.parent / f"{temp_prefix(path)}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            raise _unwritable(path, error) from None
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        return tmp


def _unwritable(path: Path, error: OSError) -> UserError:
    """A one-line error for a target the user named that can't be written."""
    reasons = {
        errno.EISDIR: "it is a folder, name a file inside it",
        errno.ENOENT: f"the folder {path.parent} does not exist",
        errno.ENOTDIR: f"{path.parent} is not a folder",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the disk",
    }
    return UserError(f"can't write {path}: {reasons.get(error.errno, error.strerror)}")


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
    """``text`` as UTF-8 to ``path``, atomically (the one name for it)."""
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
