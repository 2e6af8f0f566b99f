"""Turn ingest sources (folders, zips, loose files, uploads) into a list of light work items.

Nothing here trusts a name: zip entries and uploaded names are checked as labels and never used as
paths to write to. Items carry where to read the bytes from (a real file, a zip entry by index, or
bytes already in memory); the decoding workers read them one at a time, so memory stays bounded.

Hidden entries (a name starting with ``.``, or ``__MACOSX``: Finder/Git metadata) are not read;
each hidden file or folder is listed once among the rejected files with the reason
"hidden file (skipped)" / "hidden folder (skipped)", so the report accounts for every file.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sslviz.store import Rejection

MAX_FILE_BYTES = 256 * 1024**2  # per file or zip entry, after unpacking
MAX_ZIP_RATIO = 1000  # unpacked/packed size of an entry beyond which it is treated as a zip bomb
_DRIVE = re.compile(r"^[A-Za-z]:")
_ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar")


@dataclass(frozen=True)
class Item:
    """One file to decode. Exactly one of ``file``, ``zip`` (+ ``member``) or ``data`` is set."""

    path: str  # the image's path inside the dataset: relative, "/" separators
    file: str | None = None
    zip: str | None = None
    member: int | None = None  # index into the zip's infolist (names may repeat inside a zip)
    data: bytes | None = None


@dataclass
class Plan:
    """What an ingest will decode, plus what was already rejected while listing the sources."""

    items: list[Item]
    rejected: list[Rejection]

    def extend(self, other: Plan) -> None:
        self.items += other.items
        self.rejected += other.rejected


def safe_relative(name: str) -> str | None:
    """An untrusted name as a clean relative "/" path, or None if it tries to leave its folder."""
    parts = name.replace("\\", "/").split("/")
    if "\x00" in name or name.startswith(("/", "\\")) or _DRIVE.match(name):
        return None
    if any(part == ".." for part in parts):
        return None
    clean = [part for part in parts if part not in ("", ".")]
    return "/".join(clean) if clean else None


def display(name: str) -> str:
    """A filesystem name as text the store and JSON can hold (undecodable bytes become U+FFFD)."""
    return os.fsencode(name).decode("utf-8", "replace")


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def _too_large(size: int) -> str:
    return f"file too large ({size / 1024**2:.0f} MB; at most {MAX_FILE_BYTES // 1024**2} MB)"


# --- folders ---------------------------------------------------------------------------------
def plan_folder(root: Path, prefix: str = "") -> Plan:
    """Every file under ``root`` (recursive, sorted). Links are followed only inside ``root``."""
    plan = Plan([], [])
    real_root = root.resolve()
    for current, dirs, files in os.walk(real_root):
        here = Path(current)
        dirs.sort()
        files.sort()
        for name in list(dirs):
            full = here / name
            rel = prefix + display(str(full.relative_to(real_root)).replace(os.sep, "/"))
            if _hidden(name):
                plan.rejected.append(Rejection(rel + "/", "hidden folder (skipped)"))
                dirs.remove(name)
            elif full.is_symlink():
                inside = full.resolve().is_relative_to(real_root)
                reason = (
                    "link to a folder (not followed)"
                    if inside
                    else "link points outside the folder"
                )
                plan.rejected.append(Rejection(rel + "/", reason))
                dirs.remove(name)
        for name in files:
            full = here / name
            rel = prefix + display(str(full.relative_to(real_root)).replace(os.sep, "/"))
            item_or_reason = _folder_file(full, real_root, name)
            if isinstance(item_or_reason, str):
                plan.rejected.append(Rejection(rel, item_or_reason))
            else:
                plan.items.append(Item(path=rel, file=str(item_or_reason)))
    return plan


def _folder_file(full: Path, real_root: Path, name: str) -> Path | str:
    """The real file to read for a folder entry, or the reason it is rejected."""
    if _hidden(name):
        return "hidden file (skipped)"
    target = full
    if full.is_symlink():
        target = full.resolve()
        if not target.is_relative_to(real_root):
            return "link points outside the folder"
    try:
        info = target.stat()
    except FileNotFoundError:
        return "broken link"
    except OSError as error:
        return f"unreadable file ({error.strerror or error})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if not os.access(target, os.R_OK):
        return "unreadable file (permission denied)"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    if info.st_size > MAX_FILE_BYTES:
        return _too_large(info.st_size)
    if name.lower().endswith(_ARCHIVES):
        return "archive inside the source (not expanded)"
    return target


# --- zips ------------------------------------------------------------------------------------
def plan_zip(path: Path, prefix: str = "") -> Plan:
    """Every entry of a zip, checked by name and declared size; nothing is extracted here."""
    plan = Plan([], [])
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        plan.rejected.append(Rejection(prefix + path.name, f"unreadable zip ({error})"))
        return plan
    hidden_dirs: set[str] = set()
    for index, info in enumerate(infos):
        raw = display(info.filename)
        safe = safe_relative(info.filename)
        if safe is None:
            plan.rejected.append(Rejection(prefix + raw, "unsafe path in zip (absolute or '..')"))
            continue
        parts = safe.split("/")
        hidden_at = next((i for i, part in enumerate(parts) if _hidden(part)), None)
        if hidden_at is not None and hidden_at < len(parts) - 1:
            folder = "/".join(parts[: hidden_at + 1]) + "/"
            if folder not in hidden_dirs:
                hidden_dirs.add(folder)
                plan.rejected.append(Rejection(prefix + folder, "hidden folder (skipped)"))
            continue
        if info.is_dir():
            continue
        rel = prefix + safe
        reason = _zip_entry_reason(info, parts[-1])
        if reason:
            plan.rejected.append(Rejection(rel, reason))
        else:
            plan.items.append(Item(path=rel, zip=str(path), member=index))
    return plan


def _zip_entry_reason(info: zipfile.ZipInfo, name: str) -> str | None:
    unix_mode = info.external_attr >> 16
    if stat.S_ISLNK(unix_mode):
        return "link inside zip (not followed)"
    if _hidden(name):
        return "hidden file (skipped)"
    if info.flag_bits & 0x1:
        return "encrypted zip entry"
    if info.file_size == 0:
        return "empty file (0 bytes)"
    if info.file_size > MAX_FILE_BYTES:
        return _too_large(info.file_size)
    if info.file_size > 1024**2 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        return f"zip bomb (compression ratio over {MAX_ZIP_RATIO}:1)"
    if name.lower().endswith(_ARCHIVES):
        return "archive inside the source (not expanded)"
    return None


# --- uploads ---------------------------------------------------------------------------------
def plan_uploads(files: list[tuple[str, Path]]) -> Plan:
    """Uploaded files, each as (untrusted name, the file it was staged to on disk); zips are
    planned as zips (read in place, nothing extracted).

    A common leading folder (from a browser folder upload) is dropped, like ingesting that folder.
    """
    plan = Plan([], [])
    named = [(safe_relative(name), name, path) for name, path in files]
    safe_names = [s for s, _, _ in named if s]
    strip = _common_folder(safe_names)
    several = len(files) > 1
    for safe, raw, path in named:
        if safe is None:
            plan.rejected.append(Rejection(display(raw), "unsafe file name (absolute or '..')"))
            continue
        rel = safe[len(strip) :] if strip else safe
        size = path.stat().st_size
        if any(_hidden(part) for part in rel.split("/")):
            plan.rejected.append(Rejection(rel, "hidden file (skipped)"))
        elif rel.lower().endswith(".zip"):
            plan.extend(plan_zip(path, prefix=rel[: -len(".zip")] + "/" if several else ""))
        elif size > MAX_FILE_BYTES:
            plan.rejected.append(Rejection(rel, _too_large(size)))
        elif not size:
            plan.rejected.append(Rejection(rel, "empty file (0 bytes)"))
        else:
            plan.items.append(Item(path=rel, file=str(path)))
    return plan


def _common_folder(paths: list[str]) -> str:
    """``"top/"`` if every path lies in the same top-level folder, else ``""``."""
    tops = {p.split("/", 1)[0] for p in paths if "/" in p}
    if len(tops) == 1 and all("/" in p for p in paths):
        return tops.pop() + "/"
    return ""


# --- paths given on the command line --------------------------------------------------------
def plan_paths(paths: list[Path]) -> Plan:
    """Folders (recursive), zips and loose files as one plan. With several sources, each folder's
    or zip's images are prefixed with its name."""
    plan = Plan([], [])
    several = len(paths) > 1
    for path in paths:
        if path.is_dir():
            plan.extend(plan_folder(path, prefix=path.resolve().name + "/" if several else ""))
        elif is_zip(path):
            plan.extend(plan_zip(path, prefix=path.stem + "/" if several else ""))
        else:
            plan.items.append(Item(path=path.name, file=str(path.resolve())))
    return plan


