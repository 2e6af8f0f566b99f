"""Process-wide resources of the app: one store per workspace, and the start-up done once."""

from __future__ import annotations

import atexit
import logging
import signal
import subprocess
import sys
import threading
import time

import streamlit as st
from streamlit import runtime

from sslviz.core.errors import UserError
from sslviz.core.settings import warm_up_enabled
from sslviz.core.workspace import Workspace
from sslviz.store import Store


@st.cache_resource(show_spinner=False)
def _store_for(home: str) -> Store:
    # One connection shared by every session and thread: the store's connection is opened with
    # check_same_thread=False and serialises calls with a lock.
    return Store.open(home)


def get_store() -> Store:
    """The store of the workspace named by ``$SSLVIZ_HOME``.

    Keyed by the workspace path rather than cached bare, so a process that changes
    ``SSLVIZ_HOME`` (tests do) never gets another workspace's store.
    """
    return _store_for(str(Workspace.from_env().root))


@st.cache_resource(show_spinner="Preparing the demo dataset…")
def _start(home: str) -> str | None:
    """Ingest the bundled demo dataset into an empty workspace; the problem, if any."""
    from sslviz.data import ensure_demo

    try:
        ensure_demo(_store_for(home))
    except UserError as error:
        return str(error)
    return None


# Pages (url paths) that import neither torch nor the ML libraries: they never wait.
LIGHT_PAGES = frozenset({"", "home", "datasets", "runs"})
# Pages that need torch (and plotly) but not scikit-learn: they wait only for those imports.
TORCH_PAGES = frozenset({"train", "rotation", "colorization", "jigsaw", "demo"})
# Every other page (Explorer, labeling) waits for torch, scikit-learn and plotly: never for
# umap, whose import and compile (a minute on a new machine) only the background map fit needs.
WAIT_SECONDS = 120.0  # never hang a page on a stuck warm-up
COMPILE_WAIT_SECONDS = 1800.0  # the background map fit waits this long for the compile at most
_log = logging.getLogger(__name__)


class _WarmUp:
    """The warm-up thread and the points it passes, in order: torch (+ tasks, plotly) imported,
    scikit-learn imported, UMAP's numba code compiled (into the workspace's cache). ``stage`` says where it is
    (shown by pages whose map waits for the compile)."""

    def __init__(self) -> None:
        self.torch_ready = threading.Event()
        self.libraries_ready = threading.Event()
        self.compiled = threading.Event()
        self.stage = "importing torch"
        self.thread = threading.Thread(target=self._run, name="sslviz-warm-up", daemon=True)

    def _run(self) -> None:
        """Import torch and the pretext tasks (the Train page's ~5 s first import), plotly and
        scikit-learn, so no visitor waits on them; then have UMAP's numba code compiled into the
        workspace's numba cache (10-60 s on a new machine) by a child process at low priority.
        The imports run at normal priority: a page may be waiting for them. The compile runs in
        its own process, never in this one: it is Python code holding the GIL for up to a
        minute, and a niced thread holding the server's GIL makes every page wait for it on a
        busy machine. Maps are fitted in child processes too (``background_maps``), which then
        load the compiled code from the cache."""
        started = time.perf_counter()
        try:
            # pandas first: light pages (Datasets, Runs) never wait, and one importing pandas
            # while this thread does only waits on its module lock for the rest of the import
            # (pandas imports nothing of ours: no lock cycle, no half-initialised module)
            import pandas  # noqa: F401  (every table)
            import plotly.graph_objects  # noqa: F401  (every chart)

            import sslviz.pretext  # torch, the task table
            import sslviz.ui.train_form  # noqa: F401  (encoders, devices)
            from sslviz.core import devices

            devices.available_devices()
            self.torch_ready.set()
            _log.info("warm-up: torch and tasks in %.1f s", time.perf_counter() - started)
            self.stage = "importing scikit-learn"
            import sklearn.cluster  # clusters, predictors, PCA
            import sklearn.linear_model
            import sklearn.neighbors  # noqa: F401

            self.libraries_ready.set()
            # after what pages wait for: a page that needs these first uses pays them itself
            self.stage = "building the tasks' models once"
            _first_use_of_torch_and_plotly()
            self.stage = "compiling UMAP (once per machine)"
            _compile_umap_in_a_process()
            self.compiled.set()
            self.stage = "ready"
            _log.info("warm-up: UMAP compiled, %.1f s in all", time.perf_counter() - started)
        except Exception:  # a failed warm-up only means the first use is slower
            _log.warning("background warm-up failed", exc_info=True)
        finally:
            for event in (self.torch_ready, self.libraries_ready, self.compiled):
                event.set()
            self.stage = "ready"


