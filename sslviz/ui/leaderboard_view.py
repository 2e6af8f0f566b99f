"""The leaderboard panel of a labeling session, and its "Fine-tune on these labels" button.

    leaderboard_section(store, session)                   # both, on the labeling page
    leaderboard_panel(store, session, on_switch=switch)   # or one at a time
    finetune_button(store, session)

The table ranks every source for the session's labels (``sslviz.fewshot.leaderboard``), best
first, marks the session's own source, and offers one click to switch the session to another
one only where a paired comparison on the same labels shows it clearly better
(``leaderboard.clearly_better``; ``on_switch(source, layer, grid)``, by default
``fewshot.labeling.set_source``); a fine-tune's encoder is such a source, its head's own
predictions are not. Ranking is a click, not automatic: it scores every run, and the
labels change with every click on the page; a result whose labels have changed since says so.
It runs as a background job (kind ``leaderboard``, ``fewshot.leaderboard_job``): the page
submits it, shows its stage (embedding or cross-validating which source) with Cancel, and reads
the board it stored; leaving the page loses nothing.
The fine-tune panel starts a supervised or a semi-supervised (FixMatch) fine-tune.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from sslviz.core.errors import UserError
from sslviz.fewshot.finetune_data import labels_sha
from sslviz.fewshot.leaderboard import Leaderboard, Row, clearly_better
from sslviz.fewshot.leaderboard_choice import record_choice
from sslviz.fewshot.leaderboard_job import latest_ranking, stored_board, submit_ranking
from sslviz.fewshot.leaderboard_rows import FINETUNE_HEAD
from sslviz.runner import jobs
from sslviz.runner.progress import fraction_done
from sslviz.store import Store
from sslviz.store.rows import ACTIVE_STATUSES
from sslviz.ui.widgets import user_errors

Switch = Callable[[str, str | None, int | None], None]
POLL_SECONDS = 1.0
HERE = "◀ this one"
SUPERVISED = "labels only"
SEMI_SUPERVISED = "labels + unlabeled images (FixMatch)"


def session_labels(store: Store, session: Any) -> dict[str, str]:
    """path -> label of every labeled image of the session."""
    return {label.path: label.label for label in store.sessions.labels(session.id)}


def is_current(store: Store, row: Row, session: Any) -> bool:
    """Whether ``row`` is the session's own source (at the session's layer and grid, or the
    source's defaults where the session leaves them open)."""
    from sslviz.maps.embed import default_layer

    if row.source != str(session.source) or row.kind == FINETUNE_HEAD:
        return False
    if row.fine_tuned:  # a fine-tune's encoder as a frozen source: its one row
        return True
    try:
        layer, grid = default_layer(store, str(session.source))
    except UserError:
        return False
    return (row.layer, row.grid) == (session.layer or layer, session.grid or grid)


def board_frame(store: Store, board: Leaderboard, session: Any) -> pd.DataFrame:
    """The table as shown: rank, source, layer, predictor, accuracies with intervals, notes."""

    def score(accuracy: float | None, interval: Any) -> str:
        if accuracy is None:
            return "—"
        return f"{accuracy:.3f}  [{interval[0]:.2f}–{interval[1]:.2f}]"

    rows = []
    for place, row in enumerate(board.rows, start=1):
        layer = row.layer or ""
        if row.grid > 1:
            layer += f" ({row.grid}×{row.grid})"
        rows.append(
            {
                "rank": "" if board.too_few or _unranked(board, row) else place,
                "source": row.name,
                "layer": layer,
                "predictor": row.method,
                "CV accuracy": score(row.cv_accuracy, row.cv_interval),
                **(
                    {"untouched-label accuracy": score(row.holdout_accuracy, row.holdout_interval)}
                    if board.fine_tunes
                    else {}
                ),
                "session": HERE if is_current(store, row, session) else "",
                "note": _note(row),
            }
        )
    return pd.DataFrame(rows)


def _note(row: Row) -> str:
    """The row's note, and which predictor scored the untouched labels where CV on the other
    labels chose another one."""
    notes = [row.note] if row.note else []
    if row.holdout_method and row.cv_accuracy is not None and row.holdout_method != row.method:
        notes.append(f"untouched labels scored with {row.holdout_method} (chosen without them)")
    return "; ".join(notes)


def majority_caption(labels: dict[str, str], holdout: list[str]) -> str:
    """Chance beside the accuracies: the largest class's share of the labels (and of the
    untouched ones)."""

    def share(names: list[str]) -> float:
        return max(names.count(n) for n in set(names)) / len(names)

    text = f"Chance: the majority class is {share(list(labels.values())):.0%} of your labels"
    if holdout:
        text += f" and {share([labels[p] for p in holdout]):.0%} of the untouched ones"
    return text + " — a row must beat that to have learned anything."


