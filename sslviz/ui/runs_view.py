"""How a run reads in the app: its progress (``sslviz.runner.progress``, the numbers the CLI
prints), its running time and when it ends, the queue ahead included (``sslviz.runner.timing``),
and the table of runs.

Everything is computed from the ``Run`` row the store returns, so every browser (and a reload, or an
app restart) shows the same numbers.
"""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import streamlit as st

from sslviz.core.settings import max_runs_per_device
from sslviz.runner.jobs import device_key
from sslviz.runner.progress import epochs_planned, fraction_done, running_seconds, time_budget
from sslviz.runner.timing import Estimate, end_estimates
from sslviz.store import Run
from sslviz.store.kinds import run_kind
from sslviz.store.rows import ACTIVE_STATUSES

progress = fraction_done  # fraction done, 0-1 (budget-aware): the same number the CLI prints


def has_epochs(run: Run) -> bool:
    """Whether the run trains in epochs (pretext runs and fine-tunes; not an embedding job)."""
    return run_kind(run.kind).has_encoder


def epoch_text(run: Run) -> str:
    """ "3/10"; under a time budget "3/~7 (1m 00s budget)" (the epochs the budget allows at the pace
    so far; its epoch count is only a ceiling), "3 of a 1m 00s budget" before the pace is known,
    "7 (1m 00s budget)" once finished; "—" for a run without epochs."""
    if not has_epochs(run):
        return "—"
    budget = time_budget(run)
    if budget is None:
        return f"{run.epoch}/{run.epochs}"
    planned = epochs_planned(run)
    if run.status == "finished":
        return f"{run.epoch} ({human_duration(budget)} budget)"
    if planned is None:
        return f"{run.epoch} of a {human_duration(budget)} budget"
    return f"{run.epoch}/~{planned} ({human_duration(budget)} budget)"


elapsed = running_seconds  # seconds spent running (not queued, not cancelled)


def estimates(runs: list[Run]) -> dict[int, Estimate]:
    """When each active run starts and ends, from now (the queue ahead of it included)."""
    return end_estimates(runs, per_device=max_runs_per_device(None))


def eta_text(run: Run, estimate: Estimate | None) -> str:
    """``"2m 01s"`` until an active run ends (the queue ahead included); "—" otherwise."""
    if run.status not in ACTIVE_STATUSES or estimate is None:
        return "—"
    return human_duration(estimate.ends_in)


def percent(run: Run) -> str:
    """Progress as the table and the panel both show it: ``"47%"``."""
    return f"{100 * progress(run):.0f}%"


def human_duration(seconds: float | None) -> str:
    """``"1h 02m"``, ``"3m 05s"``, ``"12s"``; an em dash for unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def device_text(spec: str) -> str:
    """The device a run uses: ``"cpu"``, or ``"cuda:0 (auto)"`` when it was asked for ``auto``."""
    return f"{device_key(spec)} (auto)" if spec == "auto" else spec


def run_label(run: Run, dataset_names: dict[int, str]) -> str:
    """``"#7 rotation on demo"``, ``"#9 fine-tune of #7 on demo"``: how a run is named in pickers
    (its status is shown beside it: a status in the label would go stale in an open selectbox)."""
    dataset = dataset_names.get(run.dataset_id, f"dataset {run.dataset_id}")
    parent = f" of #{run.parent_id}" if run.parent_id is not None else ""
    return f"#{run.id} {run_kind(run.kind).label}{parent} on {dataset}"


def opening_run(runs: list[Run]) -> int:
    """The run the Runs page opens on: the newest running one, else the newest queued, else the
    newest run."""
    for status in ("running", "queued", None):
        chosen = [r.id for r in runs if status in (None, r.status)]
        if chosen:
            return max(chosen)
    raise ValueError("no runs")


def runs_frame(runs: list[Run], dataset_names: dict[int, str]) -> pd.DataFrame:
    """One row per run (newest first), the columns the runs table shows."""
    now = time.time()
    ends = estimates(runs)
    rows = [
        {
            "run": r.id,
            "status": r.status,
            "task": run_kind(r.kind).label,
            "dataset": dataset_names.get(r.dataset_id, str(r.dataset_id)),
            "encoder": r.model_name,
            "device": device_text(r.device),
            "progress": round(100 * progress(r)),  # whole percent, as the panel shows it
            "epoch": epoch_text(r),
            "elapsed": human_duration(elapsed(r, now)),
            "ETA": eta_text(r, ends.get(r.id)),
            "created": datetime.fromtimestamp(r.created_at),  # the server's local time
        }
        for r in sorted(runs, key=lambda r: r.id, reverse=True)
    ]
    return pd.DataFrame(rows)


def runs_table(runs: list[Run], dataset_names: dict[int, str], *, key: str) -> None:
    """Render the table of runs."""
    st.dataframe(
        runs_frame(runs, dataset_names),
        key=key,
        hide_index=True,
        column_config={
            "run": st.column_config.NumberColumn("run", format="#%d", width="small"),
            "status": st.column_config.TextColumn("status", width=95),
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0, max_value=100, format="%d%%", width=110
            ),
            "epoch": st.column_config.TextColumn("epoch", width=140),
            "dataset": st.column_config.TextColumn("dataset", width="small"),
            "elapsed": st.column_config.TextColumn(
                "elapsed", width=80, help="Time spent running: not queued, not cancelled"
            ),
            "ETA": st.column_config.TextColumn(
                "ETA", width=80, help="Until the run ends, the runs queued ahead of it included"
            ),
            "created": st.column_config.DatetimeColumn("created", format="MMM D, HH:mm", width=110),
        },
    )
