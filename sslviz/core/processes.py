"""Is a recorded pid still the process that did the work? (Linux /proc; elsewhere, best effort.)

The store records which process runs a job or an ingest. When that process dies without a word
(SIGKILL, a crash, a reboot, an app restart) the row must be found and marked ``interrupted``; a
pid alone can't tell, because the OS reuses pids. A process is still the one recorded only if it
is alive and started no later than the work did.

    owns_process(dataset.pid, since=dataset.created_at)   # False: dead, a zombie, or reused
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from functools import lru_cache
from pathlib import Path

START_SLACK = 2.0  # seconds: /proc start times are rounded to clock ticks, clocks drift a little


def owns_process(pid: int | None, *, since: float | None) -> bool:
    """Whether ``pid`` is alive and started by ``since`` (+ a little slack): the process that
    recorded itself at ``since``, not a later one that got the same pid. Without /proc (not
    Linux) an alive pid is trusted."""
    if pid is None or not pid_alive(pid):
        return False
    started = process_start_time(pid)
    if started is None:
        return True
    return since is not None and started <= since + START_SLACK


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and has not exited (a zombie, not yet collected, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    stat = read_proc(pid, "stat")
    return not (stat and stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z")


def read_proc(pid: int, name: str) -> str | None:
    """``/proc/PID/NAME`` as text, or None (no such process, no /proc)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return None


def process_start_time(pid: int) -> float | None:
    """Wall-clock start time of ``pid`` from /proc (None where there is no /proc)."""
    stat, boot = read_proc(pid, "stat"), _boot_time()
    if stat is None or boot is None:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) ``pid`` has used so far, from /proc; None if it is gone (or there
    is no /proc). Work that is compiling, decoding or fitting uses CPU: a sign it is not hung."""
    stat = read_proc(pid, "stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc; empty where there is none)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = read_proc(int(entry.name), "stat")
                if stat and int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def die_with_parent(parent: int) -> None:
    """Make this process (a pool worker) get SIGKILL when its parent process dies, and exit now if
    ``parent`` (the pid that asked for the pool) is already gone. Use as a pool ``initializer``.

    A parent killed with SIGKILL can't shut its pool down; its workers would otherwise wait on
    their task queue forever (each holds a copy of the queue's write end, so no end-of-file comes).
    Under "forkserver" the worker's parent is the fork server, which itself exits when ``parent``
    dies, so the signal still comes. Linux only (prctl); elsewhere a no-op.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if not pid_alive(parent):  # it died before the line above took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


# Set once a process has lowered itself: its children (a worker's UMAP fit, a worker it starts)
# inherit both the priority and this, so they are not lowered a second time.
_LOWERED_ENV = "SSLVIZ_BACKGROUND_PRIORITY"


def background_priority() -> None:
    """Lower this process's priority by ``worker_nice`` (the app's workers' setting), once down a
    line of processes: a process doing long work for the app must leave the CPU to the server
    that draws its pages. Not allowed: run at the priority it has rather than not at all."""
    from sslviz.core.settings import worker_nice

    if os.environ.get(_LOWERED_ENV):
        return
    with contextlib.suppress(OSError):
        os.nice(worker_nice())
    os.environ[_LOWERED_ENV] = "1"


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    return None
