"""What every result page shares: the run picker (``?run=ID`` deep links), the cached model of a
run (keyed by run and checkpoint, so a running run's newer checkpoint shows), its held-out
evaluation (the same figures ``sslviz eval`` prints), a pager, and image conversion."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
from torch import Tensor

from sslviz.core.errors import UserError
from sslviz.pretext.render import to_pil
from sslviz.results import HeldOut, held_out
from sslviz.results.apply import LoadedModel, checkpoint_version, load_run_model
from sslviz.store import Run, Store
from sslviz.store.schema import TASKS
from sslviz.training.evaluate import evaluate_run
from sslviz.ui.deep_links import say_missing
from sslviz.ui.runs_view import run_label

# The page of each task, for links from a run of another task.
TASK_PAGES = {
    "rotation": "app_pages/rotation.py",
    "colorization": "app_pages/colorization.py",
    "jigsaw": "app_pages/jigsaw.py",
}


# --- cached work, keyed by the checkpoint --------------------------------------------------------
@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def _model(home: str, run_id: int, version: int) -> LoadedModel:
    from sslviz.ui.resources import get_store

    return load_run_model(get_store(), run_id)


def loaded_model(store: Store, run: Run, head: str | None = None) -> LoadedModel:
    """The run's model from its latest checkpoint, loaded once per checkpoint; with ``head``,
    a multi-task run's head of that task (``LoadedModel.head``)."""
    loaded = _model(str(store.workspace.root), run.id, checkpoint_version(store, run.id))
    return loaded.head(head) if head else loaded


@st.cache_data(show_spinner="Evaluating on the held-out images…", max_entries=32)
def _evaluation(home: str, run_id: int, version: int) -> dict[str, Any]:
    from sslviz.ui.resources import get_store

    return evaluate_run(get_store(), run_id)


def evaluation(store: Store, run: Run) -> dict[str, Any]:
    """``sslviz eval``'s results for the run (read from its cache when the run has ended)."""
    return _evaluation(str(store.workspace.root), run.id, checkpoint_version(store, run.id))


@st.cache_resource(show_spinner="Reading the held-out images…", max_entries=8)
def _held_out(home: str, run_id: int, version: int, image_size: int | None) -> HeldOut:
    from sslviz.ui.resources import get_store

    store = get_store()
    loaded = _model(home, run_id, version)
    return held_out(store, loaded.run, loaded.config, image_size=image_size)


def held_out_images(store: Store, run: Run, image_size: int | None = None) -> HeldOut:
    """The run's held-out images (at its training size, or ``image_size``)."""
    return _held_out(
        str(store.workspace.root), run.id, checkpoint_version(store, run.id), image_size
    )


# --- picking a run ----------------------------------------------------------------------------
def pretext_runs(store: Store, task: str | None = None) -> list[Run]:
    """Pretext runs (of ``task``, or of any task), newest first; multi-task runs are runs of
    each task (their head of it)."""
    runs = [r for r in store.runs.list() if r.kind in TASKS and task in (None, r.kind, *_heads(r))]
    return sorted(runs, key=lambda r: r.id, reverse=True)


def _heads(run: Run) -> tuple[str, ...]:
    return tuple(TASK_PAGES) if run.kind == "multi" else ()


