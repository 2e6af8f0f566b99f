"""Shared output helpers for the CLI: JSON on stdout, progress and messages on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (the only thing a ``--json`` command prints there)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    print(message, file=sys.stderr)


class ProgressBar:
    """A one-line text progress bar on stderr; silent when stderr is not a terminal and quiet."""

    def __init__(self, total: int, label: str, width: int = 30) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.width = width
        self._last = -1

    def update(self, done: int, suffix: str = "") -> None:
        filled = int(self.width * min(done, self.total) / self.total)
        percent = int(100 * min(done, self.total) / self.total)
        if percent == self._last and not suffix:
            return
        self._last = percent
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {percent:3d}% {done}/{self.total} {suffix}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()
