"""The Runs page's panel for one run: progress, curves, held-out results, log, error, actions.

What a run shows follows its kind (``sslviz.store.kinds``): a pretext run its held-out evaluation and
its task's live metric, a fine-tune a link to the run it started from, an embedding job only its
progress (it logs no training curves).
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from sslviz.runner import jobs
from sslviz.runner.progress import stage_text
from sslviz.runner.timing import Estimate
from sslviz.store import Run, Store
from sslviz.store.kinds import run_kind
from sslviz.store.rows import ACTIVE_STATUSES, RESUMABLE_STATUSES
from sslviz.training.feature_quality import advice, feature_quality
from sslviz.training.figures import stored_results
from sslviz.ui.curves import Series, curves_figure, quality_figure, read_series, snapshot_time
from sslviz.ui.heldout_view import heldout_summary
from sslviz.ui.runs_view import (
    elapsed,
    epoch_text,
    estimates,
    eta_text,
    has_epochs,
    human_duration,
    percent,
    progress,
    run_label,
)
from sslviz.ui.widgets import status_badge, user_errors

LOG_TAIL_LINES = 30
RUNS_PAGE = "app_pages/runs.py"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> str | None:
    """The last ``lines`` lines of a log file (reading only its end); None if there is none."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        text = f.read().decode("utf-8", errors="replace")
    # Progress bars rewrite their line with \r: keep only the last state of each line (split on
    # newlines only: splitlines() would count every \r redraw as a line of its own).
    kept = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    if kept and not kept[-1]:
        kept.pop()  # the newline that ends the file
    return "\n".join(kept[-lines:])


def progress_line(run: Run, estimate: Estimate | None = None) -> str:
    """``"37% · epoch 3/10 · step 420/1500 · 1m 10s elapsed · ETA 2m 01s"``: elapsed is running
    time, the ETA counts to the run's end (the queue ahead included)."""
    parts = [percent(run)]
    if has_epochs(run):
        parts.append(f"epoch {epoch_text(run)}")
    if run.total_steps:
        parts.append(f"step {run.step:,}/{run.total_steps:,}")
    if stage_text(run):  # work after its steps: "writing results: upright check 40%"
        parts.append(str(stage_text(run)))
    parts.append(f"{human_duration(elapsed(run))} elapsed")
    if run.status in ACTIVE_STATUSES:
        parts.append(f"ETA {eta_text(run, estimate)}")
    return " · ".join(parts)


def queue_note(estimate: Estimate | None) -> str:
    """What a queued run waits for, and when it starts and ends."""
    ahead = f"run #{estimate.after}" if estimate and estimate.after else "the run ahead"
    text = f"Queued: it starts when {ahead} ends"
    if estimate and estimate.starts_in is not None:
        text += f", in about {human_duration(estimate.starts_in)}"
    if estimate and estimate.ends_in is not None:
        text += f"; it should end in about {human_duration(estimate.ends_in)}"
    elif estimate and estimate.starts_in is not None:
        text += "; its own length shows once it has trained a little"
    return text + "."


