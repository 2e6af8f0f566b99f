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


class ProgressBar:
    """A progress bar on stderr (tqdm: count, rate and ETA); silent when stderr is not a terminal,
    so logs and pipes get no carriage-return redraws.

        bar = ProgressBar(total, "decoding", unit="file")
        bar.update(done, "loss 0.42")   # absolute count done, optional text after the bar
        bar.close()                     # idempotent
    """

    def __init__(self, total: int, label: str, *, unit: str = "it") -> None:
        stream = sys.stderr
        # Follow the terminal's width; one that reports no size (some containers'
        # pseudo-terminals) would get no bar at all from tqdm, so it gets a fixed size instead.
        width = {"dynamic_ncols": True} if _columns(stream) else {"ncols": 100, "nrows": 20}
        self._bar = tqdm(
            total=max(int(total), 1),
            desc=label,
            unit=unit,
            file=stream,
            disable=not _is_terminal(stream),
            smoothing=0.1,  # a steadier rate and ETA than tqdm's default over uneven steps
            **width,
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


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0