def _first_use_of_torch_and_plotly() -> None:
    """What a result page's first visit would otherwise pay once: each task's model built (the
    colorization task's gamut table alone is ~1 s), a checkpoint's save and load and a first
    forward pass (torch's lazily loaded code), and plotly's validators of each trace type the
    pages draw (loaded on a figure's first use of the type)."""
    import io

    import plotly.graph_objects as go
    import torch

    from sslviz.pretext import TASKS
    from sslviz.training.config import TrainConfig
    from sslviz.training.evaluate import build_model

    for task in TASKS:
        sample = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
        _, model = build_model(TrainConfig(dataset="warm-up", task=task, image_size=32), sample)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    model.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        model.encoder.eval()(torch.zeros(1, 3, 32, 32))
    traces = (go.Heatmap(z=[[0]]), go.Bar(x=[0], y=[0]), go.Scatter(x=[0], y=[0]))
    go.Figure([*traces, go.Scattergl(x=[0], y=[0]), go.Histogram(x=[0])]).to_json()


COMPILE_SCRIPT = "from sslviz.maps import project; project.warm_up()"


def _compile_umap_in_a_process() -> None:
    """``sslviz.maps.project.warm_up`` in a child process at nice 10 (numba's cache lives in the
    workspace, so the compiled kernels stay for every later process)."""
    command = ["nice", "-n", "10", sys.executable, "-c", COMPILE_SCRIPT]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    atexit.register(_end, process)  # a server told to stop leaves no compile behind
    _, errors = process.communicate()
    if process.returncode != 0 and process.returncode != -signal.SIGKILL:  # not ended by _end
        tail = (errors or "").strip().splitlines()[-1:] or ["no output"]
        _log.warning("UMAP compile process failed (%s): %s", process.returncode, tail[0])


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()


@st.cache_resource(show_spinner=False)
def _warm_up() -> _WarmUp:
    warm = _WarmUp()
    warm.thread.start()
    return warm


def warm_up_running() -> bool:
    """True while this server's warm-up runs (false under AppTest or with the warm-up off)."""
    return warm_up_enabled() and runtime.exists()


def start_warm_up() -> None:
    """Start the warm-up once per server process, in a daemon thread: it never blocks a page.
    Not under AppTest (no server runtime: tests import what they use themselves)."""
    if warm_up_running():
        _warm_up()


def wait_for_compile(timeout: float = COMPILE_WAIT_SECONDS) -> str:
    """Block (a background thread, never a page) until UMAP's code is compiled by the warm-up,
    if the warm-up is running; returns its stage then ("ready" unless it timed out)."""
    if not warm_up_running():
        return "ready"
    warm = _warm_up()
    warm.compiled.wait(timeout)
    return warm.stage


def warm_up_stage() -> str:
    """Where the warm-up is ("ready" when done or not running), for progress captions."""
    return _warm_up().stage if warm_up_running() else "ready"


def wait_for_warm_up(url_path: str) -> None:
    """Before a page runs: if it imports what the warm-up thread is importing right now, wait
    for that import to finish. Two threads importing torch (or scikit-learn) at once can hand
    one of them a half-initialised module (``partially initialized module 'torch'``). The wait
    is only the rest of an import the page would have done itself; light pages never wait, and
    no page waits for umap (only the background map fit uses it)."""
    if url_path in LIGHT_PAGES or not warm_up_running():
        return
    warm = _warm_up()
    event = warm.torch_ready if url_path in TORCH_PAGES else warm.libraries_ready
    if not event.is_set():
        with st.spinner("Loading…", show_time=True):
            event.wait(WAIT_SECONDS)


def _skip_streamlit_repl_check() -> None:
    """Streamlit checks once per process, on the first element a script writes, whether it runs
    in a REPL (to warn that apps need ``streamlit run``): ``inspect.stack()``, which resolves the
    file of every loaded module — 0.7 s for the first visitor once torch is loaded. Under the
    server (``runtime.exists()``) that warning never applies, so mark it as done."""
    import streamlit.delta_generator as delta_generator

    if runtime.exists() and hasattr(delta_generator, "_use_warning_has_been_displayed"):
        delta_generator._use_warning_has_been_displayed = True


def startup() -> None:
    """Run the one-time start-up for this workspace (cached: later calls are free)."""
    _skip_streamlit_repl_check()
    start_warm_up()
    problem = _start(str(Workspace.from_env().root))
    if problem:
        st.warning(f"The demo dataset could not be prepared: {problem}")