def render_run(store: Store, run: Run, dataset_names: dict[int, str]) -> None:
    """Everything about one run, read from the store now."""
    kind = run_kind(run.kind)
    head, badge = st.columns([4, 1])
    head.subheader(run_label(run, dataset_names))
    with badge:
        status_badge(run.status)
    if run.parent_id is not None:
        st.page_link(
            RUNS_PAGE,
            label=f"Started from run #{run.parent_id}",
            query_params={"run": str(run.parent_id)},
            icon=":material/call_split:",
        )
    estimate = estimates(store.runs.list()).get(run.id) if run.status in ACTIVE_STATUSES else None
    st.progress(progress(run), text=progress_line(run, estimate))
    if run.status == "queued":
        st.caption(queue_note(estimate))
    if run.cancel_requested and run.status == "running":
        st.caption("Cancelling: the worker saves a checkpoint and stops within seconds.")

    keys = store.runs.metric_keys(run.id)
    if run.status == "finished":  # held-out results are written as a run finishes
        title = "Held-out evaluation" if kind.pretext else "Results"
        _results(store, run, [k for k in keys if k.startswith("eval/")], title)
    _curves(store, run, keys)
    if run.status == "failed" or run.error:
        st.error(run.error or "the run failed", icon=":material/error:")
        if run.traceback:
            st.code(run.traceback, language="python")
    # Filled only while open: a closed expander costs neither a file read per refresh nor the
    # browser's code highlighter.
    log = st.expander(
        f"Worker log (last {LOG_TAIL_LINES} lines)",
        expanded=run.status == "failed",
        key=f"run_log_{run.id}",
        on_change="rerun",
    )
    if log.open:
        path = store.workspace.run_dir(run.id) / jobs.LOG_NAME
        text = log_tail(path)
        log.code(text or "(no output yet)", language="text")
        if text:
            log.download_button(
                "Download the whole log",
                data=path.read_bytes,  # read on click only
                file_name=f"run-{run.id}.log",
                mime="text/plain",
                key=f"run_log_download_{run.id}",
                icon=":material/download:",
                on_click="ignore",
            )
    config = st.expander("Configuration", key=f"run_config_{run.id}", on_change="rerun")
    if config.open:
        config.code(json.dumps(run.config, indent=2, sort_keys=True), language="json")
    _actions(store, run)


def _results(store: Store, run: Run, eval_keys: list[str], title: str) -> None:
    """Held-out metrics of a finished run, as tiles: a pretext run's exactly as its result page
    shows them (chance, interval, verdict); other kinds' ``eval/<key>`` metrics."""
    stored = stored_results(store.workspace.run_dir(run.id)) if run_kind(run.kind).pretext else None
    if stored is not None:
        st.markdown(f"**{title}**")
        heldout_summary(stored, step=run.step)
        return
    evals = [m for key in eval_keys for m in store.runs.metrics(run.id, key)[-1:]]
    if not evals:
        return
    st.markdown(f"**{title}**")
    if run.kind == "finetune" and _finetune_tile(store, run):
        evals = [m for m in evals if m.key != "eval/holdout_accuracy"]
    for column, metric in zip(st.columns(min(len(evals), 6)), evals[:6], strict=False):
        column.metric(metric.key.removeprefix("eval/").replace("_", " "), f"{metric.value:.4g}")


def _finetune_tile(store: Store, run: Run) -> bool:
    """A fine-tune's accuracy on its untouched labels with its 95% interval and chance (the
    majority class among those labels), as the leaderboard shows it; False without one."""
    from sslviz.core.proportions import wilson_interval
    from sslviz.fewshot.finetune_data import labels_file, read_label_file
    from sslviz.fewshot.finetune_result import finetune_result

    result = finetune_result(store, run.id)
    if result is None or result.get("holdout_accuracy") is None or not result["holdout"]:
        return False
    given = read_label_file(labels_file(store, run.dataset_id, result["labels"]))
    names = [given[p] for p in result["holdout"]]
    accuracy, n = float(result["holdout_accuracy"]), len(names)
    low, high = wilson_interval(round(accuracy * n), n)
    chance = max(names.count(name) for name in set(names)) / n
    st.metric(
        "accuracy on untouched labels",
        f"{accuracy:.3f}",
        border=True,
        help="Labels the fine-tune never trained on nor chose its checkpoint by.",
    )
    st.caption(
        f"95% interval {low:.2f}–{high:.2f} over {n} untouched labels · chance (majority "
        f"class) {chance:.2f}"
    )
    return True