def run_picker(store: Store, task: str | None, *, key: str) -> Run | None:
    """A selectbox over the runs of ``task`` (None: any task) that have a checkpoint; ``?run=ID``
    picks one on load and follows the choice. Says what to do (and returns None) if none can be
    shown; a linked run of another task gets a link to its own page."""
    runs = pretext_runs(store, task)
    ready = [r for r in runs if checkpoint_version(store, r.id)]
    names = {d.id: d.name for d in store.datasets.list()}
    wanted = st.query_params.get("run", "")
    linked = next((r for r in store.runs.list() if str(r.id) == wanted), None)
    if linked is not None and linked not in ready:
        _explain_link(store, linked, task)
    elif wanted and linked is None:
        say_missing(
            f"run #{wanted}" if wanted.isdigit() else f"run {wanted!r}",
            instead=f"run #{ready[0].id}" if ready else None,
        )
    if not ready:
        what = f"{task} " if task else ""
        if runs:
            st.info(
                f"Your {what}run(s) have no checkpoint yet: results appear after the first "
                "epoch. Follow them on the Runs page.",
                icon=":material/hourglass_top:",
            )
            st.page_link("app_pages/runs.py", label="Go to Runs →", icon=":material/monitoring:")
        else:
            st.info(
                f"No {what}run yet. Train one on the Train page"
                + (f" (pretext task: {task})" if task else "")
                + "; its results show here as soon as it has a checkpoint.",
                icon=":material/info:",
            )
            st.page_link(
                "app_pages/train.py", label="Train an encoder →", icon=":material/model_training:"
            )
        return None
    ids = [r.id for r in ready]
    by_id = {r.id: r for r in ready}
    if key in st.session_state and st.session_state[key] not in ids:
        del st.session_state[key]  # the remembered run was deleted meanwhile
    index = ids.index(linked.id) if linked in ready else 0
    chosen = st.selectbox(
        "Run",
        ids,
        index=index,
        key=key,
        format_func=lambda i: f"{run_label(by_id[i], names)} · {by_id[i].status}",
    )
    if wanted != str(chosen):
        st.query_params["run"] = str(chosen)
    return by_id[chosen]


def _explain_link(store: Store, run: Run, task: str | None) -> None:
    if task is not None and task not in (run.kind, *_heads(run)):
        st.warning(
            f"Run #{run.id} is a {run.kind} run, not a {task} run: its results are on its own page.",
            icon=":material/swap_horiz:",
        )
        if run.kind in TASK_PAGES:
            st.page_link(
                TASK_PAGES[run.kind],
                label=f"Open run #{run.id} on the {run.kind.capitalize()} page →",
                query_params={"run": str(run.id)},
            )
    elif run.kind in TASKS:
        st.warning(
            f"Run #{run.id} has no checkpoint yet ({run.status}): it shows here after its first "
            "epoch.",
            icon=":material/hourglass_top:",
        )


def result_page(
    store: Store, task: str, *, title: str, blurb: str, key: str
) -> tuple[Run, LoadedModel, dict[str, Any]]:
    """Title, blurb and run picker of a task's result page; then the picked run, its model and
    its ``sslviz eval`` results. Stops the page (after saying why) when there is nothing to show."""
    st.title(title)
    st.caption(blurb)
    run = run_picker(store, task, key=key)
    if run is None:
        st.stop()
    try:
        loaded, metrics = loaded_model(store, run, task), evaluation(store, run)
        if run.kind == "multi":
            st.caption(f"Multi-task run: its {task} head (one encoder shared by three heads).")
            metrics = metrics["heads"][task]
    except UserError as error:
        st.error(str(error), icon=":material/error:")
        st.stop()
    run_caption(loaded, run)
    return run, loaded, metrics


def run_caption(loaded: LoadedModel, run: Run) -> None:
    """Which checkpoint the page shows (a running run moves on; say so)."""
    note = ""
    if run.status in ("queued", "running"):
        note = " · still training: this is its latest checkpoint, reload for a newer one"
    st.caption(
        f"{run.status} · {loaded.config.encoder} at {loaded.config.image_size} px · checkpoint "
        f"at step {loaded.step:,}{note}"
    )


# --- paging and pictures ---------------------------------------------------------------------
def pager(total: int, per_page: int, *, key: str, label: str = "items") -> range:
    """Indices of the page the user is on (a page number input when there is more than one)."""
    pages = max(1, -(-total // per_page))
    if pages == 1:
        return range(total)
    left, right = st.columns([1, 4], vertical_alignment="bottom")
    page = left.number_input(f"Page (of {pages})", 1, pages, 1, key=key)
    start = (int(page) - 1) * per_page
    right.caption(f"{label} {start + 1}–{min(total, start + per_page)} of {total:,}")
    return range(start, min(total, start + per_page))


def picture(image: Tensor, side: int = 160) -> np.ndarray:
    """uint8 (3, H, W) -> (H', W', 3) array scaled up by whole pixels (crisp, not blurred)."""
    return np.asarray(to_pil(image[None], side)[0])