def _unranked(board: Leaderboard, row: Row) -> bool:
    return board.ranked_by is None or getattr(row, board.ranked_by) is None


def leaderboard_panel(store: Store, session: Any, *, on_switch: Switch | None = None) -> None:
    """Rank sources for the session's labels (a background job: its stage with Cancel while it
    runs, its board once it ended); switch the session to a better one."""
    labels = session_labels(store, session)
    st.markdown("#### Which source predicts these labels best?")
    if len(set(labels.values())) < 2:
        st.info("Label images of at least two classes, then rank the sources for them.")
        return
    sha = labels_sha(labels)
    if st.button(
        "Rank sources for these labels", key=f"rank_{session.id}", icon=":material/leaderboard:"
    ):
        with user_errors():
            submit_ranking(store, session, labels)
    saved = ranked(store, session)
    if saved is None:
        return
    ranked_sha, board = saved
    if ranked_sha != sha:
        st.warning("Your labels changed since this ranking: rank again to update it.")
    if board.message:
        (st.warning if board.too_few else st.caption)(board.message)
    st.dataframe(
        board_frame(store, board, session),
        hide_index=True,
        key=f"board_{session.id}",
        column_config={  # whole names and notes, never cut off
            "source": st.column_config.TextColumn(width="large"),
            "note": st.column_config.TextColumn(width="large"),
        },
    )
    if not board.too_few:
        st.caption(majority_caption(labels, board.holdout))
    if board.too_few:
        return
    if on_switch is None:
        from sslviz.fewshot.labeling import set_source

        def on_switch(source: str, layer: str | None, grid: int | None) -> None:
            set_source(store, session.id, source, layer, grid)
            row = next(
                r for r in board.rows if (r.source, r.layer, r.grid) == (source, layer, grid)
            )
            ranked = sum(1 for r in board.rows if not _unranked(board, r))
            record_choice(store, store.sessions.get(session.id), row, labels, ranked)

    _switch_buttons(store, board, session, on_switch)


def ranked(store: Store, session: Any) -> tuple[str, Leaderboard] | None:
    """(labels' sha, board) of the session's newest ranking job once it finished; else None,
    with what there is to say: its progress with Cancel (polled), how it ended, or what a
    ranking does."""
    run = latest_ranking(store, session)
    if run is None:
        st.caption(
            "Scores pixels, a random network, every finished run (two poolings each) and every "
            "fine-tune on your labels, the same way for all: cross-validated accuracy with a "
            "95% interval. It runs in the background: leave the page, it goes on."
        )
        return None
    if run.status in ACTIVE_STATUSES:
        st.fragment(_poll, run_every=POLL_SECONDS)(store, run.id)
        return None
    board = stored_board(store, run)
    if board is None:
        why = f": {run.error}" if run.status == "failed" else ""
        st.caption(f"The last ranking (job #{run.id}) ended {run.status}{why}. Rank again.")
        return None
    return str(run.config["labels"]), board


def _poll(store: Store, run_id: int) -> None:
    """The ranking job's stage and progress, with Cancel; the page reruns when it ends."""
    run = store.runs.get(run_id)
    if run.status not in ACTIVE_STATUSES:
        st.rerun()  # ended: the page reads the board it stored
    done = fraction_done(run)
    doing = "queued: waiting for the CPU" if run.status == "queued" else run.stage or "starting"
    st.progress(done, text=f"Ranking the sources (job #{run.id}, {done:.0%}): {doing}…")
    if st.button("Cancel", key=f"rank_cancel_{run.id}", icon=":material/stop_circle:"):
        with user_errors():
            jobs.cancel(store, run.id)
        st.rerun()


def _switch_buttons(store: Store, board: Leaderboard, session: Any, on_switch: Switch) -> None:
    """A button for each of the (up to 3) frozen rows clearly better than the session's own
    (McNemar's exact test on the labels they disagree on): a tie is no reason to switch."""
    current = next((row for row in board.rows if is_current(store, row, session)), None)
    if current is None:
        return
    better = []
    for row in board.rows:
        if row.kind == FINETUNE_HEAD or row.pending_run is not None or _unranked(board, row):
            continue
        clear, wins, losses, p = clearly_better(row, current)
        if clear:
            better.append((row, wins, losses, p))
    if not better:
        st.caption(
            "No source is clearly better than this session's on your labels (a paired "
            "comparison on the same labels): keep it, or label more to tell them apart."
        )
        return
    for i, (row, wins, losses, p) in enumerate(better[:3]):
        layer = f" · {row.layer}" + (f" ({row.grid}×{row.grid})" if row.grid > 1 else "")
        help_text = (
            f"right on {wins} labels this session's source gets wrong, wrong on {losses} it gets "
            f"right (McNemar p = {p:.3f})"
        )
        if st.button(
            f"Use {row.name}{layer} for this session",
            key=f"switch_{session.id}_{i}",
            icon=":material/swap_horiz:",
            help=help_text,
        ):
            on_switch(row.source, row.layer, row.grid)
            st.rerun()


