"""Every ``SSLVIZ_*`` environment variable sslviz reads, in one place (the README's settings table
lists the same names). Each function reads the environment when called, so a test or a worker that
sets a variable sees it at once; an invalid value falls back to the default or raises a UserError
that names the variable and what to set.
"""

from __future__ import annotations

import os
from pathlib import Path

from sslviz.core.errors import UserError

HOME_ENV = "SSLVIZ_HOME"  # the workspace directory
SERVER_ROOTS_ENV = "SSLVIZ_SERVER_ROOTS"  # folders the app may ingest from (os.pathsep-separated)
MAX_RUNS_ENV = "SSLVIZ_MAX_RUNS_PER_DEVICE"  # runs that may work at once on one device
DEADLINE_ENV = "SSLVIZ_PROGRESS_DEADLINE"  # seconds without progress before a worker counts as hung
DDP_TIMEOUT_ENV = "SSLVIZ_DDP_TIMEOUT"  # seconds a DDP rank waits in a collective
WORKER_THREADS_ENV = "SSLVIZ_WORKER_THREADS"  # torch threads of a background worker
WORKER_NICE_ENV = "SSLVIZ_WORKER_NICE"  # how much a background worker lowers its priority
WARM_UP_ENV = "SSLVIZ_WARM_UP"  # "0" turns the app's start-up warm-up off
# tests: seconds each batch of a run's results phase is held up, as on a slow device
RESULTS_PAUSE_ENV = "SSLVIZ_RESULTS_BATCH_PAUSE"

DEFAULT_HOME = Path("~/.sslviz")
DEFAULT_PROGRESS_DEADLINE = 600.0
DEFAULT_DDP_TIMEOUT = 4 * 3600.0  # covers rank 0's first cache build of a large dataset
DEFAULT_WORKER_NICE = 10


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def positive_seconds(name: str, default: float) -> float:
    """``$name`` as a positive number of seconds, else ``default`` (unset, empty or invalid)."""
    try:
        value = float(_raw(name))
    except ValueError:
        return default
    return value if value > 0 else default


def home() -> Path:
    """The workspace directory: ``$SSLVIZ_HOME``, else ``~/.sslviz`` (not created here)."""
    return Path(_raw(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()


def server_roots() -> list[Path]:
    """Folders on the server under which the app may ingest a path; none by default."""
    raw = os.environ.get(SERVER_ROOTS_ENV, "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def max_runs_per_device(limit: int | None = None) -> int:
    """Concurrent runs allowed per device: ``limit``, else ``$SSLVIZ_MAX_RUNS_PER_DEVICE``, else 1."""
    if limit is None:
        raw = _raw(MAX_RUNS_ENV)
        if not raw:
            return 1
        try:
            limit = int(raw)
        except ValueError:
            raise UserError(
                f"{MAX_RUNS_ENV}={raw!r} is not a whole number: set it to 1 or more"
            ) from None
    if limit < 1:
        raise UserError(
            f"at least 1 run per device is needed (got {limit}): set {MAX_RUNS_ENV} >= 1"
        )
    return limit


def progress_deadline() -> float:
    """Seconds without a sign of life before a worker's heartbeat stops (then it is reaped)."""
    return positive_seconds(DEADLINE_ENV, DEFAULT_PROGRESS_DEADLINE)


def results_batch_pause() -> float:
    """Seconds each batch of a results phase is held up (0 unless a test asks: a slow device)."""
    return positive_seconds(RESULTS_PAUSE_ENV, 0.0)


def ddp_timeout() -> float:
    """Seconds a DDP rank waits in a collective before failing."""
    return positive_seconds(DDP_TIMEOUT_ENV, DEFAULT_DDP_TIMEOUT)


def worker_threads() -> int:
    """Torch threads for a background worker: ``$SSLVIZ_WORKER_THREADS``, else all cores but one
    (at least 1), so the app's server keeps a core to itself."""
    raw = _raw(WORKER_THREADS_ENV)
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def worker_nice() -> int:
    """How much a background worker lowers its priority (``$SSLVIZ_WORKER_NICE``, default 10)."""
    raw = _raw(WORKER_NICE_ENV)
    try:
        return int(raw) if raw else DEFAULT_WORKER_NICE
    except ValueError:
        return DEFAULT_WORKER_NICE


def warm_up_enabled() -> bool:
    """Whether the app warms torch, UMAP and friends up at start (``$SSLVIZ_WARM_UP`` != "0")."""
    return _raw(WARM_UP_ENV) != "0"