def is_zip(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".zip"


def default_name(path: Path) -> str:
    """A dataset's default name: the folder's name, the zip's stem, a loose file's folder."""
    path = path.resolve()
    if path.is_dir():
        return path.name
    return path.stem if is_zip(path) else path.parent.name


def unique_paths(items: list[Item]) -> None:
    """Make item paths unique (zips may repeat a name; loose files may share one): add ~2, ~3."""
    taken = {item.path for item in items}
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.path not in seen:
            seen.add(item.path)
            continue
        stem, dot, ext = item.path.rpartition(".")
        stem, ext = (stem, dot + ext) if dot and "/" not in ext else (item.path, "")
        copy = 2
        while f"{stem}~{copy}{ext}" in taken:
            copy += 1
        new = f"{stem}~{copy}{ext}"
        taken.add(new)
        seen.add(new)
        items[index] = Item(new, item.file, item.zip, item.member, item.data)


# --- reading ---------------------------------------------------------------------------------
_open_zips: dict[str, zipfile.ZipFile] = {}  # per worker process: each zip opened once


def read_bytes(item: Item) -> bytes:
    """The item's bytes, never more than ``MAX_FILE_BYTES`` (+1 to detect lying zip headers)."""
    if item.data is not None:
        return item.data
    if item.file is not None:
        # The listing resolved links already; refusing one now stops a file swapped for a link
        # (pointing anywhere) between listing and reading.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(item.file, flags), "rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    assert item.zip is not None and item.member is not None
    archive = _open_zips.get(item.zip)
    if archive is None:
        archive = _open_zips[item.zip] = zipfile.ZipFile(item.zip)
    with archive.open(archive.infolist()[item.member]) as entry:
        return entry.read(MAX_FILE_BYTES + 1)


def close_zips() -> None:
    while _open_zips:
        _open_zips.popitem()[1].close()
