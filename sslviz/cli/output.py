"""Shared output helpers for the CLI: JSON on stdout, progress and messages on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from tqdm import tqdm


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (the only thing a ``--json`` command prints there)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    print(message, file=sys.stderr)


class _Tqdm(tqdm):
    # No monitor thread: a second thread would make ingestion start its decoding pool by "spawn"
    # instead of "fork" (sslviz.data.ingest._start_method), seconds slower to start.
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
