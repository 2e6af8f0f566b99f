"""Ranking the sources for a session's labels as a background run (kind ``leaderboard``) of the
one job runner: the labeling page submits it, the worker scores every source
(``leaderboard.leaderboard``, the same function and numbers as ``sslviz leaderboard``) and stores
the board beside the run; the page shows the job's stage and reads the board when it ends.

    run = submit_ranking(store, session, labels)      # the page (once: an active one is followed)
    # the worker: execute_run; then
    board = stored_board(store, run)                  # the Leaderboard, or None

Progress is ``step`` / ``total_steps`` (sources scored of those to score) with the stage named
("cross-validating rotation #3 · block3 2×2"); cancel is answered before every stage and between
the batches of an embedding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sslviz.core.atomic import write_json
from sslviz.core.liveness import Cancelled
from sslviz.fewshot.finetune_data import labels_file, read_label_file, save_labels
from sslviz.fewshot.leaderboard import Leaderboard, leaderboard
from sslviz.fewshot.leaderboard_rows import row_from_json
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest

KIND = "leaderboard"
BOARD_FILE = "board.json"


@dataclass(frozen=True)
class RankSettings:
    """Which labels to rank the sources for (their file's hash, ``finetune_data.save_labels``),
    and the labeling session that asked (None: not from a session)."""

    labels: str
    session: int | None = None

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> RankSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def submit_ranking(store: Store, session: Any, labels: Mapping[str, str]) -> Run:
    """Record (and start, if the CPU has a free slot) a ranking of every source on ``labels``
    for ``session``; an identical one already queued or running is returned instead."""
    from sslviz.runner import jobs

    sha = save_labels(store, session.dataset_id, labels)
    request = JobRequest(
        kind=KIND,
        dataset_id=session.dataset_id,
        encoder="every source",
        config=RankSettings(sha, session.id).to_dict(),
        device="cpu",
    )
    return jobs.submit(store, request, reuse_active=True)


def latest_ranking(store: Store, session: Any) -> Run | None:
    """The newest ranking job of ``session`` (any status), if any."""
    for run in sorted(store.runs.list(), key=lambda r: r.id, reverse=True):
        if run.kind == KIND and run.config.get("session") == session.id:
            return run
    return None


def execute_run(
    store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None
) -> tuple[str, dict[str, Any]]:
    """The executor of kind ``leaderboard``: rank every source on the run's labels and store the
    board (``stored_board``). A stop (``should_stop()`` or the store's cancel flag) raises
    Cancelled before the next stage, or between an embedding's batches."""
    settings = RankSettings.from_dict(run.config)
    labels = read_label_file(labels_file(store, run.dataset_id, settings.labels))
    started = time.perf_counter()

    def stop() -> bool:
        asked = should_stop is not None and should_stop()
        return asked or bool(store.runs.get(run.id).cancel_requested)

    def progress(stage: str, done: int, total: int) -> None:
        if stop():
            raise Cancelled(f"ranking cancelled before {stage}")
        store.runs.progress(
            run.id,
            step=done,
            total=max(1, total),
            work_seconds=time.perf_counter() - started,
            stage=stage,
            stage_progress=None,
        )

    # background=False: this is the background; an embedding a source lacks is computed here
    board = leaderboard(
        store, run.dataset_id, labels, background=False, on_progress=progress, should_stop=stop
    )
    write_json(board_file(store, run.id), board_to_json(board))
    return "finished", {"stage": None, "work_seconds": time.perf_counter() - started}


def board_file(store: Store, run_id: int) -> Path:
    path = store.workspace.run_dir(run_id) / BOARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def board_to_json(board: Leaderboard) -> dict[str, Any]:
    """Everything the page needs to show ``board`` again (its rows with their per-label records,
    the untouched labels), not only ``Leaderboard.to_json``'s summary."""
    return {**asdict(board), "rows": [row.to_json() for row in board.rows]}


def stored_board(store: Store, run: Run) -> Leaderboard | None:
    """The board a finished ranking job stored, or None (not finished, or its file is gone)."""
    if run.kind != KIND or run.status != "finished":
        return None
    try:
        values = json.loads((store.workspace.run_dir(run.id) / BOARD_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    values["rows"] = [row_from_json(row) for row in values["rows"]]
    return Leaderboard(**values)
