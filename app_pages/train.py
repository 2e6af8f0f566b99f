"""Train page: configure a pretext run and hand it to the background job runner."""

import streamlit as st

from sslviz.pretext import TASKS
from sslviz.runner import jobs
from sslviz.store.kinds import run_kind
from sslviz.training.feasibility import run_problems
from sslviz.training.train import job_request
from sslviz.ui.resources import get_store
from sslviz.ui.runs_view import epoch_text, estimates, eta_text, progress
from sslviz.ui.train_form import TASK_BLURBS, train_form
from sslviz.ui.widgets import dataset_picker, status_badge, user_errors

store = get_store()
st.title("Train an encoder")
st.caption(
    "Pick a dataset and a self-supervised pretext task. The run trains in the background: "
    "you can leave this page, close the tab or restart the app — follow it on the Runs page."
)

dataset = dataset_picker(store, key="train_dataset", preferred=st.query_params.get("dataset"))
if dataset is None:
    st.stop()
task = st.radio(
    "Pretext task",
    list(TASKS),
    key="train_task",
    horizontal=True,
    format_func=lambda name: run_kind(name).label.capitalize(),  # Multi-task
)
st.caption(TASK_BLURBS.get(task, ""))

config = train_form(dataset, task, store)

problems = run_problems(store, config)
if problems:
    st.error(
        "This run can't start yet:\n" + "\n".join(f"- {p}" for p in problems),
        icon=":material/block:",
    )
if st.button(
    "Start training",
    type="primary",
    key="train_submit",
    disabled=bool(problems),
    icon=":material/play_arrow:",
):
    with user_errors():
        st.session_state["train_last_run"] = jobs.submit(store, job_request(store, config)).id

last = st.session_state.get("train_last_run")
if last is not None:
    with user_errors():
        run = store.runs.get(last)
        with st.container(border=True):
            left, right = st.columns([3, 1])
            run_dataset = store.datasets.get(run.dataset_id).name
            left.markdown(f"**Run #{run.id}** · {run.kind} on {run_dataset} · {run.device}")
            with right:
                status_badge(run.status)
            st.progress(
                progress(run),
                text=f"epoch {epoch_text(run)} · ETA "
                f"{eta_text(run, estimates(store.runs.list()).get(run.id))}",
            )
            st.page_link(
                "app_pages/runs.py",
                label=f"Watch run #{run.id} on the Runs page →",
                query_params={"run": str(run.id)},
                icon=":material/monitoring:",
            )
