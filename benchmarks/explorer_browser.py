"""The Explorer in Chromium at 100,000 points, the first visit to the Train page with and
without the start-up warm-up, every page's first visit vs a later one, and the Explorer's first
map on a fresh workspace.

    python benchmarks/explorer_browser.py explorer [--images 100000] [--home DIR] [--rounds 3]
    python benchmarks/explorer_browser.py first-visit [--rounds 3] [--dwell 8]
    python benchmarks/explorer_browser.py pages [--rounds 1] [--home DIR]
    python benchmarks/explorer_browser.py first-map [--rounds 1] [--cold-numba]

``pages``: a workspace with the demo set and a short finished run of each task; a fresh server;
every page opened in a new tab right after start-up (first visits, in order), then each again.
``first-map``: a brand-new workspace; the Explorer opened as soon as the server answers: the
seconds until a map is drawn (the PCA map) and until the UMAP map has replaced it by itself.

``explorer``: a workspace with N generated 16 px images in 10 folders (ingested once; pass
``--home`` to keep and reuse it), its ``pixels`` map computed once (embedding + UMAP, through
``sslviz.maps.project``), then a real ``streamlit run app.py`` and headless Chromium:
  - render: from navigating to ``/explorer`` until the map's WebGL canvas is drawn and the script
    is idle;
  - box selection: from releasing the mouse after dragging a box over the map (toolbar's Box
    Select) until the selection's thumbnails are shown and the script is idle.
Medians over rounds, a fresh tab per round. Goal (issue 8): each <= 3 s at 100k points.
It also prints the figure's JSON size and server-side build time (what every rerun re-sends).

``first-visit``: fresh server processes, alternately with the warm-up on and off
(``SSLVIZ_WARM_UP=0``); a user opens the app (Datasets), looks at it for ``--dwell`` seconds,
then clicks Train: the seconds until the Train page is ready, and the ratio off/on. Also the
case the warm-up can't help: the Train page as the very first page of a fresh server.

Needs Debian's ``chromium`` and the Python ``playwright`` package. The machine is shared: read
the ratios first, absolute seconds depend on the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    REPO,
    free_port,
    start_app,
    stop_app,
)

GOAL_SECONDS = 3.0
DATASET = "bench-points"


# --- the app and the browser -------------------------------------------------------------------
def wait_idle(page, timeout_ms: int = 300_000) -> None:
    page.wait_for_timeout(250)  # the rerun an interaction triggers has started by then
    page.wait_for_function(IDLE, timeout=timeout_ms)


# --- explorer ----------------------------------------------------------------------------------
def generate_images(folder: Path, n: int, size: int = 16, seed: int = 0) -> None:
    """N distinct tiny PNGs in 10 folders: a colour per folder plus noise (so pixels cluster)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.uniform(30, 225, size=(10, 3))
    for k in range(10):
        (folder / f"group{k}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % 10
        pixels = base[k] + rng.normal(0, 25, size=(size, size, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
        image.save(folder / f"group{k}" / f"img{i:06d}.png")


def prepare(home: Path, n: int) -> None:
    """The dataset (ingested once) and its pixels map (computed once), timed."""
    os.environ["SSLVIZ_HOME"] = str(home)
    from sslviz.data import ingest
    from sslviz.maps import project
    from sslviz.store import Store

    store = Store.open(home)
    names = {d.name: d for d in store.datasets.list()}
    if DATASET not in names or names[DATASET].n_images != n:
        folder = home / "generated"
        start = time.perf_counter()
        if not folder.exists():
            generate_images(folder, n)
        print(f"generated {n:,} images in {time.perf_counter() - start:.0f} s", flush=True)
        start = time.perf_counter()
        ingest(store, [folder], DATASET)
        print(f"ingested them in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    project.project(store, DATASET, "pixels")
    print(f"pixels map (embed + UMAP or cached) in {time.perf_counter() - start:.0f} s")
    store.close()


def figure_cost(home: Path) -> None:
    """Server side of one rerun: the figure's build and JSON (what Streamlit sends and hashes)."""
    import plotly.io as pio

    from sslviz.maps import project
    from sslviz.store import Store
    from sslviz.ui.explorer_panels import folder_of
    from sslviz.ui.map import MapPoints, categorical_colours, map_figure

    store = Store.open(home)
    projection = project.cached_projection(store, DATASET, "pixels")
    points = MapPoints.from_projection(projection)
    colour = categorical_colours(folder_of(points.paths), title="folder")
    start = time.perf_counter()
    figure = map_figure(points, colour=colour)
    built = time.perf_counter() - start
    start = time.perf_counter()
    spec = pio.to_json(figure, validate=False)
    encoded = time.perf_counter() - start
    print(
        f"figure of {len(points):,} points: built in {built:.2f} s, JSON {len(spec) / 1e6:.1f} MB "
        f"in {encoded:.2f} s"
    )
    store.close()


def box_select(page, fraction: tuple[float, float, float, float]) -> None:
    """Drag a box over the first map (toolbar's Box Select), corners as fractions of the plot."""
    page.locator('.modebar-btn[data-title="Box Select"]').first.click()
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    x0, y0, x1, y1 = fraction
    page.mouse.move(area["x"] + area["width"] * x0, area["y"] + area["height"] * y0)
    page.mouse.down()
    page.mouse.move(
        area["x"] + area["width"] * x1, area["y"] + area["height"] * y1, steps=10
    )  # a drag plotly sees as one
    page.mouse.up()


def explorer(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    home = Path(args.home or tempfile.mkdtemp(prefix="sslviz-explorer-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    prepare(home, args.images)
    figure_cost(home)
    port = free_port()
    app = start_app(port, home)
    url = f"http://127.0.0.1:{port}/explorer?dataset={DATASET}&source=pixels"
    renders, selects, counts = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for round_ in range(args.rounds + 1):  # round 0 warms the server's caches
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                start = time.perf_counter()
                page.goto(url, wait_until="commit")
                page.wait_for_selector(".js-plotly-plot canvas", timeout=300_000)
                wait_idle(page)
                render = time.perf_counter() - start
                box_select(page, (0.05, 0.05, 0.5, 0.5))
                start = time.perf_counter()
                page.wait_for_selector("[data-testid='stImage'] img", timeout=300_000)
                wait_idle(page)
                select = time.perf_counter() - start - 0.25  # wait_idle's fixed pause
                count = page.get_by_text("image(s)").first.inner_text()
                page.close()
                label = "warm-up round" if round_ == 0 else f"round {round_}"
                print(f"{label}: render {render:.2f} s, box selection {select:.2f} s ({count})")
                if round_:
                    renders.append(render)
                    selects.append(select)
                    counts.append(count)
            browser.close()
    finally:
        stop_app(app)
    cores = len(os.sched_getaffinity(0))
    render, select = statistics.median(renders), statistics.median(selects)
    print(
        f"Explorer, {args.images:,} points, Chromium, median of {args.rounds} ({cores} cores, "
        f"shared machine): render {render:.2f} s, box selection -> thumbnails {select:.2f} s "
        f"(goal <= {GOAL_SECONDS:.0f} s each: {'met' if max(render, select) <= GOAL_SECONDS else 'NOT met'})"
    )


# --- first visit to the Train page -------------------------------------------------------------
def first_visit(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    from sslviz.data import ensure_demo
    from sslviz.store import Store

    home = Path(tempfile.mkdtemp(prefix="sslviz-first-visit-"))
    store = Store.open(home)
    ensure_demo(store)  # done before: start-up's own demo ingest is not what is measured
    store.close()
    times: dict[str, list[float]] = {"on": [], "off": [], "direct": []}

    def visit(warm: str, direct: bool) -> float:
        port = free_port()
        app = start_app(port, home, {"SSLVIZ_WARM_UP": "1" if warm == "on" else "0"})
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                base = f"http://127.0.0.1:{port}"
                if direct:
                    start = time.perf_counter()
                    page.goto(f"{base}/train", wait_until="commit")
                else:
                    page.goto(f"{base}/datasets")
                    wait_idle(page)
                    page.wait_for_timeout(args.dwell * 1000)  # the user reads the page
                    start = time.perf_counter()
                    page.locator("[data-testid='stSidebarNavLink']", has_text="Train").first.click()
                page.get_by_role("button", name="Start training").wait_for(timeout=120_000)
                wait_idle(page)
                seconds = time.perf_counter() - start - 0.25
                browser.close()
                return seconds
        finally:
            stop_app(app)

    for round_ in range(args.rounds):
        for warm in ("off", "on"):  # alternated: the machine's load hits both alike
            times[warm].append(visit(warm, direct=False))
        times["direct"].append(visit("on", direct=True))
        print(
            f"round {round_ + 1}: warm-up off {times['off'][-1]:.2f} s, on {times['on'][-1]:.2f} s, "
            f"first page of the server {times['direct'][-1]:.2f} s",
            flush=True,
        )
    median = {k: statistics.median(v) for k, v in times.items()}
    cores = len(os.sched_getaffinity(0))
    print(
        f"Train page, first visit {args.dwell:.0f} s after opening the app, median of "
        f"{args.rounds} fresh servers ({cores} cores, shared machine): without warm-up "
        f"{median['off']:.2f} s, with {median['on']:.2f} s (ratio {median['off'] / median['on']:.1f}x); "
        f"as the very first page of a server {median['direct']:.2f} s"
    )


# --- every page: the first visit after start-up vs a later one ----------------------------------
PAGES = (
    "datasets",
    "train",
    "runs",
    "explorer",
    "labeling",
    "features",
    "rotation",
    "colorization",
    "jigsaw",
    "demo",
)


def _trained_workspace() -> Path:
    """The demo set and one short finished run of each pretext task (the CLI, foreground)."""
    from sslviz.data import ensure_demo
    from sslviz.store import Store

    home = Path(tempfile.mkdtemp(prefix="sslviz-pages-"))
    store = Store.open(home)
    ensure_demo(store)
    store.close()
    env = {**os.environ, "SSLVIZ_HOME": str(home)}
    for task in ("rotation", "colorization", "jigsaw"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sslviz",
                "train",
                "--dataset",
                "demo",
                "--task",
                task,
                "--epochs",
                "1",
                "--time-budget",
                "5",
                "--json",
            ],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    return home


def _visit(page, url: str, name: str) -> float:
    """Seconds from navigating to ``url`` until the page is drawn and its script idle (the
    Explorer: its map drawn)."""
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    if name == "explorer":
        page.wait_for_selector(".js-plotly-plot canvas", timeout=300_000)
    page.wait_for_selector("h1", timeout=300_000)
    wait_idle(page)
    return time.perf_counter() - start - 0.25  # wait_idle's fixed pause


def pages(args: argparse.Namespace) -> None:
    """A fresh server on a workspace with a finished run of each task (their results stored by
    the runs): each page opened once in a new tab right after start-up, in order, then each
    again (a later visit); side by side, with the goal first <= 1.5 x later + 0.5 s."""
    from playwright.sync_api import sync_playwright

    home = Path(args.home) if args.home else _trained_workspace()
    firsts: dict[str, list[float]] = {p: [] for p in PAGES}
    laters: dict[str, list[float]] = {p: [] for p in PAGES}
    for round_ in range(args.rounds):
        port = free_port()
        app = start_app(port, home)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for times in (firsts, laters):
                    for name in PAGES:
                        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
                        times[name].append(_visit(tab, f"{base}/{name}", name))
                        tab.close()
                browser.close()
        finally:
            stop_app(app)
        print(f"round {round_ + 1} done", flush=True)
    cores = len(os.sched_getaffinity(0))
    print(
        f"\nFirst visit after start-up vs a later visit, Chromium, median of {args.rounds} "
        f"fresh servers ({cores} cores, load {os.getloadavg()[0]:.1f}):"
    )
    print(
        f"{'page':14s} {'first':>7s} {'later':>7s} {'ratio':>6s}  goal: first <= 1.5 x later + 0.5 s"
    )
    for name in PAGES:
        first, later = statistics.median(firsts[name]), statistics.median(laters[name])
        met = "met" if first <= 1.5 * later + 0.5 else "NOT met"
        print(f"{name:14s} {first:6.2f}s {later:6.2f}s {first / later:5.2f}x  {met}")


# --- time to the first map on a fresh workspace -------------------------------------------------
def first_map(args: argparse.Namespace) -> None:
    """A brand-new workspace (and numba cache), the app started, Explorer opened at once: the
    seconds until a map of the demo is drawn (the PCA preview), and until the UMAP map replaced
    it by itself (the caption about the PCA map gone)."""
    from playwright.sync_api import sync_playwright

    firsts, umaps = [], []
    for round_ in range(args.rounds):
        home = Path(tempfile.mkdtemp(prefix="sslviz-first-map-"))
        env = {"NUMBA_CACHE_DIR": str(home / "numba_cache")} if args.cold_numba else {}
        port = free_port()
        started = time.perf_counter()
        app = start_app(port, home, env)
        served = time.perf_counter() - started
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/explorer", wait_until="commit")
                page.wait_for_selector(".js-plotly-plot canvas", timeout=300_000)
                first = time.perf_counter() - start
                page.wait_for_function(
                    "!document.body.innerText.includes('PCA map of the embedding')",
                    timeout=600_000,
                )
                page.wait_for_selector(".js-plotly-plot canvas", timeout=300_000)
                umap = time.perf_counter() - start
                browser.close()
        finally:
            stop_app(app)
        firsts.append(first)
        umaps.append(umap)
        print(
            f"round {round_ + 1}: server up {served:.1f} s; Explorer opened at once: first map "
            f"{first:.2f} s, UMAP map {umap:.1f} s",
            flush=True,
        )
    cores = len(os.sched_getaffinity(0))
    print(
        f"Explorer on a fresh workspace, opened right after start-up, median of {args.rounds} "
        f"({cores} cores, load {os.getloadavg()[0]:.1f}): first map {statistics.median(firsts):.2f} s "
        f"(goal <= 10 s), UMAP map in its place after {statistics.median(umaps):.1f} s"
        + (" (empty numba cache)" if args.cold_numba else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    exp = commands.add_parser("explorer", help="render and box selection at N points")
    exp.add_argument("--images", type=int, default=100_000)
    exp.add_argument("--home", help="workspace to create or reuse (default: a new temp dir)")
    exp.add_argument("--rounds", type=int, default=3)
    first = commands.add_parser("first-visit", help="the Train page with and without warm-up")
    first.add_argument("--rounds", type=int, default=3)
    first.add_argument("--dwell", type=float, default=8.0, help="seconds on Datasets first")
    every = commands.add_parser("pages", help="every page: first visit vs a later one")
    every.add_argument("--rounds", type=int, default=1)
    every.add_argument("--home", help="a workspace with runs to reuse (default: trains three)")
    fresh = commands.add_parser("first-map", help="Explorer's first map on a fresh workspace")
    fresh.add_argument("--rounds", type=int, default=1)
    fresh.add_argument(
        "--cold-numba", action="store_true", help="an empty numba cache too (a new machine)"
    )
    args = parser.parse_args()
    commands_ = {
        "explorer": explorer,
        "first-visit": first_visit,
        "first-map": first_map,
        "pages": pages,
    }
    commands_[args.command](args)


if __name__ == "__main__":
    main()
