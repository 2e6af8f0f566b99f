"""Does the server only serve? How long another session's Runs page takes to load in Chromium
while one session runs a long piece of work, against the same load with nothing running: the
ratio, measured side by side in one run.

    python benchmarks/server_responsiveness.py [--work ingest|leaderboard] [--rounds 5] [--images 6000]

Session 1 starts the work in its own browser context the way a person does (``--work``: an
ingest of a server folder of ``--images`` generated photos from the Datasets page, or ranking the
sources for a labeling session's labels on ``--images`` photos); once it is under way, session 2
(another context) loads ``/runs`` and the seconds until its table is shown and its script is done
are timed; then once more with the work's processes SIGSTOPped (the same pages, a job active,
nothing working: what the pages themselves cost). The work is then stopped (cancelled), and session 2 loads the page
again with nothing running. Idle and busy loads alternate over the rounds, so the machine's other
load hits both alike; medians after one warm-up round.

The work is pluggable: a class in WORKS with ``start(page, url)`` (session 1 starts it and returns
once it is under way), ``pause()``/``resume()`` (SIGSTOP/SIGCONT its processes) and ``stop()``:
``ingest`` (a server folder from the Datasets page), ``leaderboard`` (*Rank sources for these
labels* on the labeling page) and ``prediction`` (the labeling page's first prediction, whose
10-D UMAP is fitted in a child of the server). Goal (issue 25): busy/idle <= 1.5. Needs Debian's
``chromium`` and ``playwright``.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app  # noqa: E402

GOAL_RATIO = 1.5
TABLE = "[data-testid='stDataFrame'] >> nth=0"
DONE = "[data-test-script-state='notRunning']"


class Ingest:
    """Session 1 ingests a server folder from the Datasets page (a job of kind ``ingest``)."""

    def __init__(self, home: Path, images: int) -> None:
        self.home, self.round = home, 0
        self.folder = home.parent / "served" / "photos"
        write_photos(self.folder, images)
        self.env = {"SSLVIZ_SERVER_ROOTS": str(self.folder.parent)}

    def start(self, page, url: str) -> None:
        from sslviz.store import Store

        self.round += 1
        self.name = f"photos-{self.round}"
        page.goto(url + "/datasets")
        page.wait_for_selector(DONE, state="attached")
        server = page.get_by_text("Server folder", exact=True)
        if not server.is_visible():  # "Add a dataset" is folded once there are datasets
            page.get_by_text("Add a dataset").first.click()
        server.click()
        field = page.get_by_label("Folder (or .zip) on the server")
        field.fill(str(self.folder))
        name = page.get_by_placeholder("default: the folder's name")  # the server folder's
        name.fill(self.name)
        name.press("Enter")
        page.get_by_role("button", name="Ingest folder").click()
        store = Store.open(self.home)
        try:  # under way: its worker has decoded a first batch of files
            deadline = time.monotonic() + 180
            while not any(
                r.kind == "ingest" and r.status == "running" and r.step > 0
                for r in store.runs.list()
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("the ingest did not get under way within 180 s")
                time.sleep(0.2)
        finally:
            store.close()

    def pause(self) -> None:
        self.groups = running_groups(self.home)
        signal_groups(self.groups, signal.SIGSTOP)

    def resume(self) -> None:
        signal_groups(self.groups, signal.SIGCONT)

    def stop(self) -> None:
        """Cancel it (its dataset stays, interrupted: the Runs page keeps its table of runs)."""
        cancel_active(self.home)


class Leaderboard:
    """Session 1 ranks the sources for a labeling session's labels (a job of kind
    ``leaderboard``): from the Predictions tab of the labeling page, *Rank sources for these
    labels*. Set up before the app starts: ``--images`` photos ingested, a session on ``pixels``
    with 10 labels of each of 3 classes, its embedding and UMAP computed (the page itself has
    nothing to compute). Each round removes what the ranking computes (``random``'s embedding
    and its UMAP, the cached rows), so every round ranks afresh: embeds ``random``, and
    cross-validates both sources (UMAP fits included) in the worker."""

    def __init__(self, home: Path, images: int) -> None:
        import sslviz
        from sslviz.fewshot import geometry
        from sslviz.maps.embed import embed
        from sslviz.store import Store

        self.home, self.env = home, {}
        folder = home.parent / "served" / "photos"
        write_photos(folder, images)
        store = Store.open(home)
        try:
            sslviz.ingest(store, folder, name="photos")
            dataset = store.datasets.get_by_name("photos")
            session = store.sessions.create(dataset_id=dataset.id, name="rank", source="pixels")
            first = store.datasets.images(dataset.id)[:30]
            store.sessions.set_labels(session.id, {i.id: f"c{n % 3}" for n, i in enumerate(first)})
            geometry.coords_for(store, embed(store, dataset, "pixels"))
            self.session, self.folder = session.id, store.workspace.dataset_dir(dataset.id)
        finally:
            store.close()

    def start(self, page, url: str) -> None:
        import shutil

        from sslviz.store import Store

        for derived in ("leaderboard", "embeddings/random"):  # rank afresh
            shutil.rmtree(self.folder / derived, ignore_errors=True)
        page.goto(url + f"/labeling?session={self.session}")
        page.wait_for_selector(DONE, state="attached")
        page.get_by_role("tab", name="Predictions").click()
        page.get_by_role("button", name="Rank sources for these labels").click()
        store = Store.open(self.home)
        try:  # under way: its worker reported its first stage
            deadline = time.monotonic() + 180
            while not any(
                r.kind == "leaderboard" and r.status == "running" and r.stage
                for r in store.runs.list()
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("the ranking did not get under way within 180 s")
                time.sleep(0.2)
        finally:
            store.close()

    def pause(self) -> None:
        self.groups = running_groups(self.home)
        signal_groups(self.groups, signal.SIGSTOP)

    def resume(self) -> None:
        signal_groups(self.groups, signal.SIGCONT)

    def stop(self) -> None:
        cancel_active(self.home)


class FirstPrediction:
    """Session 1 opens the Predictions tab of a labeling session whose embedding has no 10-D UMAP
    yet: the page submits that fit to a child process of the server (numba would hold the
    server's GIL) and predicts without it meanwhile. Set up before the app starts: ``--images``
    photos ingested, a session on ``pixels`` with 10 labels of each of 3 classes (enough for
    ``auto`` to want the UMAP methods), its embedding computed. Each round deletes the fitted
    UMAP so the page fits it afresh; stopping waits for the fit to end (it can't be cancelled)."""

    def __init__(self, home: Path, images: int) -> None:
        from sslviz.api import submit_ingest
        from sslviz.fewshot import geometry
        from sslviz.maps.embed import embed
        from sslviz.runner import jobs
        from sslviz.store import Store

        self.home, self.env, self.server = home, {}, 0
        folder = home.parent / "served" / "photos"
        write_photos(folder, images)
        store = Store.open(home)
        try:  # as a job: the Runs page shows its table (as it does for the other works)
            run = submit_ingest(store, [folder], name="photos")
            if jobs.wait(store, run.id, 600).status != "finished":
                raise SystemExit("the ingest did not finish")
            dataset = store.datasets.get_by_name("photos")
            session = store.sessions.create(dataset_id=dataset.id, name="first", source="pixels")
            first = store.datasets.images(dataset.id)[:30]
            store.sessions.set_labels(session.id, {i.id: f"c{n % 3}" for n, i in enumerate(first)})
            self.session, self.umap = (
                session.id,
                geometry.cache_file(store, embed(store, dataset, "pixels")),
            )
        finally:
            store.close()

    def start(self, page, url: str) -> None:
        self.umap.unlink(missing_ok=True)  # fit afresh
        self.page = page
        page.goto(url + f"/labeling?session={self.session}")
        page.wait_for_selector(DONE, state="attached")
        page.get_by_role("tab", name="Predictions").click()
        page.get_by_text("Fitting a UMAP of this embedding").wait_for()
        # session 1's own page first draws the predictions it has without the UMAP (a page's
        # cost, not the work's): timed once only the fit runs and the page polls for it
        page.get_by_text("Updating the predictions").wait_for(state="detached")
        page.wait_for_selector(DONE, state="attached")
        if self.umap.exists():
            print(
                "  (the fit ended before the load: this round's busy load is not one)", flush=True
            )

    def pause(self) -> None:
        self.children = descendants(self.server)
        for pid in self.children:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.children:
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Wait for the fit, then for the predictions that use it (the page reruns by itself), so
        nothing of session 1's is working when session 2 loads idle."""
        deadline = time.monotonic() + 600
        while not self.umap.exists():  # the fit's state "done": its file is written
            if time.monotonic() > deadline:
                raise SystemExit("the UMAP fit did not end within 600 s")
            time.sleep(0.2)
        self.page.get_by_text("Fitting a UMAP of this embedding").wait_for(state="detached")
        self.page.get_by_text("Updating the predictions").wait_for(state="detached")
        self.page.wait_for_selector(DONE, state="attached")


def write_photos(folder: Path, images: int) -> None:
    """``images`` generated 96 px PNG photos in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(images):
        out = io.BytesIO()
        pixels = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(out, "PNG", compress_level=1)
        (folder / f"{i:05d}.png").write_bytes(out.getvalue())


def running_groups(home: Path) -> list[int]:
    """The process groups doing the work (running jobs' workers and what they started)."""
    from sslviz.store import Store

    store = Store.open(home)
    try:
        return [r.pid for r in store.runs.list(("running",)) if r.pid is not None]
    finally:
        store.close()


def signal_groups(groups: list[int], sig: int) -> None:
    for group in groups:
        os.killpg(group, sig)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the server's children: its forkserver and what that started)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def cancel_active(home: Path) -> None:
    """Cancel every queued or running job and wait until each has ended."""
    from sslviz.runner import jobs
    from sslviz.store import Store

    store = Store.open(home)
    try:
        for run in store.runs.list(("queued", "running")):
            jobs.cancel(store, run.id)
            if jobs.wait(store, run.id, 120).status in ("queued", "running"):
                raise SystemExit(f"job {run.id} did not stop within 120 s")
    finally:
        store.close()


WORKS = {"ingest": Ingest, "leaderboard": Leaderboard, "prediction": FirstPrediction}


def load(page, url: str) -> float:
    """Seconds from navigating to the Runs page until its table shows and its script is done."""
    start = time.perf_counter()
    page.goto(url + "/runs", wait_until="commit")
    page.wait_for_selector(TABLE)
    page.wait_for_selector(DONE, state="attached")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", choices=list(WORKS), default="ingest")
    parser.add_argument("--rounds", type=int, default=5, help="loads per case (median)")
    parser.add_argument("--images", type=int, default=6000, help="photos the ingest reads")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sslviz-bench-")) / "home"
    home.mkdir()
    os.environ["SSLVIZ_HOME"] = str(home)
    work = WORKS[args.work](home, args.images)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = start_app(port, home, {**work.env, "SSLVIZ_WORKER_THREADS": "1"})
    work.server = app.pid
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    first, second = (browser.new_context().new_page() for _ in range(2))
    for page in (first, second):  # the first visit prepares the demo; the machine may be busy
        page.set_default_timeout(300_000)
    times: dict[str, list[float]] = {"idle": [], "busy": [], "paused": []}
    try:
        work.start(first, url)  # so the Runs page has its table in both cases (a stopped job)
        work.stop()
        for i in range(args.rounds + 1):  # round 0 warms up both cases: not counted
            idle = load(second, url)
            work.start(first, url)
            busy = load(second, url)
            work.pause()  # the same state (work active), its processes stopped a moment
            try:
                paused = load(second, url)
            finally:
                work.resume()
            work.stop()
            if i:
                for case, t in (("idle", idle), ("busy", busy), ("paused", paused)):
                    times[case].append(t)
            print(
                f"round {i}: idle {idle:.2f} s, busy ({args.work}) {busy:.2f} s, "
                f"paused {paused:.2f} s",
                flush=True,
            )
    finally:
        browser.close()
        playwright.stop()
        stop_app(app)
    idle, busy, paused = (statistics.median(times[c]) for c in ("idle", "busy", "paused"))
    cores = len(os.sched_getaffinity(0))
    print(f"Runs page of session 2 in Chromium, median of {args.rounds} loads ({cores} cores):")
    print(f"  idle                      {idle:.3f} s  (loads: {times['idle']})")
    print(f"  session 1 runs {args.work:10s} {busy:.3f} s  (loads: {times['busy']})")
    print(f"  same, its work SIGSTOPped {paused:.3f} s  (loads: {times['paused']})")
    ratio = busy / idle
    print(
        f"  ratio busy/idle: {ratio:.2f} (goal <= {GOAL_RATIO}: {'met' if ratio <= GOAL_RATIO else 'NOT met'})"
    )
    print(f"  paused/idle: {paused / idle:.2f} (what the pages cost while a job is active)")
    print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {cores} cores")
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
