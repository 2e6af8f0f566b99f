"""Browser uploads, staged in the workspace before they are ingested.

    staged = stage_uploads(store.workspace.root, [(name, file_object), ...])  # UserError past a limit
    plan = plan_staged(staged)                                               # what to decode

Each uploaded file is copied to disk in blocks (never read whole into memory), under a limit per
file and one for the whole upload; past either, the upload is refused with the limit named and
nothing is kept. Names are labels only: the staged files are numbered, and the names go into a
manifest beside them. A staged folder first lives in the workspace root as
``upload-<pid>-<random>`` (removed by ``recovery.clean_leftovers`` if that process dies), then
moves into its dataset's folder (:func:`adopt`), where it stays until the ingest is complete, so an
interrupted ingest of an upload can be resumed like one of a server folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from sslviz.core.errors import UserError
from sslviz.data.sources import Plan, plan_uploads

MAX_FILE_ENV = "SSLVIZ_MAX_UPLOAD_FILE_MB"  # one uploaded file (a zip counts as one)
MAX_TOTAL_ENV = "SSLVIZ_MAX_UPLOAD_MB"  # all files of one upload together
DEFAULT_MAX_FILE_MB = 4096
DEFAULT_MAX_TOTAL_MB = 16384
STAGING_PREFIX = "upload-"  # staged uploads in the workspace root: ``upload-<pid>-<random>``
MANIFEST = "manifest.json"
STAGED_DIR = "upload"  # inside a dataset's folder
_BLOCK = 1024**2  # bytes copied at a time


def _limit_mb(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(f"{env}={raw!r} is not a whole number of megabytes: set it to 1 or more")
    return int(raw)


def upload_limits() -> tuple[int, int]:
    """(per file, per upload) in bytes: ``$SSLVIZ_MAX_UPLOAD_FILE_MB``, ``$SSLVIZ_MAX_UPLOAD_MB``."""
    return (
        _limit_mb(MAX_FILE_ENV, DEFAULT_MAX_FILE_MB) * 1024**2,
        _limit_mb(MAX_TOTAL_ENV, DEFAULT_MAX_TOTAL_MB) * 1024**2,
    )


def stage_uploads(root: Path, files: Iterable[tuple[str, bytes | BinaryIO]]) -> Path:
    """Copy uploaded (untrusted name, bytes or file object) pairs into a new staging folder in
    ``root``; its path. UserError (and nothing left behind) past a size limit."""
    per_file, per_upload = upload_limits()
    root.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later ingest remove it if this process is killed meanwhile.
    staged = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root))
    manifest: list[dict[str, str]] = []
    total = 0
    try:
        for index, (name, source) in enumerate(files):
            file = f"{index}.zip" if name.lower().endswith(".zip") else str(index)
            total += _copy(source, staged / file, name, (per_file, per_upload), total)
            manifest.append({"name": name, "file": file})
        (staged / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    except BaseException:  # a refused upload, or the page script stopped: nothing half-staged
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


def _copy(
    source: bytes | BinaryIO, target: Path, name: str, limits: tuple[int, int], before: int
) -> int:
    """Write ``source`` to ``target`` in blocks; its size. UserError past the limit per file, or
    per upload (``before``: bytes of the upload's earlier files)."""
    per_file, per_upload = limits
    if isinstance(source, (bytes, bytearray, memoryview)):
        blocks: Iterable[bytes] = [bytes(source)]
    else:
        if hasattr(source, "seek"):
            source.seek(0)
        blocks = iter(lambda: source.read(_BLOCK), b"")
    size = 0
    with open(target, "wb") as out:
        for block in blocks:
            size += len(block)
            if size > per_file:
                raise UserError(
                    f"{name} is larger than the upload limit of {_mb(per_file)} per file: "
                    f"register its folder on the server instead, or raise {MAX_FILE_ENV}"
                )
            if before + size > per_upload:
                raise UserError(
                    f"the upload is larger than its limit of {_mb(per_upload)} in all: "
                    f"upload fewer files at once, or raise {MAX_TOTAL_ENV}"
                )
            out.write(block)
    return size


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB"


def plan_staged(staged: Path) -> Plan:
    """What a staged upload holds, as an ingest plan (names checked, zips read in place)."""
    manifest = json.loads((staged / MANIFEST).read_text(encoding="utf-8"))
    return plan_uploads([(entry["name"], staged / entry["file"]) for entry in manifest])


def adopt(staged: Path, dataset_dir: Path) -> Path:
    """Move a staging folder into its dataset's folder; the new path."""
    dataset_dir.mkdir(parents=True, exist_ok=True)
    target = dataset_dir / STAGED_DIR
    shutil.rmtree(target, ignore_errors=True)
    return Path(shutil.move(str(staged), str(target)))


def staged_upload(dataset_dir: Path) -> Path | None:
    """The staged upload a dataset's ingest reads, if it is still there."""
    folder = dataset_dir / STAGED_DIR
    return folder if (folder / MANIFEST).is_file() else None