def best_parent(runs: list[Any], session: Any, ranked: Any) -> tuple[int, str]:
    """The run a fine-tune starts from by default, and why: the best-ranked of ``runs`` on the
    leaderboard of these labels (``ranked``: the page's (sha, board), if ranked), else the run the
    session's map shows, else the run that trained longest (never merely the newest)."""
    ids = {str(r.id): r.id for r in runs}
    if ranked is not None:
        board = ranked[1]
        for row in board.rows:
            if row.source in ids and not _unranked(board, row):
                return ids[row.source], "the best-ranked run on the leaderboard of these labels"
    if str(session.source) in ids:
        return ids[str(session.source)], "the run the session's map shows"
    longest = max(runs, key=lambda r: (r.work_seconds, r.id))
    return longest.id, "the run that trained longest (rank the sources to pick the best)"


def _finished_board(store: Store, session: Any) -> tuple[str, Leaderboard] | None:
    """(labels' sha, board) of the session's newest ranking if it finished, without a word."""
    run = latest_ranking(store, session)
    board = None if run is None else stored_board(store, run)
    return None if board is None else (str(run.config["labels"]), board)


def finetune_button(store: Store, session: Any) -> None:
    """Start a fine-tune of a run's encoder on the session's labels (a background run)."""
    from sslviz.fewshot.finetune import submit_finetune
    from sslviz.store.kinds import run_kind

    labels = session_labels(store, session)
    runs = [
        r
        for r in store.runs.list(("finished",))
        if r.dataset_id == session.dataset_id and run_kind(r.kind).has_encoder
    ]
    st.markdown("#### Fine-tune on these labels")
    if not runs:
        st.info("Train a pretext run on this dataset first: fine-tuning starts from its encoder.")
        return
    if len(set(labels.values())) < 2:
        st.info("Label images of at least two classes to fine-tune on them.")
        return
    names = {r.id: f"#{r.id} {run_kind(r.kind).label}" for r in runs}
    ids = list(names)
    default, why = best_parent(runs, session, _finished_board(store, session))
    chosen = st.selectbox(
        "Start from run",
        ids,
        index=ids.index(default),
        format_func=names.get,
        key=f"finetune_parent_{session.id}",
        help=f"Chosen at first: {why}.",
    )
    mode = st.radio(
        "Learn from",
        [SUPERVISED, SEMI_SUPERVISED],
        key=f"finetune_mode_{session.id}",
        horizontal=True,
        help="Semi-supervised adds FixMatch: where the model is confident about a lightly "
        "augmented unlabeled image, a heavily augmented copy is trained towards that answer. "
        "Slower per step; uses every image.",
    )
    st.caption(
        f"Trains run #{chosen}'s encoder and a linear head on your {len(labels)} labels in the "
        "background (a share chooses when to stop, another is left untouched to measure it "
        "honestly), then predicts every image. Follow it on the Runs page; when it ends it "
        "joins the leaderboard."
    )
    if st.button(
        "Fine-tune on these labels",
        key=f"finetune_{session.id}",
        icon=":material/tune:",
        type="primary",
    ):
        from sslviz.fewshot.finetune import FineTuneConfig

        config = FineTuneConfig(semi_supervised=mode == SEMI_SUPERVISED)
        try:
            run = submit_finetune(store, chosen, labels, config=config)
        except UserError as error:
            st.error(str(error))
            return
        st.success(f"Fine-tune run #{run.id} is {run.status}: follow it on the Runs page.")
        # outside the app's navigation (e.g. a test harness) there is no page to link to
        with contextlib.suppress(StreamlitAPIException):
            st.page_link(
                "app_pages/runs.py",
                label=f"Watch run #{run.id} on the Runs page",
                icon=":material/monitoring:",
                query_params={"run": str(run.id)},
            )


def leaderboard_section(store: Store, session: Any) -> None:
    """Both, as the labeling page shows them: the leaderboard, then the fine-tune button."""
    st.divider()
    leaderboard_panel(store, session)
    finetune_button(store, session)