def _curves(store: Store, run: Run, keys: list[str]) -> None:
    """Loss and the kind's live metric, each only if the run logged it."""
    kind = run_kind(run.kind)
    if "loss" not in keys and kind.live_metric is None:
        return  # a job without training curves (embedding + map): its progress says it all
    # Everything written so far, as the progress line above reads it: the curves end at the step
    # the counter shows (the worker writes both in one flush).
    loss = read_series(store, run.id, "loss")
    if not loss.steps:
        st.caption("No metrics yet: curves appear after the first training steps.")
        return
    charts = [(loss, "Training loss", "loss", f"run_loss_{run.id}")]
    if kind.live_metric in keys:
        metric = read_series(store, run.id, kind.live_metric, kind.metric_label)
        charts.append(
            (metric, f"Training {kind.metric_label}", kind.metric_label, f"run_metric_{run.id}")
        )
    quality = feature_quality(store, run.id)  # pretext runs: per measured checkpoint
    columns = st.columns(3 if quality else 2)
    for column, (series, title, y_title, key) in zip(columns, charts, strict=False):
        column.plotly_chart(curves_figure([series], title=title, y_title=y_title), key=key)
    if quality:
        columns[-1].plotly_chart(quality_figure(quality), key=f"run_quality_{run.id}")
        said = advice(quality) or "too early to say (fewer than 3 measured checkpoints)"
        st.caption(
            f"**Feature quality: {said}.** Effective rank (RankMe) of the embedding of a fixed "
            "sample, and how many of each image's 10 nearest neighbours it keeps from one "
            "checkpoint to the next (1 = nothing moves)."
        )
    speed = read_series(store, run.id, "images_per_s")
    if speed.values:
        st.caption(f"Throughput: {speed.values[-1]:,.0f} images/s (latest)")


def _actions(store: Store, run: Run) -> None:
    """Cancel / resume / delete. Every action changes the store, then the whole page reruns."""
    row = st.container(horizontal=True)
    if run.status in ACTIVE_STATUSES and row.button(
        "Cancel",
        key=f"run_cancel_{run.id}",
        icon=":material/stop:",
        disabled=bool(run.cancel_requested),
    ):
        with user_errors():
            jobs.cancel(store, run.id)
            st.rerun()
    if run.status in RESUMABLE_STATUSES and row.button(
        "Resume",
        key=f"run_resume_{run.id}",
        icon=":material/play_arrow:",
        help="Continue from the last checkpoint to the planned end.",
    ):
        with user_errors():
            jobs.resume(store, run.id)
            st.rerun()
    confirm_key = "runs_confirm_delete"
    if row.button("Delete…", key=f"run_delete_{run.id}", icon=":material/delete:"):
        st.session_state[confirm_key] = run.id
    if st.session_state.get(confirm_key) == run.id:
        note = (
            " It is still active: it will be cancelled first."
            if run.status in ACTIVE_STATUSES
            else ""
        )
        st.warning(
            f"Delete run #{run.id}, its metrics, checkpoints and log? This can't be undone.{note}"
        )
        confirm = st.container(horizontal=True)
        if confirm.button("Yes, delete it", key=f"run_delete_yes_{run.id}", type="primary"):
            del st.session_state[confirm_key]
            with user_errors():
                jobs.delete_run(store, run.id)
                st.query_params.pop("run", None)
                st.rerun()
        if confirm.button("Keep it", key=f"run_delete_no_{run.id}"):
            del st.session_state[confirm_key]
            st.rerun()


def compare_runs(store: Store, runs: list[Run], dataset_names: dict[int, str]) -> None:
    """Overlay the smoothed curves of several runs (loss, and each kind's live metric): runs of
    kinds that train (an embedding job logs no curves)."""
    by_id = {r.id: r for r in runs if run_kind(r.kind).live_metric is not None}
    if len(by_id) < 2:
        return
    chosen = st.multiselect(
        "Overlay the curves of several runs",
        list(by_id),
        key="runs_compare",
        format_func=lambda i: run_label(by_id[i], dataset_names),
        placeholder="Choose runs to compare",
    )
    if not chosen:
        return
    kinds = {i: run_kind(by_id[i].kind) for i in chosen}
    label = {i: f"#{i} {kinds[i].label}" for i in chosen}
    until = snapshot_time(any(by_id[i].status in ACTIVE_STATUSES for i in chosen))
    losses = [read_series(store, i, "loss", label[i], until=until) for i in chosen]
    metric_lines: list[Series] = [
        read_series(
            store,
            i,
            kinds[i].live_metric or "",
            f"{label[i]}: {kinds[i].metric_label}",
            until=until,
        )
        for i in chosen
    ]
    left, right = st.columns(2)
    left.plotly_chart(
        curves_figure(losses, title="Training loss", y_title="loss"), key="runs_compare_loss"
    )
    right.plotly_chart(
        curves_figure(metric_lines, title="Live metric (each kind's own)", y_title="metric"),
        key="runs_compare_metric",
    )
