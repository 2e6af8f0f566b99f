"""The one way tests wait for a state: poll until it holds, fail after a generous timeout (never
a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 180.0,
    poll: float = 0.1,
    message: str | Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy and return that; fail the test
    (AssertionError with ``message``, called then if callable: what was seen) after ``timeout`` s.
    ``poll`` 0 suits a condition that itself waits (a select, a page rerun)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    value = condition()  # once more: the state may have come during the last sleep
    if value:
        return value
    if callable(message):
        message = message()
    raise AssertionError(message or f"condition not met within {timeout} s")
