"""Shared output helpers for the CLI: JSON on stdout, progress and messages on stderr."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from sslviz.core.errors import UserError


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (the only thing a ``--json`` command prints there)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    print(message, file=sys.stderr)


def output_file(flag: str, value: str | Path | None, suffixes: tuple[str, ...] = ()) -> Path | None:
    """The file a command was asked to write with ``flag`` (None if not asked), checked before
    any work: a name ending in one of ``suffixes`` (if given) that is not a folder and whose
    folder, if it exists, is one. The write itself (``core.atomic``) reports what only it can
    see (no permission, a full disk) in one line too."""
    if value is None or value == "":
        return None
    path = Path(value)
    if path.is_dir() or str(value).endswith(("/", os.sep)):
        example = path / f"out{suffixes[0] if suffixes else ''}"
        raise UserError(f"{flag} {value}: that is a folder; name a file in it, e.g. {example}")
    if suffixes and path.suffix.lower() not in suffixes:
        names = " or ".join(f"FILE{s}" for s in suffixes)
        raise UserError(f"{flag} {value}: name it {names}")
    if path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{flag} {value}: {path.parent} is a file, not a folder")
    return path


class _Tqdm(tqdm):
    # No monitor thread: a second thread would make ingestion start its decoding pool by "spawn"
    # instead of "fork" (sslviz.data.ingest_pipeline._start_method), seconds slower to start.
    monitor_interval = 0


class ProgressBar:
    """A progress bar on stderr (tqdm: count, rate and ETA); silent when stderr is not a terminal,
    so logs and pipes get no carriage-return redraws.

        bar = ProgressBar(total, "decoding", unit="file")
        bar.update(done, "loss 0.42")   # absolute count done, optional text after the bar
        bar.close()                     # idempotent
    """

    def __init__(self, total: int, label: str, *, unit: str = "it") -> None:
        stream = sys.stderr
        # The terminal's size, given explicitly: tqdm draws nothing at all on a terminal that
        # reports 0 rows (`script`, some containers' pseudo-terminals), so those get a default.
        columns, rows = _size(stream)
        self._bar = _Tqdm(
            total=max(int(total), 1),
            desc=label,
            unit=unit,
            file=stream,
            disable=not _is_terminal(stream),
            smoothing=0.1,  # a steadier rate and ETA than tqdm's default over uneven steps
            ncols=columns or 100,
            nrows=rows or 20,
        )

    def update(self, done: int, suffix: str = "") -> None:
        if self._bar.disable:
            return
        if suffix:
            self._bar.set_postfix_str(suffix, refresh=False)
        self._bar.update(int(done) - self._bar.n)  # tqdm redraws at most every 0.1 s

    def close(self) -> None:
        self._bar.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _size(stream: TextIO) -> tuple[int, int]:
    """(columns, rows) of the terminal, 0 where unknown."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return 0, 0
    return size.columns, size.lines
