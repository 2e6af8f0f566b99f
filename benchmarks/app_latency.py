"""How long the Runs page takes to render in Chromium with no run active and with a CPU run
training in the background on the same machine, and the ratio of the two.

    python benchmarks/app_latency.py [--rounds 5] [--cold] [--port 8765]

What it measures: the seconds from navigating to ``/runs?run=ID`` until the page's main content is
visible (the runs table and the selected run's progress bar) and the script state is
``notRunning`` -- what a user reloading the page waits for. The curves are drawn by plotly after
that; the time until they are on screen is reported too, not part of the goal.

How: a throw-away SSLVIZ_HOME with the demo dataset, a real ``streamlit run app.py`` server and a
real background run (``jobs.submit``, rotation, CPU, the worker's own niceness and thread count).
The two cases alternate in rounds so the machine's background load hits both alike: the run is
cancelled (its page then shows a cancelled run: the same table, curves and panel, no live refresh,
nothing training) for an "idle" load, then resumed and given time to train again for an "active"
load. Each active load is followed by one with the worker SIGSTOPped: same page, no training --
what the page itself costs beyond idle. Medians over the rounds, after one warm-up load per case.
One tab, reloaded for every load (cached static files, as a user reloading the page they are on);
``--cold`` opens a fresh context and tab per load instead (nothing cached, a new renderer process).

Goal (issue 4): both medians <= 2 s and active/idle <= 1.5. Needs Debian's ``chromium`` and the
Python ``playwright`` package (no browser download).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app  # noqa: E402

GOAL_SECONDS, GOAL_RATIO = 2.0, 1.5
MAIN_CONTENT = "[data-testid='stDataFrame'] >> nth=0", "[data-testid='stProgress'] >> nth=0"
DONE = "[data-test-script-state='notRunning']"
CURVES = ".js-plotly-plot .main-svg"


class Browser:
    """Chromium via playwright; :meth:`load` times one fresh page."""

    def __init__(self, cold: bool) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        # warm: one tab reloaded for every load, as a user reloads the page they are on;
        # cold: a fresh context and tab per load (nothing cached, a new renderer process)
        self._page = None if cold else self._browser.new_context().new_page()

    def load(self, url: str) -> tuple[float, float]:
        """(seconds until the main content shows and the script is done, seconds until the
        curves are drawn: NaN if they are not within 20 s)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page = self._page or self._browser.new_page()
        try:
            start = time.perf_counter()
            page.goto(url, wait_until="commit")
            for selector in MAIN_CONTENT:
                page.wait_for_selector(selector, timeout=60_000)
            page.wait_for_selector(DONE, state="attached", timeout=60_000)
            shown = time.perf_counter() - start
            try:
                page.wait_for_selector(CURVES, state="attached", timeout=20_000)
            except PlaywrightTimeout:
                return shown, float("nan")
            return shown, time.perf_counter() - start
        finally:
            if page is not self._page:
                page.close()

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="loads per case (median)")
    parser.add_argument(
        "--cold", action="store_true", help="a fresh browser context and tab per load"
    )
    parser.add_argument("--port", type=int, default=0, help="app port (default: a free one)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sslviz-bench-"))
    os.environ["SSLVIZ_HOME"] = str(home)

    from sslviz.data import ensure_demo
    from sslviz.runner import jobs
    from sslviz.store import Store
    from sslviz.training.config import TrainConfig
    from sslviz.training.train import job_request

    store = Store.open(home)
    ensure_demo(store)
    # Long enough to outlast the measurement (cancelled and resumed between the cases), short
    # enough that it logs metrics every step (the worker logs <= 2000 points per run).
    config = TrainConfig(
        dataset="demo",
        task="rotation",
        image_size=32,
        epochs=300,
        batch_size=32,
        device="cpu",
        time_budget=1800,
    )
    run_id = jobs.submit(store, job_request(store, config)).id

    def training(min_steps: int) -> None:
        """Wait until the worker has taken ``min_steps`` more steps (it is training, not
        importing torch or building its cache)."""
        start, deadline = store.runs.get(run_id).step, time.monotonic() + 180
        while store.runs.get(run_id).step < start + min_steps:
            run = store.runs.get(run_id)
            if run.status not in ("queued", "running"):
                raise SystemExit(f"the background run ended early: {run.status} {run.error}")
            if time.monotonic() > deadline:
                raise SystemExit("the background run did not train within 180 s")
            time.sleep(0.5)

    def stop() -> None:
        jobs.cancel(store, run_id)
        if jobs.wait(store, run_id, 60).status != "cancelled":
            raise SystemExit("the background run did not stop within 60 s")

    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}/runs?run={run_id}"
    app = start_app(port, home)
    browser = Browser(args.cold)
    times: dict[str, list[tuple[float, float]]] = {"idle": [], "active": [], "paused": []}
    try:
        training(5)
        for i in range(args.rounds + 1):  # round 0 warms up every case: not counted
            stop()
            idle = browser.load(url)
            jobs.resume(store, run_id)
            training(5)
            active = browser.load(url)
            pid = store.runs.get(run_id).pid
            os.killpg(pid, signal.SIGSTOP)  # well inside the reaper's 60 s
            try:
                paused = browser.load(url)
            finally:
                os.killpg(pid, signal.SIGCONT)
            if i:
                for case, t in (("idle", idle), ("active", active), ("paused", paused)):
                    times[case].append(t)
            print(
                f"round {i}: idle {idle[0]:.2f} s, active {active[0]:.2f} s, "
                f"paused {paused[0]:.2f} s",
                flush=True,
            )
        steps = store.runs.get(run_id).step
    finally:
        browser.close()
        if store.runs.get(run_id).status in ("queued", "running"):
            stop()
        stop_app(app)

    median = {case: statistics.median(t[0] for t in ts) for case, ts in times.items()}
    curves = {case: statistics.median(t[1] for t in ts) for case, ts in times.items()}
    ratio = median["active"] / median["idle"]
    cores = len(os.sched_getaffinity(0))
    context = "a fresh browser context and tab per load" if args.cold else "one tab, reloaded"
    print(
        f"Runs page in Chromium, median of {args.rounds} loads per case ({cores} cores, {context}):"
    )
    notes = {
        "idle": "no run active",
        "active": "CPU run training",
        "paused": "same, worker SIGSTOPped",
    }
    for case, note in notes.items():
        loads = ", ".join(f"{t[0]:.2f}" for t in times[case])
        print(
            f"  {note:24s} {median[case]:.3f} s  (curves drawn {curves[case]:.2f} s; loads: {loads})"
        )
    print(
        f"  ratio active/idle: {ratio:.2f}; paused/idle: {median['paused'] / median['idle']:.2f}"
        f" (the page's own extra work); the run reached step {steps}"
    )
    print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {cores} cores")
    ok = max(median["idle"], median["active"]) <= GOAL_SECONDS and ratio <= GOAL_RATIO
    print(f"  goal <= {GOAL_SECONDS:.0f} s and ratio <= {GOAL_RATIO}: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
